"""GET /api/v1/events and /api/v1/events/{id}."""

from typing import Any

from flask import Response

from api import query
from api.db import get_db
from api.openapi import Blueprint, read_operation
from api.pagination import page_response
from api.problems import Problem
from api.render import json_response
from schemas.event import EventSchema
from schemas.query import EventListArgs, NoArgs
from schemas.responses import EventPageSchema

blp = Blueprint("events", __name__, url_prefix="/api/v1", description="Conflict events.")


@read_operation(blp, "/events", args=EventListArgs, response=EventPageSchema, paged=True)
def list_events(args: dict[str, Any]) -> Response:
    """List events

    Filters combine with AND; a list-valued filter matches any of its values.
    Follow `links.next` (or the Link header) until it is null.
    """
    page = query.list_events(get_db(), args)
    return page_response(page, args["sort"], {"limit": args["limit"], "sort": args["sort"]})


@read_operation(blp, "/events/<event_id>", args=NoArgs, response=EventSchema, not_found=True)
def get_event(args: dict[str, Any], event_id: str) -> Response:
    """Get one event"""
    body = query.get_event(get_db(), event_id)
    if body is None:
        raise Problem(404, f"No event has id {event_id!r}.")
    return json_response(body)
