"""GET /api/v1/locations and /api/v1/locations/{id}."""

from typing import Any

from flask import Response

from api.db import store
from api.openapi import Blueprint, read_operation
from api.pagination import page_response
from api.params import chosen_format
from api.problems import Problem
from api.render import event_feature, json_response, render
from api.store.filters import LocationListArgs
from schemas.query import NoArgs
from schemas.responses import (
    LocationFeatureCollectionSchema,
    LocationPageSchema,
    LocationWithCountSchema,
)

blp = Blueprint(
    "locations", __name__, url_prefix="/api/v1", description="Places where events happened."
)

_LOCATION = LocationWithCountSchema()

MEDIA_TYPES = {"json": "application/json", "geojson": "application/geo+json"}


@read_operation(
    blp,
    "/locations",
    operation_id="listLocations",
    args=LocationListArgs,
    response=LocationPageSchema,
    paged=True,
    alternatives={MEDIA_TYPES["geojson"]: LocationFeatureCollectionSchema},
)
def list_locations(args: dict[str, Any]) -> Response:
    """List places with their event counts, ordered by id

    Takes the filters of /stats. Filters of places (country, admin1, bbox,
    precision) choose the places; with a filter of events (a type, dates, a
    weapon...) only places with a matching event are listed, each with how many
    match: a map's aggregation of a filtered view. GeoJSON gives the places as
    Points.
    """
    chosen = chosen_format(args, MEDIA_TYPES)
    rows, next_key = store().locations(args)
    items = [render(row, _LOCATION) for row in rows]
    geojson = chosen == "geojson"
    if geojson:
        items = [
            event_feature(row["id"], row["longitude"], row["latitude"], item)
            for row, item in zip(rows, items, strict=True)
        ]
    meta: dict[str, Any] = {"limit": args["limit"]}
    if "q" in args:
        meta["search_capped"] = store().search_capped(args["q"])
    response = page_response(items, next_key, "id", meta, geojson=geojson)
    if "format" not in args:
        response.headers["Vary"] = "Accept"
    return response


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
    row = store().location(location_id)
    if row is None:
        raise Problem(404, f"No location has id {location_id!r}.")
    return json_response(render(row, _LOCATION))
