"""Rate limits (Flask-Limiter): per API key for partners, per client address for
anonymous callers, counted in memory for one process or in Redis across workers
and instances. A caller over the limit gets a 429 problem with Retry-After; every
response carries RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset."""

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.constants import HeaderNames


def init_app(app: Flask) -> Limiter:
    """Attach a limiter configured from app.config (see api.create_app)."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["RATE_LIMIT_STORAGE"])
    app.config.setdefault("RATELIMIT_ENABLED", app.config["RATE_LIMITS_ENABLED"])
    limiter = Limiter(
        key_func=_caller,
        # One budget per caller across every endpoint, not one per endpoint.
        application_limits=[_limit_for_caller],
        application_limits_exempt_when=lambda: request.endpoint == "service.health",
        headers_enabled=True,
        header_name_mapping={
            HeaderNames.LIMIT: "RateLimit-Limit",
            HeaderNames.REMAINING: "RateLimit-Remaining",
            HeaderNames.RESET: "RateLimit-Reset",
            HeaderNames.RETRY_AFTER: "Retry-After",
        },
        retry_after="delta-seconds",
        key_prefix="salvo",
    )
    limiter.init_app(app)
    return limiter


def _caller() -> str:
    # api.auth.check_sent_key runs first and leaves the verified key on g.
    key = g.get("api_key")
    return f"key:{key.id}" if key else f"address:{request.remote_addr}"


def _limit_for_caller() -> str:
    config = current_app.config
    return config["RATE_LIMIT_KEY"] if g.get("api_key") else config["RATE_LIMIT_ANONYMOUS"]
