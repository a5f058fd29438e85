"""Version 1 of the API: one blueprint per resource."""

from api.v1 import changes, event_types, event_writes, events, locations, sources, stats

BLUEPRINTS = (
    events.blp,
    event_writes.blp,
    changes.blp,
    locations.blp,
    sources.blp,
    event_types.blp,
    stats.blp,
)
