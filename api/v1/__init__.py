"""Version 1 of the API: one blueprint per resource."""

from api.v1 import event_types, events, locations, sources, stats

BLUEPRINTS = (events.blp, locations.blp, sources.blp, event_types.blp, stats.blp)
