"""POST, PATCH and DELETE /api/v1/events: partners contribute events with a write key.

Every write runs in one `BEGIN IMMEDIATE` transaction on its own connection (so
two writers queue on SQLite's lock instead of failing half-way), validates
through the same EventSchema as the seed, and appends to the audit log. PATCH and
DELETE need `If-Match` with the event's ETag, so that two partners editing one
event never silently overwrite each other.
"""

import datetime
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import sqlite_utils
from flask import Response, current_app, request
from marshmallow import ValidationError

from api.auth import require_write_key
from api.keys import ApiKey
from api.openapi import WRITE_SECURITY, Blueprint
from api.problems import Problem, invalid_body
from api.storage import delete_events, open_for_writing, write_events
from api.v1.events import stored_event
from schemas.event import EventSchema
from schemas.fields import TIMESTAMP_FORMAT, flatten_messages
from schemas.responses import EventBatchSchema, EventListSchema, EventPatchSchema

blp = Blueprint(
    "event-writes",
    __name__,
    url_prefix="/api/v1",
    description="Contributing events: needs an API key with write scope.",
)

MAX_BATCH = 500
_SCHEMA = EventSchema()
_ERRORS = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 429: "TOO_MANY_REQUESTS"}


def _documented(operation_id: str, *statuses: int) -> Any:
    """Document a write operation: its name for generated clients (their method
    names, so it must not change once published), its key and its error responses."""

    def decorate(view: Any) -> Any:
        for status in (*_ERRORS, *statuses):
            name = (
                _ERRORS.get(status)
                or {
                    404: "NOT_FOUND",
                    422: "UNPROCESSABLE_ENTITY",
                    409: "CONFLICT",
                    410: "GONE",
                    412: "PRECONDITION_FAILED",
                    428: "PRECONDITION_REQUIRED",
                }[status]
            )
            view = blp.alt_response(status, response=name)(view)
        return blp.doc(operationId=operation_id, security=WRITE_SECURITY)(view)

    return decorate


@blp.route("/events", methods=["POST"])
@blp.arguments(EventBatchSchema(), location="json", description="Events to create.")
@blp.response(201, EventListSchema)
@_documented("createEvents", 409, 422)
def create_events(batch: dict[str, Any]) -> Response:
    """Create events

    One to 500 events, all or nothing: if one is invalid or its id exists, none is
    written. Send an `Idempotency-Key` header to make a retry safe: the same key
    with the same body replays the first answer instead of writing again.
    """
    key = require_write_key()
    idempotency_key = request.headers.get("Idempotency-Key")
    request_digest = hashlib.sha256(request.get_data()).digest()
    with _transaction() as db:
        if idempotency_key is not None:
            replay = _replay(db, key, idempotency_key, request_digest)
            if replay is not None:
                return replay
        events = batch["events"]
        ids = [event["id"] for event in events]
        marks = ", ".join("?" for _ in ids)
        taken = [
            row[0]
            for row in db.execute(
                f"SELECT id FROM events WHERE id IN ({marks}) "
                f"UNION SELECT id FROM event_tombstones WHERE id IN ({marks})",
                [*ids, *ids],
            )
        ]
        if taken or len(set(ids)) < len(ids):
            duplicates = sorted(set(taken) | {i for i in ids if ids.count(i) > 1})
            raise Problem(
                409,
                f"These ids exist already or twice in the batch: {', '.join(duplicates)}. "
                "Change an existing event with PATCH.",
                title="Conflict",
            )
        now = datetime.datetime.now(datetime.UTC)
        write_events(db, events, now)
        documents = _documents(db, ids)
        for event_id in ids:
            _audit(db, key, now, "create", event_id, None, documents[event_id])
        body = b'{"data":[' + b",".join(documents[i].encode() for i in ids) + b"]}"
        if idempotency_key is not None:
            db["idempotent_requests"].insert(
                {
                    "key_id": key.id,
                    "idempotency_key": idempotency_key,
                    "request_digest": request_digest,
                    "status": 201,
                    "body": body,
                    "created_at": now.strftime(TIMESTAMP_FORMAT),
                }
            )
    response = Response(body, status=201, content_type="application/json")
    if len(ids) == 1:
        response.headers["Location"] = f"/api/v1/events/{ids[0]}"
    return response


@blp.route("/events/<event_id>", methods=["PATCH"])
@blp.arguments(
    EventPatchSchema(partial=True),
    location="json",
    description="An RFC 7396 merge patch of the event: the fields to change; null removes "
    "an optional field.",
)
@blp.response(200, EventSchema)
@_documented("updateEvent", 404, 410, 412, 428)
def update_event(patch: dict[str, Any], event_id: str) -> Response:
    """Change an event

    Needs `If-Match` with the event's current ETag: a 412 says someone changed it
    since you read it.
    """
    key = require_write_key()
    raw_patch = request.get_json()
    with _transaction() as db:
        before = _current(db, event_id)
        merged = _merge_patch(_loadable(before), raw_patch)
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
        now = datetime.datetime.now(datetime.UTC)
        if write_events(db, [event], now):
            after = _documents(db, [event_id])[event_id]
            _audit(db, key, now, "update", event_id, before, after)
        else:
            after = before
    response = Response(after.encode(), content_type="application/json")
    response.set_etag(hashlib.sha1(after.encode(), usedforsecurity=False).hexdigest())
    return response


@blp.route("/events/<event_id>", methods=["DELETE"])
@blp.response(204)
@_documented("deleteEvent", 404, 410, 412, 428)
def delete_event(event_id: str) -> Response:
    """Delete an event

    Leaves a tombstone: /changes reports the deletion and the event's id answers
    410. Needs `If-Match` with the event's current ETag.
    """
    key = require_write_key()
    with _transaction() as db:
        before = _current(db, event_id)
        now = datetime.datetime.now(datetime.UTC)
        delete_events(db, [event_id], now)
        _audit(db, key, now, "delete", event_id, before, None)
    return Response(status=204)


@contextmanager
def _transaction() -> Iterator[sqlite_utils.Database]:
    """A write transaction on a connection of its own, taken with BEGIN IMMEDIATE so
    that concurrent writers wait for each other (busy_timeout) rather than fail."""
    db = open_for_writing(current_app.config["DATABASE"])
    try:
        db.execute("BEGIN IMMEDIATE")
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.close()


def _current(db: sqlite_utils.Database, event_id: str) -> str:
    """The event's stored document, after checking If-Match against its ETag."""
    body, digest = stored_event(db.conn, event_id)
    if not request.if_match:
        raise Problem(
            428,
            "Send If-Match with the event's ETag (from GET /api/v1/events/{id}), so that a "
            "change made since you read it is not overwritten.",
        )
    if not request.if_match.contains(digest.hex()):
        raise Problem(
            412,
            "The event changed since you read it: GET it again, and apply your change to "
            "the new version.",
        )
    return body


def _documents(db: sqlite_utils.Database, ids: list[str]) -> dict[str, str]:
    marks = ", ".join("?" for _ in ids)
    return dict(
        db.execute(
            "SELECT e.id, d.body FROM events e JOIN event_documents d ON d.row_id = e.row_id "
            f"WHERE e.id IN ({marks})",
            ids,
        ).fetchall()
    )


def _loadable(document: str) -> dict[str, Any]:
    """A stored document as EventSchema takes it: without the output-only fields."""
    event = orjson.loads(document)
    for output_only in ("acled", "updated_at"):
        event.pop(output_only)
    return event


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


def _audit(
    db: sqlite_utils.Database,
    key: ApiKey,
    at: datetime.datetime,
    action: str,
    event_id: str,
    before: str | None,
    after: str | None,
) -> None:
    db["audit_log"].insert(
        {
            "at": at.strftime(TIMESTAMP_FORMAT),
            "key_id": key.id,
            "key_name": key.name,
            "action": action,
            "event_id": event_id,
            "before": before,
            "after": after,
        }
    )


def _replay(
    db: sqlite_utils.Database, key: ApiKey, idempotency_key: str, request_digest: bytes
) -> Response | None:
    row = db.execute(
        "SELECT request_digest, status, body FROM idempotent_requests "
        "WHERE key_id = ? AND idempotency_key = ?",
        [key.id, idempotency_key],
    ).fetchone()
    if row is None:
        return None
    if row[0] != request_digest:
        raise Problem(
            422,
            "This Idempotency-Key was used with another request body; use a new key for a "
            "new request.",
            title="Idempotency key reused",
        )
    response = Response(row[2], status=row[1], content_type="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response
