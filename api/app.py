"""The Flask app: its configuration, extensions and blueprints."""

import functools
import os
from typing import Any

from flask import Flask
from werkzeug.routing import Map

from api import auth, caching, cors, db, docs, limits, problems, request_ids, service, v1
from api.config import (
    database_path,
    database_replica,
    rate_limit_anonymous,
    rate_limit_key,
    rate_limit_storage,
    rate_limits_enabled,
)
from api.openapi import Api
from api.proxies import ForwardedFor, trusted_proxies


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app: defaults, then `config`, then the blueprints."""
    app = _Salvo(__name__)
    app.config.from_mapping(
        DATABASE=database_path(),
        # A PostgreSQL hot standby for reads, or None (api.db; docs/design.md, "Reads
        # from a replica").
        DATABASE_REPLICA=database_replica(),
        # Seconds a client or shared cache may reuse a GET response.
        CACHE_MAX_AGE=60,
        # Origins allowed to read the API from a browser: "*" or a list.
        CORS_ORIGINS=_cors_origins(),
        # Requests per caller and window (Flask-Limiter syntax), and where they are
        # counted: memory:// for one process, redis://host:port across processes.
        RATE_LIMIT_ANONYMOUS=rate_limit_anonymous(),
        RATE_LIMIT_KEY=rate_limit_key(),
        RATE_LIMIT_STORAGE=rate_limit_storage(),
        RATE_LIMITS_ENABLED=rate_limits_enabled(),
        # The balancers in front, whose X-Forwarded-For names the client (api.proxies):
        # none by default, as any client can send that header.
        TRUSTED_PROXIES=trusted_proxies(os.environ.get("SALVO_TRUSTED_PROXIES", "")),
        # Exports (CSV, NDJSON streams) running at once per worker process, from one
        # client address and in all (api.exports).
        EXPORTS_PER_ADDRESS=int(os.environ.get("SALVO_EXPORTS_PER_ADDRESS", "2")),
        EXPORTS_RUNNING=int(os.environ.get("SALVO_EXPORTS_RUNNING", "8")),
        # Seconds one read statement may run (api.db).
        QUERY_BUDGET_S=float(os.environ.get("SALVO_QUERY_BUDGET_S", "1")),
        API_TITLE="Salvo",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        # The interactive docs (Swagger UI) at /api/v1/docs, its assets served by
        # api.docs from a package rather than a CDN.
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=docs.ASSETS_URL,
        JSON_SORT_KEYS=False,
        # The largest request body, in bytes: werkzeug refuses a longer Content-Length
        # before reading, and cuts a chunked body as it passes it (api.params answers
        # 413). A POST's 500 events are ~0.5 MB (the seed's are 0.9-1.5 KB of JSON
        # each); 2 MiB leaves them room for long notes, where a 50 MB body took 5 s
        # and 270 MB of memory to be refused.
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    if config:
        app.config.from_mapping(config)
    # Every address the app reads (limits, exports, the audit trail) is the client's.
    app.wsgi_app = ForwardedFor(app.wsgi_app, tuple(app.config["TRUSTED_PROXIES"]))  # type: ignore[method-assign]

    api = Api(app, spec_kwargs={"info": {"description": _DESCRIPTION}})
    api.spec.components.security_scheme(
        "bearer",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `python -m api keys create`. Writes need one "
            "with write scope (the operations with a lock). Reads need none; a read that "
            "sends one counts against the key's rate limit instead of the address's.",
        },
    )
    api.register_blueprint(service.blp)
    for blueprint in v1.BLUEPRINTS:
        api.register_blueprint(blueprint)
    app.register_blueprint(docs.blp)

    # First: every response, a refusal by any later hook included, names its request.
    request_ids.init_app(app)
    # After Api(): flask-smorest registers its own JSON error handler, which
    # problem+json replaces.
    problems.init_app(app)
    db.init_app(app)
    cors.init_app(app, app.config["CORS_ORIGINS"])
    # The key is identified before the limiter counts the request (limits are per
    # key) and a bad one refused after it (it counts against the address).
    app.before_request(auth.identify_caller)
    limits.init_app(app)
    app.before_request(auth.refuse_bad_keys)
    # The HTML pages' query strings, read where an operation's parameters are.
    docs.init_app(app)
    caching.init_app(app)
    return app


class _Salvo(Flask):
    # A path with doubled slashes is an unknown path (404), not another spelling of a
    # known one (werkzeug serves or redirects it; api.problems refuses its redirects).
    url_map_class = functools.partial(Map, merge_slashes=False)  # type: ignore[assignment]

    def get_send_file_max_age(self, filename: str | None) -> int | None:
        """How long a browser keeps a file of api/static/: a vendored library sits under
        its version (vendor/NAME-VERSION/), so the bytes of its path never change and
        are kept a year; the explorer's own files are revalidated on every load, so an
        upgrade shows at once."""
        if filename is not None and filename.startswith("vendor/"):
            return VENDORED_MAX_AGE
        return super().get_send_file_max_age(filename)


VENDORED_MAX_AGE = 365 * 86400


def _cors_origins() -> str | list[str]:
    value = os.environ.get("SALVO_CORS_ORIGINS", "*").strip()
    return (
        value if value == "*" else [origin.strip() for origin in value.split(",") if origin.strip()]
    )


_DESCRIPTION = """Structured conflict events: missiles and drones launched and intercepted,
casualties with their uncertainty, places with their precision, and the source of every
figure. Errors are RFC 9457 problem details; list endpoints use keyset pagination with
`links.next` and an RFC 8288 Link header. An unknown query parameter is a 400, except
`_`, the cache-buster jQuery's `cache: false` adds, which every GET accepts and ignores.

Start with the [guide](/guide); every field of an event and every code is in the
[codebook](/docs/codebook), every error in the [problem types](/docs/problems), and
what changed in the [changelog](/changelog). Each operation below shows a real request
and its answer on the seed data."""
