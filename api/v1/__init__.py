"""Version 1 of the API: one blueprint per resource."""

from api.v1 import changes, event_types, events, locations, sources, stats

BLUEPRINTS = (events.blp, changes.blp, locations.blp, sources.blp, event_types.blp, stats.blp)
