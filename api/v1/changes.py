"""GET /api/v1/changes: every change to the events, in order, for partners' mirrors."""

from typing import Any

import orjson
from flask import Response

from api import query
from api.db import get_db
from api.openapi import Blueprint, read_operation
from api.pagination import decode_cursor, encode_cursor, page_response
from schemas.query import ChangesArgs
from schemas.responses import ChangePageSchema

blp = Blueprint(
    "changes",
    __name__,
    url_prefix="/api/v1",
    description="The change feed: created, updated and deleted events, in order.",
)

# The cursor namespace of change tokens, so that an events cursor is refused here.
TOKEN = "changes"


@read_operation(
    blp,
    "/changes",
    operation_id="listChanges",
    args=ChangesArgs,
    response=ChangePageSchema,
    paged=True,
)
def list_changes(args: dict[str, Any]) -> Response:
    """List changes since a token

    Each event appears once, at its latest change, with its current document; a
    deleted event appears as a `deleted` change. Apply the changes in order, follow
    `links.next` until it is null, and keep `meta.since` for the next sync: changes
    made while you page come after it, so none is ever missed.
    """
    after = 0
    if "since" in args:
        (after,) = decode_cursor(args["since"], TOKEN, (int,), param="since")
    rows = query.changes(get_db(), after, args["limit"])
    items = [
        orjson.dumps(
            {
                "seq": row.seq,
                "change": _kind(row),
                "event_id": row.id,
                "changed_at": row.changed_at,
                "event": None if row.body is None else orjson.Fragment(row.body),
            }
        )
        for row in rows
    ]
    last = rows[-1].seq if rows else after
    full = len(rows) == args["limit"]
    meta = {"limit": args["limit"], "since": encode_cursor(TOKEN, [last])}
    response = page_response(items, (last,) if full else None, TOKEN, meta, param="since")
    # A mirror must see new changes at once: caches may keep the answer but must
    # revalidate it (its ETag makes that cheap).
    response.headers["Cache-Control"] = "no-cache"
    return response


def _kind(change: query.Change) -> str:
    if change.body is None:
        return "deleted"
    return "created" if change.created else "updated"
