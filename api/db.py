"""SQLite connections: per worker thread and database file, a read-only one and a
write one, each opened on first use and reused by every request that thread serves."""

import math
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils
from flask import current_app

from api.problems import DATABASE_UNAVAILABLE, Problem
from api.storage import (
    MissingDatabase,
    OutdatedLayout,
    immediate_transaction,
    open_existing_for_writing,
)

EARTH_RADIUS_KM = 6371.0088


_threads = threading.local()


def get_db() -> sqlite3.Connection:
    """This thread's read-only connection to the app's events database.

    Reusing it saves opening a connection per request (about 0.15 ms, a tenth of
    a page's cost at 1M events). It never holds a read transaction between
    statements, so each query sees every write committed before it.
    """
    path = current_app.config["DATABASE"]
    connections: dict[str, sqlite3.Connection] = _threads.__dict__.setdefault("connections", {})
    if path not in connections:
        connections[path] = connect_read_only(path)
    return connections[path]


def connect_read_only(path: str) -> sqlite3.Connection:
    """Open the database so that no statement can write to it (mode=ro)."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        conn.execute("SELECT 1 FROM events LIMIT 1")
    except sqlite3.OperationalError as error:
        raise Problem(
            503,
            "The events database cannot be read; it may not have been seeded yet "
            "(run `python -m seed`).",
            type=DATABASE_UNAVAILABLE,
            title="Database unavailable",
        ) from error
    conn.row_factory = sqlite3.Row
    conn.create_function("distance_km", 4, distance_km, deterministic=True)
    return conn


@contextmanager
def write_transaction() -> Iterator[sqlite_utils.Database]:
    """A write transaction (BEGIN IMMEDIATE) on this thread's write connection to the
    app's database: committed when the block ends, rolled back if it raises. A 503
    problem if the file is missing or its layout is not this version's; neither is
    ever created here.

    The app's config may name a WRITE_TRACE callable: it is given every SQL statement
    the request runs on this connection, opening and layout check included
    (sqlite3's trace callback), so a test can count them.
    """
    path, trace = current_app.config["DATABASE"], current_app.config.get("WRITE_TRACE")
    writers: dict[str, sqlite_utils.Database] = _threads.__dict__.setdefault("writers", {})
    if path not in writers:
        writers[path] = _connect_writer(path, trace)
    db = writers[path]
    db.conn.set_trace_callback(trace)
    try:
        with immediate_transaction(db):
            yield db
    finally:
        db.conn.set_trace_callback(None)
        if db.conn.in_transaction:
            # The rollback itself failed: start the next write on a fresh connection.
            del writers[path]
            db.close()


def _connect_writer(path: str, trace: Callable[[str], None] | None) -> sqlite_utils.Database:
    try:
        return open_existing_for_writing(path, trace)
    except MissingDatabase as error:
        raise _unavailable(
            "The events database does not exist; create it with `python -m seed` (the "
            "curated events) or `python -m api init` (no events)."
        ) from error
    except OutdatedLayout as error:
        raise _unavailable(f"The events database {error.advice}.") from error


def _unavailable(detail: str) -> Problem:
    return Problem(503, detail, type=DATABASE_UNAVAILABLE, title="Database unavailable")


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance between two WGS84 points."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
