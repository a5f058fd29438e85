"""GET /api/v1/events and /api/v1/events/{id}."""

from collections.abc import Iterable
from functools import partial
from typing import Any

from flask import Response

from api import exports
from api.db import store
from api.openapi import Blueprint, read_operation
from api.pagination import page_response
from api.params import chosen_format, paging_refused
from api.problems import invalid_parameters
from api.render import (
    acled_csv_lines,
    csv_lines,
    event_feature,
    json_response,
    ndjson_lines,
    projected,
)
from api.store.filters import EventListArgs
from schemas.event import EventSchema
from schemas.query import NoArgs
from schemas.responses import EventFeatureCollectionSchema, EventPageSchema

blp = Blueprint("events", __name__, url_prefix="/api/v1", description="Conflict events.")

MEDIA_TYPES = {
    "json": "application/json",
    "geojson": "application/geo+json",
    "csv": "text/csv",
    "ndjson": "application/x-ndjson",
}
EXPORTS = {"csv", "ndjson", "acled-csv"}


@read_operation(
    blp,
    "/events",
    operation_id="listEvents",
    args=EventListArgs,
    response=EventPageSchema,
    paged=True,
    alternatives={
        MEDIA_TYPES["geojson"]: EventFeatureCollectionSchema,
        MEDIA_TYPES["csv"]: {
            "type": "string",
            "description": "Every matching event as CSV: Salvo's columns, or ACLED's with "
            "format=acled-csv.",
        },
        MEDIA_TYPES["ndjson"]: {
            "type": "string",
            "description": "Every matching event, one Event document per line (a "
            "PartialEvent with `fields`).",
        },
    },
)
def list_events(args: dict[str, Any]) -> Response:
    """List events

    Filters combine with AND; a list-valued filter matches any of its values.
    Follow `links.next` (or the Link header) until it is null. CSV and NDJSON
    stream every matching event at once instead of a page. `fields` narrows
    each event to the fields a client needs.
    """
    chosen = chosen_format(args, MEDIA_TYPES)
    if chosen in EXPORTS:
        response = _export(args, chosen)
    else:
        geojson = chosen == "geojson"
        pages = store().event_pages(args, coordinates=geojson)
        page, next_key, prev_key, _ = pages.page(args.get("cursor"), args["limit"])
        documents = _narrowed(args, page.documents)
        if geojson:
            items = list(map(event_feature, page.ids, page.longitudes, page.latitudes, documents))
        else:
            items = list(documents)
        total, exact = pages.total()
        meta = {
            "limit": args["limit"],
            "sort": args["sort"],
            "total": total,
            "total_exact": exact,
        }
        response = page_response(
            items,
            next_key,
            args["sort"],
            meta,
            geojson=geojson,
            # The stored digests name whole documents; a narrowed page's ETag hashes
            # its own bytes (api/caching.py), which differ with each set of fields.
            digests=list(page.digests) if "fields" not in args else None,
            with_prev=True,
            prev_key=prev_key,
        )
    if "format" not in args:
        # The response was built just above and has no Vary yet.
        response.headers["Vary"] = "Accept"
    return response


def _narrowed(args: dict[str, Any], documents: Iterable[bytes]) -> Iterable[bytes]:
    """The stored documents, or with `fields` each narrowed to those fields and `id`."""
    if "fields" not in args:
        return documents
    return map(partial(projected, names=frozenset(args["fields"]) | {"id"}), documents)


def _export(args: dict[str, Any], chosen: str) -> Response:
    refused = paging_refused(chosen, "event")
    if "fields" in args and chosen != "ndjson":
        # A CSV export's columns are fixed (README, "Formats"), several of them made
        # from one field, and some fields have none: no narrowing would be the one
        # a client meant.
        refused.append(
            {
                "name": "fields",
                "in": "query",
                "reason": f"The {chosen} export has fixed columns; fields narrows JSON "
                "events (json, geojson, ndjson). Leave it out, or use format=ndjson.",
            }
        )
    if refused:
        raise invalid_parameters(refused)
    slot = exports.take_slot()
    try:
        documents, close = store().event_stream(args, csv=chosen == "csv")
    except BaseException:
        slot.give_back()
        raise

    def lines() -> Any:
        # A fault after the first bytes cannot change the status any more: the error
        # propagates, and the server cuts the response before its last chunk, which
        # every HTTP client reports as an incomplete body (README, "Errors").
        try:
            if chosen == "csv":
                yield from csv_lines(documents)
            elif chosen == "acled-csv":
                yield from acled_csv_lines(documents)
            else:
                yield from ndjson_lines(_narrowed(args, documents))
        finally:
            finished()

    def finished() -> None:
        close()
        slot.give_back()

    # Both CSV exports are text/csv; ACLED's is chosen by name only.
    response = Response(lines(), mimetype=MEDIA_TYPES.get(chosen, MEDIA_TYPES["csv"]))
    if chosen in ("csv", "acled-csv"):
        filename = "events.csv" if chosen == "csv" else "events-acled.csv"
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    # When the stream ends, and when the server closes a response it never iterated
    # (a HEAD, or a client gone before the first chunk); the second call does nothing.
    response.call_on_close(finished)
    return response


@read_operation(
    blp,
    "/events/<event_id>",
    operation_id="getEvent",
    args=NoArgs,
    response=EventSchema,
    problems=(404, 410),
)
def get_event(args: dict[str, Any], event_id: str) -> Response:
    """Get one event"""
    body, digest = store().event(event_id)
    response = json_response(body.encode())
    response.set_etag(digest.hex())
    return response
