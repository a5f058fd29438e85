"""GET /api/v1/event-types: the event type vocabulary and its ACLED mapping."""

from typing import Any

from flask import Response

from api.openapi import Blueprint, read_operation
from api.render import json_response, render
from schemas.event import ACLED
from schemas.query import NoArgs
from schemas.responses import EventTypeListSchema
from schemas.vocabulary import EVENT_TYPES

blp = Blueprint(
    "event-types",
    __name__,
    url_prefix="/api/v1",
    description="The event types, their meanings and their place in ACLED's taxonomy.",
)

_EVENT_TYPES = EventTypeListSchema()


@read_operation(
    blp, "/event-types", operation_id="listEventTypes", args=NoArgs, response=EventTypeListSchema
)
def list_event_types(args: dict[str, Any]) -> Response:
    """List event types with descriptions and ACLED mapping"""
    data = [
        {"id": name, "description": kind.description, "acled": ACLED[name]}
        for name, kind in EVENT_TYPES.items()
    ]
    return json_response(render({"data": data}, _EVENT_TYPES))
