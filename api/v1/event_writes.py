"""POST, PATCH and DELETE /api/v1/events: partners contribute events with a write key.

Every write runs in one of the store's write transactions (`store().writer()`: one
writer at a time, so two queue instead of failing half-way; docs/design.md, "The
single writer"), validates through the same EventSchema as the seed, and is audited
by the store, which holds every write statement. PATCH and DELETE need `If-Match` with the event's
ETag, so that two partners editing one event never silently overwrite each other.
"""

import datetime
import hashlib
from contextlib import AbstractContextManager
from http import HTTPStatus
from typing import Any

from flask import Response, current_app, request
from marshmallow import ValidationError
from werkzeug.datastructures import Headers

from api.auth import require_write_key
from api.caching import validators
from api.db import store
from api.keys import ApiKey
from api.openapi import (
    IDEMPOTENCY_KEY,
    IDEMPOTENCY_KEY_PATTERN,
    IF_MATCH,
    POSITION_HEADERS,
    WRITE_SECURITY,
    Blueprint,
)
from api.params import json_body
from api.problems import (
    NOT_THE_OWNER,
    PRECONDITION_FAILED,
    PROBLEM_CONTENT_TYPE,
    Problem,
    invalid_body,
    invalid_parameter,
)
from api.request_ids import request_id
from api.store import Author, IdempotentRequest, Writer, content_digest, loadable
from schemas.event import EventSchema
from schemas.fields import WholeMatch, flatten_messages
from schemas.responses import EventBatchSchema, EventListSchema, EventPatchSchema, ProblemSchema

blp = Blueprint(
    "event-writes",
    __name__,
    url_prefix="/api/v1",
    description="Contributing events: needs an API key with write scope.",
)

_SCHEMA = EventSchema()
# Every write may answer these: no key, a read-only key, over the rate limit.
_ERRORS = (401, 403, 429)
# A write with a body may also answer these (api.params.json_body): not JSON or
# nested too deep, too large, not a media type it takes.
_BODY_ERRORS = (400, 413, 415)


# A PATCH or DELETE by a write key that did not create the event.
_NOT_THE_OWNER = (
    "Forbidden: the key may read but not write; or (problem type "
    f"`{NOT_THE_OWNER}`) the event is curated or was created with another key, and "
    "a write key may change only the events it created (an admin key may change any)."
)


def _documented(
    operation_id: str, *statuses: int, header: dict[str, Any], owned: bool = False
) -> Any:
    """Document a write operation: its name for generated clients (their method
    names, so it must not change once published), its key, its request header and
    its error responses; `owned` for those that change an existing event, which only
    its owner may."""

    def decorate(view: Any) -> Any:
        for status in (*_ERRORS, *statuses):
            if owned and status == 403:
                view = blp.alt_response(
                    403,
                    schema=ProblemSchema,
                    description=_NOT_THE_OWNER,
                    content_type=PROBLEM_CONTENT_TYPE,
                )(view)
            else:
                view = blp.alt_response(status, response=HTTPStatus(status).name)(view)
        return blp.doc(operationId=operation_id, security=WRITE_SECURITY, parameters=[header])(view)

    return decorate


@blp.route("/events", methods=["POST"])
@blp.arguments(EventBatchSchema(), location="json", description="Events to create.")
@blp.response(201, EventListSchema, headers=POSITION_HEADERS)
@_documented("createEvents", *_BODY_ERRORS, 409, 422, header=IDEMPOTENCY_KEY)
def create_events(batch: dict[str, Any]) -> Response:
    """Create events

    One to 500 events, all or nothing: if one is invalid or its id exists, none is
    written. Send an `Idempotency-Key` header to make a retry safe: the same key
    with the same body (the same JSON, whatever its key order or whitespace) replays
    the first answer, with `Idempotent-Replayed: true`, instead of writing again, for
    24 hours; after that the key is new.
    """
    key = require_write_key()
    idempotency_key = _idempotency_key()
    # The body is compared by its parsed content (another key order or whitespace
    # is the same request), and by its bytes for answers kept before that.
    idempotent = (
        None
        if idempotency_key is None
        else IdempotentRequest(
            idempotency_key,
            content_digest(json_body()),
            hashlib.sha256(request.get_data()).digest(),
        )
    )
    events = batch["events"]
    # Headers that could fail are built before the write: once it commits, the answer
    # must go out (a retry would otherwise find the event written and be told 500).
    headers = Headers()
    if len(events) == 1:
        headers["Location"] = f"/api/v1/events/{events[0]['id']}"
    # A conflict (ids taken, a shared record that differs, a reused key) leaves as
    # the store's error, which api/db.py answers with its problem.
    with _writer() as writer:
        answer, replayed = writer.create_events(
            events, _author(key), datetime.datetime.now(datetime.UTC), idempotent
        )
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        answer.body, status=answer.status, headers=headers, content_type="application/json"
    )


_IDEMPOTENCY_KEY_FORM = WholeMatch(
    IDEMPOTENCY_KEY_PATTERN,
    error="Must be 1 to 255 visible ASCII characters (0x21-0x7E), such as a UUID.",
)


def _idempotency_key() -> str | None:
    """The request's Idempotency-Key, or None; a 400 naming the header if it is not one."""
    sent = request.headers.get("Idempotency-Key")
    if sent is None:
        return None
    try:
        return str(_IDEMPOTENCY_KEY_FORM(sent))
    except ValidationError as error:
        raise invalid_parameter("Idempotency-Key", str(error.messages[0]), "header") from None


@blp.route("/events/<event_id>", methods=["PATCH"])
@blp.arguments(
    EventPatchSchema(partial=True),
    location="json",
    description="An RFC 7396 merge patch of the event: the fields to change; null removes "
    "an optional field.",
)
@blp.response(
    200,
    EventSchema,
    headers={
        "ETag": {"description": "The event's new ETag.", "schema": {"type": "string"}},
        **POSITION_HEADERS,
    },
)
@_documented("updateEvent", *_BODY_ERRORS, 404, 409, 410, 412, 428, header=IF_MATCH, owned=True)
def update_event(patch: dict[str, Any], event_id: str) -> Response:
    """Change an event

    Needs `If-Match` with the event's current ETag: a 412 says someone changed it
    since you read it.
    """
    key = require_write_key()
    # The patch as sent, to merge (the parser loaded it only to check its fields).
    raw_patch = json_body()
    with _writer() as writer:
        before = _current(writer, event_id, key)
        merged = _merge_patch(loadable(before), raw_patch)
        if merged.get("id") != event_id:
            raise invalid_body(
                [{"name": "id", "in": "body", "reason": "An event's id cannot change."}]
            )
        try:
            event = _SCHEMA.load(merged)
        except ValidationError as error:
            raise invalid_body(
                [
                    {"name": n, "in": "body", "reason": r}
                    for n, r in flatten_messages(error.messages)
                ]
            ) from None
        after = writer.update_event(
            event, before, _author(key), datetime.datetime.now(datetime.UTC)
        )
    response = Response(after.encode(), content_type="application/json")
    response.set_etag(hashlib.sha1(after.encode(), usedforsecurity=False).hexdigest())
    return response


@blp.route("/events/<event_id>", methods=["DELETE"])
@blp.response(204, headers=POSITION_HEADERS)
@_documented("deleteEvent", 404, 410, 412, 428, header=IF_MATCH, owned=True)
def delete_event(event_id: str) -> Response:
    """Delete an event

    Leaves a tombstone: /changes reports the deletion and the event's id answers
    410. Needs `If-Match` with the event's current ETag.
    """
    key = require_write_key()
    with _writer() as writer:
        before = _current(writer, event_id, key)
        writer.delete_event(event_id, before, _author(key), datetime.datetime.now(datetime.UTC))
    return Response(status=204)


def _author(key: ApiKey) -> Author:
    return Author(key.id, key.name, request_id(), request.remote_addr)


def _writer() -> AbstractContextManager[Writer]:
    """The store's write transaction; the app's WRITE_TRACE, if set, sees its SQL (tests)."""
    return store().writer(current_app.config.get("WRITE_TRACE"))


def _current(writer: Writer, event_id: str, key: ApiKey) -> str:
    """The event's stored document, after checking that the key may change it and
    If-Match against its ETag."""
    # A request without its required header is refused whatever the event's state
    # (a 428, never a 404 or 410 that would suggest it was otherwise fine).
    if not request.if_match:
        raise Problem(
            428,
            "Send If-Match with the event's ETag (from GET /api/v1/events/{id}), so that a "
            "change made since you read it is not overwritten.",
        )
    body, digest = writer.event(event_id)
    writer.check_owner(event_id, key.id, admin=key.scope == "admin")
    # Whatever encoding the client read the event in, its ETag names this version.
    if not any(request.if_match.contains(tag) for tag in validators(digest.hex())):
        raise Problem(
            412,
            "The event changed since you read it: GET it again, and apply your change to "
            "the new version.",
            type=PRECONDITION_FAILED,
            title="Precondition Failed",
            # What GET sends as the ETag of the event as it is now (a quoted strong
            # validator): a client tells by it whether its copy is stale.
            members={"current_etag": f'"{digest.hex()}"'},
        )
    return body


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = _merge_patch(result.get(name), value)
    return result
