"""Where Salvo's settings come from: defaults, overridden by the environment."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = PROJECT_ROOT / "var" / "salvo.db"


def database_path() -> str:
    """The SQLite file: $SALVO_DATABASE, else var/salvo.db in the project."""
    return os.environ.get("SALVO_DATABASE") or str(DEFAULT_DATABASE)


def rate_limits_enabled() -> bool:
    """False when $SALVO_RATE_LIMITS is `off`."""
    return os.environ.get("SALVO_RATE_LIMITS", "on") != "off"


def rate_limit_storage() -> str:
    """Where rate-limit counters live: $SALVO_RATE_LIMIT_STORAGE, else memory://."""
    return os.environ.get("SALVO_RATE_LIMIT_STORAGE", "memory://")
