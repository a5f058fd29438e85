"""Where Salvo's settings come from: defaults, overridden by the environment."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = PROJECT_ROOT / "var" / "salvo.db"


def database_path() -> str:
    """The SQLite file: $SALVO_DATABASE, else var/salvo.db in the project."""
    return os.environ.get("SALVO_DATABASE") or str(DEFAULT_DATABASE)


def database_replica() -> str | None:
    """A hot standby of the PostgreSQL primary to read from (a postgresql:// URL):
    $SALVO_DATABASE_REPLICA, else none (reads go where writes go)."""
    return os.environ.get("SALVO_DATABASE_REPLICA") or None


def rate_limits_enabled() -> bool:
    """False when $SALVO_RATE_LIMITS is `off`."""
    return os.environ.get("SALVO_RATE_LIMITS", "on") != "off"


# Requests an address without a key may make: Open-Meteo's published free-tier limits
# (600 a minute, 5,000 an hour, 10,000 a day), the figures of a public data API that
# browser dashboards call directly. A dashboard session made 22 requests in its first
# minute, so 60 a minute refused a page reloaded three times, and a newsroom behind
# one address shares the budget; the hour and day caps still bound a scraper to
# 10,000 requests a day per address (docs/operations.md, "Rate limits").
DEFAULT_RATE_LIMIT_ANONYMOUS = "600/minute;5000/hour;10000/day"
# A key's own budget, no hour or day cap: partners sync and export on a schedule.
DEFAULT_RATE_LIMIT_KEY = "600/minute"


def rate_limit_anonymous() -> str:
    """Requests per window for an address without a key (Flask-Limiter syntax, several
    windows separated by `;`): $SALVO_RATE_LIMIT_ANONYMOUS, else Open-Meteo's."""
    return os.environ.get("SALVO_RATE_LIMIT_ANONYMOUS", DEFAULT_RATE_LIMIT_ANONYMOUS)


def rate_limit_key() -> str:
    """Requests per window for each API key: $SALVO_RATE_LIMIT_KEY, else 600 a minute."""
    return os.environ.get("SALVO_RATE_LIMIT_KEY", DEFAULT_RATE_LIMIT_KEY)


def rate_limit_storage() -> str:
    """Where rate-limit counters live: $SALVO_RATE_LIMIT_STORAGE, else memory://."""
    return os.environ.get("SALVO_RATE_LIMIT_STORAGE", "memory://")
