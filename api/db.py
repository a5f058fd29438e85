"""The app's store, and the one place where the store's errors become problems.

Views reach data only through `store()` (api/store/__init__.py). Whatever a store
raises is answered here: a fault as a 503 (Retry-After where a retry helps) or a
507 for a full disk, a bad parameter as a 400 naming it, a conflict as a 409 with
its ids, never a 500.
"""

import threading
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context, request

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
    parse_position,
    pooling_refusal,
    position_text,
    replica_refusal,
)

_EXTENSION = "salvo.store"
_opening = threading.Lock()


def store() -> Store:
    """The current app's store, opened on first use from its DATABASE,
    DATABASE_REPLICA and QUERY_BUDGET_S, and kept for the app's life; in a request
    that carries a position, the store whose reads see it (Store.after)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    opened: Store | None = app.extensions.get(_EXTENSION)
    if opened is None:
        with _opening:
            opened = app.extensions.get(_EXTENSION)
            if opened is None:
                opened = open_store(
                    app.config["DATABASE"],
                    budget_s=float(app.config["QUERY_BUDGET_S"]),
                    replica=app.config.get("DATABASE_REPLICA"),
                )
                app.extensions[_EXTENSION] = opened
    if has_request_context():
        position: int | None = g.get(_POSITION)
        if position is not None:
            return opened.after(position)
    return opened


def close_store(app: Flask) -> None:
    """Close `app`'s store if it was opened (a PostgreSQL store's pool ends its
    connections and threads); a later request opens it again."""
    with _opening:
        opened: Store | None = app.extensions.pop(_EXTENSION, None)
    if opened is not None:
        opened.close()


def init_app(app: Flask) -> None:
    """Answer every store error as a problem, wherever a request meets it; refuse a
    replica beside a SQLite database at once (ValueError), not at the first request;
    read the position a request carries, and send one with every answer to a write."""
    refusal = replica_refusal(
        app.config["DATABASE"], app.config.get("DATABASE_REPLICA")
    ) or pooling_refusal(app.config["DATABASE"])
    if refusal is not None:
        raise ValueError(refusal)

    def store_fault(error: StoreError) -> Response:
        return problem_response(problem_for(error))

    app.register_error_handler(StoreError, store_fault)
    app.before_request(_read_position)
    app.after_request(_send_position)


# Read-your-writes across a replica (docs/design.md, "Reads from a replica"). Every
# answer to a write carries the primary's position after it (this header, and the
# cookie for clients that keep cookies: browsers, requests.Session); a read that
# sends either back is served by the replica only once it has replayed that far,
# else by the primary. Instances share nothing for it: the client carries it.
POSITION_HEADER = "Salvo-Position"
POSITION_COOKIE = "salvo_position"
# Seconds a browser keeps the position: a standby replays a commit within
# milliseconds, so this is only for a replica that fell behind; past it, the
# client's reads are as fresh as the replica (GitLab's database load balancing
# sticks a session to the primary for 30 s after a write too).
POSITION_COOKIE_MAX_AGE = 30
_POSITION = "salvo_position"
_POSITION_REASON = (
    "Not a position sent by this API: send back the {name} of an answer as given "
    "(such as 16/B374D848)."
)


def _read_position() -> None:
    """The latest position the request carries (header or cookie) into `g`; a 400
    naming the header or the cookie if one is not a position (the bad cookie is
    then deleted, so that a browser's next request is served)."""
    req = request._get_current_object()  # type: ignore[attr-defined]  # the proxy once
    if req.routing_exception is not None:
        return  # a 404 or 405 reads nothing: its answer must not depend on these
    # Read from the environ, and the Cookie header parsed only when it names the
    # position's cookie: through the request's headers and cookies, this hook took
    # 21 µs of every request (bench/inprocess.py's type + date page, 1.0 ms).
    environ = req.environ
    cookie = None
    if POSITION_COOKIE in environ.get("HTTP_COOKIE", ""):
        cookie = req.cookies.get(POSITION_COOKIE)
    latest = None
    for name, location, sent in (
        (POSITION_HEADER, "header", environ.get("HTTP_SALVO_POSITION")),
        (POSITION_COOKIE, "cookie", cookie),
    ):
        if sent is None:
            continue
        try:
            position = parse_position(sent)
        except ValueError:
            if location == "cookie":
                g.salvo_forget_position = True
            raise invalid_parameter(
                name, _POSITION_REASON.format(name=location), location
            ) from None
        latest = position if latest is None else max(latest, position)
    if latest is not None:
        setattr(g, _POSITION, latest)


def _send_position(response: Response) -> Response:
    """An answer to a write (or one that says it read the primary, `sends_position`)
    gets the primary's position now: past every commit it wrote or read."""
    # Each proxy taken once: through them, this hook took 10 µs of every request.
    flags, req = g._get_current_object(), request._get_current_object()  # type: ignore[attr-defined]
    if flags.pop("salvo_forget_position", False):
        response.delete_cookie(POSITION_COOKIE)
    from api.auth import WRITE_METHODS  # api.auth imports this module

    write = req.method in WRITE_METHODS
    if (
        not (write or flags.get("salvo_primary_read"))
        or response.status_code >= 500
        or req.routing_exception is not None
    ):
        return response
    try:
        position = store().position()
    except StoreError:
        # The primary failed after answering: the answer still goes out, without.
        return response
    if position is not None:
        response.headers[POSITION_HEADER] = position_text(position)
        if write:
            response.set_cookie(
                POSITION_COOKIE,
                position_text(position),
                max_age=POSITION_COOKIE_MAX_AGE,
                httponly=True,
                samesite="Lax",
            )
    return response


def sends_position() -> None:
    """Called by a view whose answer was read from the primary (the change feed):
    the answer carries the primary's position, so that what the client reads next
    is at least as new (an event a /changes page names is found)."""
    g.salvo_primary_read = True


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
