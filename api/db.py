"""The app's store, and the one place where the store's errors become problems.

Views reach data only through `store()` (api/store/__init__.py). Whatever a store
raises is answered here: a fault as a 503 (Retry-After where a retry helps) or a
507 for a full disk, a bad parameter as a 400 naming it, a conflict as a 409 with
its ids, never a 500.
"""

import threading
from typing import Any

from flask import Flask, Response, current_app

from api.problems import (
    DATABASE_BUSY,
    DATABASE_DAMAGED,
    DATABASE_UNAVAILABLE,
    EVENT_DELETED,
    ID_TAKEN,
    IDEMPOTENCY_KEY_REUSED,
    NOT_THE_OWNER,
    QUERY_TOO_COSTLY,
    SHARED_RECORD_CONFLICT,
    STORAGE_FULL,
    Problem,
    invalid_parameter,
    invalid_parameters,
    problem_response,
)
from api.store import (
    Busy,
    Damaged,
    EventDeleted,
    Full,
    IdempotencyKeyReused,
    IdsTaken,
    InvalidParameters,
    NoSuchEvent,
    NotTheOwner,
    SharedRecordsDiffer,
    Store,
    StoreError,
    TooCostly,
    open_store,
)

_EXTENSION = "salvo.store"
_opening = threading.Lock()


def store() -> Store:
    """The current app's store, opened on first use from its DATABASE and
    QUERY_BUDGET_S, and kept for the app's life."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    opened: Store | None = app.extensions.get(_EXTENSION)
    if opened is None:
        with _opening:
            opened = app.extensions.get(_EXTENSION)
            if opened is None:
                opened = open_store(
                    app.config["DATABASE"], budget_s=float(app.config["QUERY_BUDGET_S"])
                )
                app.extensions[_EXTENSION] = opened
    return opened


def close_store(app: Flask) -> None:
    """Close `app`'s store if it was opened (a PostgreSQL store's pool ends its
    connections and threads); a later request opens it again."""
    with _opening:
        opened: Store | None = app.extensions.pop(_EXTENSION, None)
    if opened is not None:
        opened.close()


def init_app(app: Flask) -> None:
    """Answer every store error as a problem, wherever a request meets it."""

    def store_fault(error: StoreError) -> Response:
        return problem_response(problem_for(error))

    app.register_error_handler(StoreError, store_fault)


def problem_for(error: StoreError) -> Problem:
    """The problem a client gets for a store's error."""
    if isinstance(error, InvalidParameters):
        return invalid_parameters(
            [{"name": p["name"], "in": "query", "reason": p["reason"]} for p in error.invalid]
        )
    if isinstance(error, TooCostly):
        if error.parameter is not None:
            return invalid_parameter(error.parameter, error.detail)
        return Problem(
            503,
            error.detail,
            type=QUERY_TOO_COSTLY,
            title="Query too costly",
            headers={"Retry-After": "1"},
        )
    if isinstance(error, Busy):
        return Problem(
            503,
            error.detail,
            type=DATABASE_BUSY,
            title="Database busy",
            headers={"Retry-After": str(error.retry_after_s)},
        )
    if isinstance(error, Full):
        return Problem(507, error.detail, type=STORAGE_FULL, title="Insufficient storage")
    if isinstance(error, Damaged):
        return Problem(503, error.detail, type=DATABASE_DAMAGED, title="Database damaged")
    if isinstance(error, NoSuchEvent):
        return Problem(404, error.detail)
    if isinstance(error, EventDeleted):
        return Problem(
            410,
            error.detail,
            type=EVENT_DELETED,
            title="Gone",
            members={"event_id": error.event_id, "deleted_at": error.deleted_at},
        )
    if isinstance(error, IdsTaken):
        return Problem(
            409,
            f"These ids exist already or twice in the batch: {', '.join(error.ids)}. "
            "Change an existing event with PATCH.",
            type=ID_TAKEN,
            title="Conflict",
            members={"conflicting_ids": error.ids},
        )
    if isinstance(error, SharedRecordsDiffer):
        return Problem(
            409,
            "Places and sources are shared by id, and this would change one for every "
            f"event that names it: {error}. Send them as stored (GET "
            "/api/v1/locations/{id} or /api/v1/sources/{id}), or give a different place "
            "or source a new id.",
            type=SHARED_RECORD_CONFLICT,
            title="Conflict",
            members={"conflicting_records": error.records},
        )
    if isinstance(error, IdempotencyKeyReused):
        return Problem(
            422,
            "This Idempotency-Key was used with another request body; use a new key for a "
            "new request.",
            type=IDEMPOTENCY_KEY_REUSED,
            title="Idempotency key reused",
            members={"idempotency_key": error.key},
        )
    if isinstance(error, NotTheOwner):
        # The other key's id and name stay private: they are another partner's.
        owner = "is curated" if error.owner is None else "was created with another API key"
        return Problem(
            403,
            f"The event {error.event_id!r} {owner}: a write key may change only the events "
            "it created. Ask the operator (an admin key) to change it.",
            type=NOT_THE_OWNER,
            title="Not the owner",
        )
    # Unavailable, and any error a store adds later: the instance cannot serve this.
    return Problem(503, error.detail, type=DATABASE_UNAVAILABLE, title="Database unavailable")


def readiness() -> dict[str, Any]:
    """What /readyz reports; a store error (a problem) naming what is wrong if not ready."""
    return store().readiness()
