"""SQLite connections: read-only ones whose statements stop at a deadline, and the
file identities (device and inode) that tell a replaced file or -wal from the one a
connection holds."""

import math
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from api.store import KeptTotals

EARTH_RADIUS_KM = 6371.0088

# Seconds one read statement may run before SQLite is told to stop (a 500-character
# OR of prefix terms took 8 s at 100,000 events); a worker is never held longer.
QUERY_BUDGET_S = 1.0
# SQLite calls the budget's check every this many virtual-machine instructions
# (about a tenth of a millisecond): often enough to stop on time, rarely enough
# to cost nothing measurable.
BUDGET_CHECK_EVERY = 10_000

Identity = tuple[int, int]


class ReadConnection(sqlite3.Connection):
    """A read-only connection whose statements stop at a deadline (SQLITE_INTERRUPT).

    `memo` holds what one read computes once for several statements (a search's
    most recent matches): start_budget, called as each read begins, empties it.
    `total` keeps /events totals across reads while the database is unchanged."""

    deadline = math.inf
    budget_s = QUERY_BUDGET_S

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.memo: dict[object, object] = {}
        self._totals = KeptTotals()

    def start_budget(self, seconds: float | None = None) -> None:
        """Give the statements from now on `seconds` in all (default: budget_s)."""
        self.deadline = time.monotonic() + (self.budget_s if seconds is None else seconds)
        self.memo.clear()

    def over_budget(self) -> int:
        return 1 if time.monotonic() > self.deadline else 0

    def total(self, key: str, count: Callable[[], tuple[int, bool]]) -> tuple[int, bool]:
        """The total of the filters `key` names: count() once, then kept until another
        connection commits (PRAGMA data_version changes: this one never writes). Every
        page of a listing has the same total; reading it from the rollups took 50-150
        µs of a 0.5-0.7 ms page, a kept one 2-3 µs (bench/inprocess.py, 1M events)."""
        (version,) = self.execute("PRAGMA data_version").fetchone()
        found = self._totals.get(version, key)
        if found is None:
            found = count()
            self._totals.keep(version, key, found)
        return found


def identity(path: str) -> Identity | None:
    """The device and inode of the file at path, or None if there is none."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def wal_path(path: str) -> str:
    """The write-ahead log SQLite keeps beside the database at path."""
    return f"{path}-wal"


def connect_read_only(path: str, budget_s: float = QUERY_BUDGET_S) -> ReadConnection:
    """Open the database so that no statement can write to it (mode=ro), with a
    budget for its statements (start_budget), and check that it can be read."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, factory=ReadConnection)
    try:
        conn.execute("SELECT 1 FROM events LIMIT 1")
    except sqlite3.Error:
        conn.close()
        raise
    conn.row_factory = sqlite3.Row
    conn.create_function("distance_km", 4, distance_km, deterministic=True)
    conn.budget_s = budget_s
    conn.set_progress_handler(conn.over_budget, BUDGET_CHECK_EVERY)
    return conn


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance between two WGS84 points."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
