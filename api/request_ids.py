"""Request ids: every request gets a random id, returned as `X-Request-Id` on every
response (errors included) and recorded with each audit log entry it makes, so that
a partner quoting it finds their write in the log.

The id is always the server's own: an `X-Request-Id` sent by a client is not used,
since the audit log must not carry ids a client chose (they could repeat, or name
another's request). A client correlates its own id with the one returned."""

import secrets

from flask import Flask, Response, g

HEADER = "X-Request-Id"


def new_request_id() -> str:
    """A fresh id: 128 random bits, as hex, unique without coordination between
    processes."""
    return secrets.token_hex(16)


def request_id() -> str:
    """This request's id."""
    return str(g.request_id)


def init_app(app: Flask) -> None:
    """Give each request its id, before any other hook can refuse it."""

    def assign() -> None:
        g.request_id = new_request_id()

    def send(response: Response) -> Response:
        response.headers[HEADER] = g.request_id
        return response

    app.before_request(assign)
    app.after_request(send)
