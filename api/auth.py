"""Who is calling: the API key in `Authorization: Bearer <key>`, checked on every
request that sends one, and required (with write scope) by the write operations."""

from flask import g, request

from api.db import get_db
from api.keys import ApiKey, verify_key
from api.problems import Problem

_CHALLENGE = 'Bearer realm="salvo"'


WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def check_sent_key() -> None:
    """before_request: a key that is sent must be valid, even on a read (a partner with
    a revoked or mistyped key is told, not silently served as anonymous), and a write
    needs a write key, checked before its body is even parsed."""
    g.api_key = None
    header = request.environ.get("HTTP_AUTHORIZATION")
    if header is None:
        if request.method in WRITE_METHODS and request.routing_exception is None:
            require_write_key()
        return
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "Send the API key as `Authorization: Bearer <key>`.",
            title="Unauthorized",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    key = verify_key(get_db(), token.strip())
    if key is None:
        raise Problem(
            401,
            "The API key is not valid: it is unknown, mistyped or revoked.",
            title="Unauthorized",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
        )
    g.api_key = key
    if request.method in WRITE_METHODS and request.routing_exception is None:
        require_write_key()


def require_write_key() -> ApiKey:
    """The caller's key, which must have write scope: 401 without one, 403 with a
    read-only one."""
    key: ApiKey | None = g.get("api_key")
    if key is None:
        raise Problem(
            401,
            "This operation needs an API key with write scope, sent as "
            "`Authorization: Bearer <key>`.",
            title="Unauthorized",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    if key.scope != "write":
        raise Problem(403, f"The key {key.id!r} may read but not write.", title="Forbidden")
    return key
