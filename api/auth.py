"""Who is calling: the API key in `Authorization: Bearer <key>`, checked on every
request that sends one, and required (with write or admin scope) by the write
operations.

Two steps around the rate limiter (api.limits): identify_caller finds the key
before the limiter counts the request, refuse_bad_keys answers 401/403 after it,
so that a request with a bad key counts against its address like an anonymous one
and a flood of bogus keys meets the anonymous limit."""

from flask import g, request

from api.db import store
from api.keys import WRITE_SCOPES, ApiKey, verify_key, well_formed
from api.problems import Problem

_CHALLENGE = 'Bearer realm="salvo"'


WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def identify_caller() -> None:
    """before_request, before the limiter: g.api_key is the verified key sent, or
    None; a key that is sent but not valid leaves its 401 in g.key_refused. A
    malformed key is refused without a database lookup."""
    g.api_key, g.key_refused = None, None
    header = request.environ.get("HTTP_AUTHORIZATION")
    if header is None:
        return
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        g.key_refused = Problem(
            401,
            "Send the API key as `Authorization: Bearer <key>`.",
            title="Unauthorized",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
        return
    token = token.strip()
    key = verify_key(store().live_key, token) if well_formed(token) else None
    if key is None:
        g.key_refused = Problem(
            401,
            "The API key is not valid: it is unknown, mistyped or revoked.",
            title="Unauthorized",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
        )
    g.api_key = key


def refuse_bad_keys() -> None:
    """before_request, after the limiter: a key that is sent must be valid, even on
    a read (a partner with a revoked or mistyped key is told, not silently served as
    anonymous), and a write needs a write key, checked before its body is parsed."""
    refused: Problem | None = g.get("key_refused")
    if refused is not None:
        raise refused
    if request.method in WRITE_METHODS and request.routing_exception is None:
        require_write_key()


def require_write_key() -> ApiKey:
    """The caller's key, which must have write or admin scope: 401 without one, 403
    with a read-only one."""
    key: ApiKey | None = g.get("api_key")
    if key is None:
        raise Problem(
            401,
            "This operation needs an API key with write scope, sent as "
            "`Authorization: Bearer <key>`.",
            title="Unauthorized",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    if key.scope not in WRITE_SCOPES:
        raise Problem(403, f"The key {key.id!r} may read but not write.", title="Forbidden")
    return key
