"""GET /api/v1/changes: every change to the events, in order, for partners' mirrors."""

from typing import Any

import orjson
from flask import Response

from api.db import sends_position, store
from api.openapi import Blueprint, read_operation
from api.pagination import page_response
from api.problems import invalid_parameter
from api.store import Change, FeedPosition, InvalidParameters
from api.store.cursors import decode_cursor, encode_cursor
from schemas.query import ChangesArgs
from schemas.responses import ChangePageSchema

blp = Blueprint(
    "changes",
    __name__,
    url_prefix="/api/v1",
    description="The change feed: created, updated and deleted events, in order.",
)

# The cursor namespace of change tokens, so that an events cursor is refused here.
# A token carries the id of the database's change history and the last seq served
# (docs/operations.md, "Change tokens across a restore").
TOKEN = "changes"

RESYNC = "resync from the start (omit since) or continue from a token this database issued."
NEWER_HISTORY = (
    "This token comes from a newer history than this database: it was issued before "
    f"the database was restored from a backup, and changes after it would be missed; {RESYNC}"
)
OTHER_HISTORY = (
    "This token comes from another history of this database: it was issued before "
    "the database was restored from a backup (or replaced), and its position means "
    f"nothing here; {RESYNC}"
)
UNCHECKED = (
    "This token predates change histories, and this database cannot tell whether it "
    "issued it; resync from the start (omit since)."
)
NOT_A_TOKEN = "Not a cursor issued by this API; use links.next as given."


@read_operation(
    blp,
    "/changes",
    operation_id="listChanges",
    args=ChangesArgs,
    response=ChangePageSchema,
    paged=True,
    primary=True,
)
def list_changes(args: dict[str, Any]) -> Response:
    """List changes since a token

    Each event appears once, at its latest change, with its current document; a
    deleted event appears as a `deleted` change. Apply the changes in order, follow
    `links.next` until it is null, and keep `meta.since` for the next sync: changes
    made while you page come after it, so none is ever missed.
    """
    position = store().feed_position()
    after = _since(args["since"], position) if "since" in args else 0
    rows, more = store().changes(after, args["limit"])
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
    meta = {"limit": args["limit"], "since": encode_cursor(TOKEN, [position.history, last])}
    next_key = (position.history, last) if more else None
    response = page_response(items, next_key, TOKEN, meta, param="since")
    # A mirror must see new changes at once: caches may keep the answer but must
    # revalidate it (its ETag makes that cheap).
    response.headers["Cache-Control"] = "no-cache"
    # Read from the primary: the answer says how far, so that the client's next
    # reads through a replica find every event it names.
    sends_position()
    return response


def _kind(change: Change) -> str:
    if change.body is None:
        return "deleted"
    return "created" if change.created else "updated"


def _since(token: str, position: FeedPosition) -> int:
    """The seq a `since` token carries, if this database issued the token in its
    current history; a 400 naming `since` otherwise, so that a mirror resyncs
    instead of silently skipping changes."""
    try:
        history, after = decode_cursor(token, TOKEN, (str, int), param="since")
    except InvalidParameters:
        # Tokens issued before change histories carry the seq alone (this second
        # decoding refuses what is no token at all).
        (after,) = decode_cursor(token, TOKEN, (int,), param="since")
        history = _UNNAMED
    if history is None or after is None:
        raise invalid_parameter("since", NOT_A_TOKEN)
    if after > position.highest_seq:
        raise invalid_parameter("since", NEWER_HISTORY)
    if history is _UNNAMED:
        # Trusted up to the seq the file had when its history got an id: it issued
        # such a token itself, and has not been restored since (a restore resets it).
        if after > position.old_tokens_until:
            raise invalid_parameter("since", UNCHECKED)
    elif history != position.history:
        raise invalid_parameter("since", OTHER_HISTORY)
    return int(after)


# The history of a token issued before tokens named one.
_UNNAMED = object()
