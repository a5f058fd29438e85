"""GET /api/v1/stats: totals over the same filters as /events."""

from typing import Any

from flask import Response

from api import query
from api.db import get_db
from api.filters import StatsArgs
from api.openapi import Blueprint, read_operation
from api.render import json_response, render
from schemas.responses import StatsSchema

blp = Blueprint(
    "stats",
    __name__,
    url_prefix="/api/v1",
    description="Totals of events, munitions and casualties.",
)

_STATS = StatsSchema()


@read_operation(blp, "/stats", operation_id="getStats", args=StatsArgs, response=StatsSchema)
def event_stats(args: dict[str, Any]) -> Response:
    """Totals of munitions launched and intercepted, casualties and events

    Takes the filters of /events. Casualty totals keep their uncertainty: a sum
    that includes an 'at least' figure is itself 'at least', with no high.
    """
    groups = query.event_stats(get_db(), args)
    return json_response(
        render({"data": groups, "meta": {"group_by": args.get("group_by")}}, _STATS)
    )
