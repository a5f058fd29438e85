"""Salvo: a REST API serving structured conflict events."""

import hashlib
import os
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

from api import auth, cors, limits, problems, service, v1
from api.config import database_path
from api.openapi import Api


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app: defaults, then `config`, then the blueprints."""
    app = Flask(__name__)
    app.config.from_mapping(
        DATABASE=database_path(),
        # Seconds a client or shared cache may reuse a GET response.
        CACHE_MAX_AGE=60,
        # Origins allowed to read the API from a browser: "*" or a list.
        CORS_ORIGINS=_cors_origins(),
        # Requests per caller and window (Flask-Limiter syntax), and where they are
        # counted: memory:// for one process, redis://host:port across processes.
        RATE_LIMIT_ANONYMOUS=os.environ.get("SALVO_RATE_LIMIT_ANONYMOUS", "60/minute"),
        RATE_LIMIT_KEY=os.environ.get("SALVO_RATE_LIMIT_KEY", "600/minute"),
        RATE_LIMIT_STORAGE=os.environ.get("SALVO_RATE_LIMIT_STORAGE", "memory://"),
        RATE_LIMITS_ENABLED=os.environ.get("SALVO_RATE_LIMITS", "on") != "off",
        API_TITLE="Salvo",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_SORT_KEYS=False,
    )
    if config:
        app.config.from_mapping(config)

    api = Api(app, spec_kwargs={"info": {"description": _DESCRIPTION}})
    api.spec.components.security_scheme(
        "bearer",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `python -m api keys create`. Reads need none; "
            "writes need one with write scope.",
        },
    )
    api.register_blueprint(service.blp)
    for blueprint in v1.BLUEPRINTS:
        api.register_blueprint(blueprint)

    # After Api(): flask-smorest registers its own JSON error handler, which
    # problem+json replaces.
    problems.init_app(app)
    cors.init_app(app, app.config["CORS_ORIGINS"])
    # The key is checked before the limiter runs: limits are counted per key.
    app.before_request(auth.check_sent_key)
    limits.init_app(app)
    app.after_request(_cache_validators(app.config["CACHE_MAX_AGE"]))
    return app


def _cors_origins() -> str | list[str]:
    value = os.environ.get("SALVO_CORS_ORIGINS", "*").strip()
    return (
        value if value == "*" else [origin.strip() for origin in value.split(",") if origin.strip()]
    )


def _cache_validators(max_age: int) -> Callable[[Response], Response]:
    """An after_request hook: ETag and Cache-Control on successful reads, and a 304
    when If-None-Match still holds."""
    cache_control = f"public, max-age={max_age}"

    def add_validators(response: Response) -> Response:
        if (
            response.status_code == 200
            and request.method in ("GET", "HEAD")
            and not response.is_streamed
        ):
            # One pass over the names: werkzeug's `name in headers` raises and catches
            # an exception for every header that is absent.
            present = {name.lower() for name, _ in response.headers}
            if "cache-control" not in present:
                response.headers["Cache-Control"] = cache_control
            if "etag" not in present:
                digest = hashlib.sha1(response.get_data(), usedforsecurity=False)
                response.set_etag(digest.hexdigest())
            # Only a revalidation pays for werkzeug's conditional handling; measured,
            # calling it on every read cost a fifth of a page's serving time.
            if "HTTP_IF_NONE_MATCH" in request.environ:
                response.make_conditional(request)
        return response

    return add_validators


_DESCRIPTION = """Structured conflict events: missiles and drones launched and intercepted,
casualties with their uncertainty, places with their precision, and the source of every
figure. Errors are RFC 9457 problem details; list endpoints use keyset pagination with
`links.next` and an RFC 8288 Link header."""
