"""Rate limits (Flask-Limiter): per API key for partners, per client address for
anonymous callers, counted in memory for one process or in Redis across processes
and instances.

A caller may have several windows (anonymous callers: 600 a minute, 5,000 an hour
and 10,000 a day, api.config). Every counted response carries RateLimit-Limit,
RateLimit-Remaining and RateLimit-Reset of the window with the fewest requests left;
a caller over a limit gets a 429 problem that says who is limited, by what, when to
retry (also as Retry-After) and that a key raises it.

A request is checked against the windows before it is served and counted once its
answer is known: a 304 (a revalidation, whose answer is a few headers) and a 429 (a
refusal) are not counted. Preflights, health probes and the docs' static assets are
never counted: a browser sends a preflight on its own, and a preflight answered 429
fails the real request with an opaque CORS error."""

import math
import time

import limits
from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter, RateLimitExceeded

from api.problems import Problem, problem_response

# What the limiter calls a request that matches no route.
UNMATCHED = "unmatched"
# Endpoints no caller pays for: probes and the docs' assets.
EXEMPT_ENDPOINTS = frozenset({"service.health", "service.ready", "docs.asset", "docs.favicon"})


def init_app(app: Flask) -> Limiter:
    """Attach a limiter configured from app.config (see api.create_app)."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["RATE_LIMIT_STORAGE"])
    app.config.setdefault("RATELIMIT_ENABLED", app.config["RATE_LIMITS_ENABLED"])
    limiter = Limiter(
        key_func=_caller,
        # Requests that match no route (404, 405) count too: Flask-Limiter skips a
        # request without an endpoint, so they are given one.
        request_identifier=_endpoint,
        # One budget per caller across every endpoint, not one per endpoint.
        application_limits=[_limit_for_caller],
        application_limits_exempt_when=_exempt,
        # Counted after the response, so that a 304 can be left uncounted; the check
        # before it still refuses a caller with nothing left, 304 or not.
        application_limits_deduct_when=_counted,
        # Written by add_limit_headers below: Flask-Limiter's own would put
        # Retry-After on every response, where it means "come back later".
        headers_enabled=False,
        key_prefix="salvo",
        # "60 per minute" holds over any 60 seconds, not per clock minute: a fixed
        # window lets a caller send 60 at :59 and 60 more at :00.
        strategy="moving-window",
    )

    def add_limit_headers(response: Response) -> Response:
        # The window the caller will meet first; on a tie, the shortest (listed first).
        current = min(limiter.current_limits, key=lambda window: window.remaining, default=None)
        if current is not None:
            response.headers["RateLimit-Limit"] = str(current.limit.amount)
            response.headers["RateLimit-Remaining"] = str(current.remaining)
            response.headers["RateLimit-Reset"] = str(int(current.reset_at))
        return response

    if app.config["RATE_LIMITS_ENABLED"]:
        # Registered before the limiter's own hook, so run after it (Flask runs
        # after_request hooks last registered first): the request is counted by then.
        app.after_request(add_limit_headers)
    limiter.init_app(app)

    def too_many_requests(error: RateLimitExceeded) -> Response:
        current = limiter.current_limit
        reset_at = current.reset_at if current is not None else time.time() + 60
        wait = max(1, math.ceil(reset_at - time.time()))
        return problem_response(
            Problem(
                429,
                _over_the_limit(error, wait),
                title="Too many requests",
                headers={"Retry-After": str(wait)},
            )
        )

    app.register_error_handler(RateLimitExceeded, too_many_requests)
    return limiter


def _endpoint() -> str:
    return request.endpoint or UNMATCHED


def _exempt() -> bool:
    return request.method == "OPTIONS" or request.endpoint in EXEMPT_ENDPOINTS


def _counted(response: Response) -> bool:
    """Whether the request that got `response` is counted against the caller's limit:
    not a 304, a revalidation browsers make on their own once max-age passes, which
    sends no body (docs/operations.md, "Rate limits", with bench/revalidation.py's
    figures); not a 429, which served nothing."""
    return response.status_code not in (304, 429)


def _caller() -> str:
    # api.auth.identify_caller runs first and leaves the verified key on g; a bad
    # key's request counts against its address, as an anonymous one.
    key = g.get("api_key")
    return f"key:{key.id}" if key else f"address:{request.remote_addr}"


def _limit_for_caller() -> str:
    config = current_app.config
    return config["RATE_LIMIT_KEY"] if g.get("api_key") else config["RATE_LIMIT_ANONYMOUS"]


def _over_the_limit(error: RateLimitExceeded, wait: int) -> str:
    per = _in_words(error.limit.limit)
    key = g.get("api_key")
    if key is not None:
        return (
            f"The API key {key.id!r} may make {per}, and has used them all. "
            f"Retry after {wait} s (Retry-After); ask the operator for a higher limit "
            "if you need one."
        )
    per_key = ", ".join(map(_in_words, limits.parse_many(current_app.config["RATE_LIMIT_KEY"])))
    return (
        f"Callers without an API key may make {per} from one address, and "
        f"{request.remote_addr} has used them all. Retry after {wait} s (Retry-After), "
        f"or send an API key (Authorization: Bearer <key>): a key has {per_key} of its own."
    )


def _in_words(limit: limits.RateLimitItem) -> str:
    """ "60 requests per minute", "5 requests per 10 seconds"."""
    unit = limit.GRANULARITY.name
    window = unit if limit.multiples == 1 else f"{limit.multiples} {unit}s"
    return f"{limit.amount} requests per {window}"
