"""GET /api/v1/locations and /api/v1/locations/{id}."""

from typing import Any

from flask import Response

from api import query
from api.db import get_db
from api.filters import LocationListArgs
from api.openapi import Blueprint, read_operation
from api.pagination import page_response
from api.problems import Problem
from api.render import json_response, render
from schemas.query import NoArgs
from schemas.responses import LocationPageSchema, LocationWithCountSchema

blp = Blueprint(
    "locations", __name__, url_prefix="/api/v1", description="Places where events happened."
)

_LOCATION = LocationWithCountSchema()


@read_operation(
    blp,
    "/locations",
    operation_id="listLocations",
    args=LocationListArgs,
    response=LocationPageSchema,
    paged=True,
)
def list_locations(args: dict[str, Any]) -> Response:
    """List places with their event counts, ordered by id"""
    rows, next_key = query.list_locations(get_db(), args)
    return page_response(
        [render(row, _LOCATION) for row in rows], next_key, "id", {"limit": args["limit"]}
    )


@read_operation(
    blp,
    "/locations/<location_id>",
    operation_id="getLocation",
    args=NoArgs,
    response=LocationWithCountSchema,
    problems=(404,),
)
def get_location(args: dict[str, Any], location_id: str) -> Response:
    """Get one place with its event count"""
    row = query.get_location(get_db(), location_id)
    if row is None:
        raise Problem(404, f"No location has id {location_id!r}.")
    return json_response(render(row, _LOCATION))
