"""CORS (the Fetch standard's CORS protocol) for a public API: any origin, or an
allow-list, may read every response, errors included, and preflights are answered.

Written here rather than with flask-cors: the policy is one allow-list for the whole
app, which takes a dozen lines, and flask-cors' general machinery (per-resource
regexes, header MultiDicts, a debug log line formatted on every response) measured
8% of serving a page of events.
"""

from collections.abc import Iterable

from flask import Flask, Response, request

# Headers a browser app's JavaScript may read on a cross-origin response.
EXPOSED_HEADERS = (
    "Link",
    "ETag",
    "Location",
    "Deprecation",
    "Sunset",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "WWW-Authenticate",
    # Quoted by a partner reporting a problem; names their writes in the audit log.
    "X-Request-Id",
    # On a 415, the media types a write takes.
    "Accept-Post",
    "Accept-Patch",
    # Where the database stood after a write, for the writer's next reads (api.db).
    "Salvo-Position",
)
# Methods and request headers a preflight may ask for.
ALLOWED_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PATCH", "DELETE")
# Besides Salvo's own (Authorization, If-Match, Idempotency-Key, Salvo-Position), those that browser
# libraries and HTTP clients add by themselves: a preflight that refuses one fails
# the whole request with an opaque error.
ALLOWED_HEADERS = (
    "Accept",
    "Accept-Language",
    "Authorization",
    "Cache-Control",
    "Content-Language",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "If-Modified-Since",
    "If-None-Match",
    "Salvo-Position",
    "X-Requested-With",
)
# Seconds a browser may reuse a preflight's answer.
PREFLIGHT_MAX_AGE = 600


def allowed_origin(origins: str | Iterable[str], sent: str | None) -> str | None:
    """What Access-Control-Allow-Origin says to a request from `sent` (its Origin
    header): "*" for a public API, the origin itself if the allow-list has it, None
    if it may not read the response."""
    if origins == "*":
        return "*"
    return sent if sent is not None and sent in frozenset(origins) else None


def init_app(app: Flask, origins: str | Iterable[str]) -> None:
    """Add the CORS headers to every response of `app`: `origins` is "*" or the
    origins allowed to read."""
    allowed = None if origins == "*" else frozenset(origins)
    exposed = ", ".join(EXPOSED_HEADERS)
    methods = ", ".join(ALLOWED_METHODS)
    headers_by_name = {name.lower(): name for name in ALLOWED_HEADERS}

    def add_cors_headers(response: Response) -> Response:
        if allowed is None:
            # Sent even without an Origin: the response is then the same for every
            # caller, and a shared cache may serve it to browsers too.
            origin = "*"
        else:
            # The answer depends on the Origin, so caches must key on it.
            response.vary.add("Origin")
            sent = request.environ.get("HTTP_ORIGIN")
            if sent not in allowed:
                return response
            origin = sent
        response.headers["Access-Control-Allow-Origin"] = origin
        # Lets the page's script read the Resource Timing of Salvo's responses.
        response.headers["Timing-Allow-Origin"] = origin
        environ = request.environ
        if (
            request.method == "OPTIONS"
            and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD", "").upper() in ALLOWED_METHODS
        ):
            asked = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "")
            granted = [
                headers_by_name[name.strip().lower()]
                for name in asked.split(",")
                if name.strip().lower() in headers_by_name
            ]
            response.headers["Access-Control-Allow-Methods"] = methods
            if granted:
                response.headers["Access-Control-Allow-Headers"] = ", ".join(granted)
            response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
        else:
            response.headers["Access-Control-Expose-Headers"] = exposed
        return response

    app.after_request(add_cors_headers)
