"""The one place that turns errors into RFC 9457 application/problem+json responses."""

from typing import Any
from urllib.parse import urlsplit

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

PROBLEM_CONTENT_TYPE = "application/problem+json"

# Problem types beyond the plain HTTP statuses (which use "about:blank"). The
# URIs are identifiers, documented in docs/problems.md; clients compare them. Each
# leads a person who opens it to its row of that page (api/docs.py).
PROBLEM_TYPES = "/problems/"
INVALID_PARAMETERS = "/problems/invalid-parameters"
INVALID_BODY = "/problems/invalid-body"
UNKNOWN_VERSION = "/problems/unknown-version"
DATABASE_UNAVAILABLE = "/problems/database-unavailable"
DATABASE_BUSY = "/problems/database-busy"
DATABASE_DAMAGED = "/problems/database-damaged"
STORAGE_FULL = "/problems/storage-full"
QUERY_TOO_COSTLY = "/problems/query-too-costly"
# The edge's own refusals (api/edge.py): a body that took too long, a server whose
# threads are all taken, a client with too many exports running.
SLOW_REQUEST = "/problems/slow-request"
SERVER_BUSY = "/problems/server-busy"
TOO_MANY_EXPORTS = "/problems/too-many-exports"
NOT_THE_OWNER = "/problems/not-the-owner"
# The conflicts of partners' writes (api/v1/event_writes.py), each with members a
# program reads instead of the detail's prose (docs/problems.md lists them): a POST
# naming ids that are taken, or a place or source that would change for every event
# naming it; a PATCH or DELETE of an event changed since it was read; an event
# deleted (a tombstone: reads and writes alike); an Idempotency-Key sent again with
# another body. Each keeps the status it had as `about:blank`.
ID_TAKEN = "/problems/id-taken"
SHARED_RECORD_CONFLICT = "/problems/shared-record-conflict"
PRECONDITION_FAILED = "/problems/precondition-failed"
EVENT_DELETED = "/problems/event-deleted"
IDEMPOTENCY_KEY_REUSED = "/problems/idempotency-key-reused"

API_VERSIONS = ("v1",)


class Problem(HTTPException):
    """An error with a problem type, raised from anywhere in request handling."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type: str = "about:blank",
        title: str | None = None,
        invalid_params: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        members: dict[str, Any] | None = None,
    ) -> None:
        """`members` are the type's extension members (RFC 9457 section 3.2), written
        after the standard ones; each must be declared in schemas.responses.ProblemSchema,
        which the contract publishes with no other members allowed."""
        super().__init__(description=detail)
        self.code = status
        self.type = type
        self.title = title
        self.invalid_params = invalid_params
        self.extra_headers = headers or {}
        self.members = members or {}


def invalid_parameter(name: str, reason: str, location: str = "query") -> Problem:
    """A 400 naming one bad request parameter."""
    return invalid_parameters([{"name": name, "in": location, "reason": reason}])


def invalid_parameters(params: list[dict[str, str]]) -> Problem:
    """A 400 naming every bad request parameter and why it was refused."""
    detail = "; ".join(f"{p['name']}: {p['reason']}" for p in params)
    return Problem(
        400,
        detail,
        type=INVALID_PARAMETERS,
        title="Invalid request parameters",
        invalid_params=params,
    )


def invalid_body(params: list[dict[str, str]]) -> Problem:
    """A 422 naming every refused field of a request body and why."""
    detail = "; ".join(f"{p['name']}: {p['reason']}" for p in params)
    return Problem(
        422, detail, type=INVALID_BODY, title="Invalid request body", invalid_params=params
    )


def problem_response(error: HTTPException) -> Response:
    """Render any HTTPException (including Flask's wrapped 500s) as problem+json."""
    status = error.code or 500
    body: dict[str, Any] = {
        "type": getattr(error, "type", "about:blank"),
        "title": getattr(error, "title", None) or error.name,
        "status": status,
        "detail": error.description if status < 500 else _server_error_detail(status, error),
        "instance": request.path,
    }
    invalid_params = getattr(error, "invalid_params", None)
    if invalid_params:
        body["invalid_params"] = invalid_params
    body.update(getattr(error, "members", {}))
    response = Response(orjson.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    # Keep what the exception says about the response, e.g. Allow on a 405.
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    for name, value in getattr(error, "extra_headers", {}).items():
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


def _server_error_detail(status: int, error: HTTPException) -> str:
    # Deliberate server-side problems (e.g. 503 database unavailable) carry a
    # detail written for clients; an unexpected exception never leaks its text.
    if isinstance(error, Problem):
        return error.description or ""
    return "The server failed to answer this request; the failure has been logged."


def not_found(error: HTTPException) -> Response:
    """404s under /api/<version>/ name the versions that exist."""
    parts = request.path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "api" and parts[1] not in API_VERSIONS:
        return problem_response(
            Problem(
                404,
                f"API version {parts[1]!r} does not exist; available: {', '.join(API_VERSIONS)}.",
                type=UNKNOWN_VERSION,
                title="Unknown API version",
            )
        )
    return problem_response(error)


def refuse_redirects() -> None:
    """before_request: a path werkzeug would redirect (a doubled or a trailing slash)
    is a 404 problem naming the path that exists, not an HTML 308: routing redirects
    bypass error handlers, and a client following one may drop its method or body."""
    redirect = request.routing_exception
    if isinstance(redirect, RequestRedirect):
        target = urlsplit(redirect.new_url).path
        raise Problem(404, f"No resource at {request.path}; did you mean {target}?")


def init_app(app: Flask) -> None:
    """Route every HTTP error, and every unexpected exception, through problem+json."""
    app.register_error_handler(HTTPException, problem_response)
    app.register_error_handler(404, not_found)
    app.before_request(refuse_redirects)
