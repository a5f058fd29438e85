"""SQLite connections and what can go wrong with them.

Per worker thread and database file, a read-only connection and a write one, each
opened on first use and reused by every request that thread serves, as long as the
file at the path is still the one they hold (device and inode, compared on every
request: a replaced file is reopened, and no write is acknowledged into a file that
is no longer at the path). A write is not acknowledged either if the write-ahead log
it went into is no longer the `-wal` at the path (deleted by hand): nothing SQLite
reads after a restart. A read statement may run for the app's QUERY_BUDGET_S
(default QUERY_BUDGET_S) at most.
Every database fault becomes a problem (503, or 507 for a full disk), never a 500.
"""

import contextlib
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils
from flask import Flask, Response, current_app, has_app_context

from api.params import sent_parameters
from api.problems import (
    DATABASE_BUSY,
    DATABASE_DAMAGED,
    DATABASE_UNAVAILABLE,
    QUERY_TOO_COSTLY,
    STORAGE_FULL,
    Problem,
    invalid_parameter,
    problem_response,
)
from api.store.sqlite.layout import (
    MissingDatabase,
    OutdatedLayout,
    immediate_transaction,
    layout_differences,
    open_existing_for_writing,
)

EARTH_RADIUS_KM = 6371.0088

# Seconds one read statement may run before SQLite is told to stop (a 500-character
# OR of prefix terms took 8 s at 100,000 events); a worker is never held longer.
QUERY_BUDGET_S = 1.0
# SQLite calls the budget's check every this many virtual-machine instructions
# (about a tenth of a millisecond): often enough to stop on time, rarely enough
# to cost nothing measurable.
BUDGET_CHECK_EVERY = 10_000
# Seconds a client should wait before retrying a write that found the database busy.
BUSY_RETRY_AFTER_S = 1

Identity = tuple[int, int]

_threads = threading.local()
# Database files seen damaged, until a check reads them cleanly.
_damaged: set[str] = set()
# Database files whose -wal was deleted while this process had it open: no write is
# acknowledged into them, and /readyz says not ready, until the process restarts.
_wal_removed: set[str] = set()
# Bumped when a file is seen damaged or reads cleanly again: every thread then opens
# new connections, whose page caches hold no page read before.
_generation = [0]


class ReadConnection(sqlite3.Connection):
    """A read-only connection whose statements stop at a deadline (SQLITE_INTERRUPT)."""

    deadline = math.inf
    # Set from the app's QUERY_BUDGET_S when the connection is opened: a stream renews
    # the budget after the request's context is gone.
    budget_s = QUERY_BUDGET_S

    def start_budget(self, seconds: float | None = None) -> None:
        """Give the statements from now on `seconds` in all (default: budget_s)."""
        self.deadline = time.monotonic() + (self.budget_s if seconds is None else seconds)

    def over_budget(self) -> int:
        return 1 if time.monotonic() > self.deadline else 0


@dataclass
class _Held:
    """A connection, the identity of the file it was opened on and of the -wal it
    opened beside it (None outside WAL mode), and when."""

    conn: Any
    identity: Identity
    wal: Identity | None
    generation: int

    def current(self, identity: Identity | None) -> bool:
        return self.identity == identity and self.generation == _generation[0]


def identity(path: str) -> Identity | None:
    """The device and inode of the file at path, or None if there is none."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def get_db() -> ReadConnection:
    """This thread's read-only connection to the app's events database, reopened if
    the file at the path was replaced, its statements given QUERY_BUDGET_S anew.

    Reusing it saves opening a connection per request (about 0.15 ms, a tenth of
    a page's cost at 1M events). It never holds a read transaction between
    statements, so each query sees every write committed before it.
    """
    path = current_app.config["DATABASE"]
    conn: ReadConnection = _held("readers", path, lambda: connect_read_only(path)).conn
    # The current app's budget: a thread's connection to a path may have been opened
    # for another app on the same file (tests run several in one process).
    conn.budget_s = _budget()
    conn.start_budget()
    return conn


def _held(kind: str, path: str, connect: Callable[[], Any]) -> _Held:
    """This thread's connection of `kind` to the database at path, opened by `connect`
    on first use, and again when the file at the path is another one or was marked
    damaged or repaired since; a 503 problem if there is no file."""
    held: dict[str, _Held] = _threads.__dict__.setdefault(kind, {})
    current = identity(path)
    cached = held.get(path)
    if cached is None or not cached.current(current):
        if cached is not None:
            del held[path]
            cached.conn.close()
        if current is None:
            raise _missing(path)
        conn = connect()
        # SQLite opened (or created) the -wal at the path while connecting, and keeps
        # it open as long as the connection: its identity now is the connection's.
        cached = held[path] = _Held(conn, current, identity(wal_path(path)), _generation[0])
    return cached


def wal_path(path: str) -> str:
    """The write-ahead log SQLite keeps beside the database at path."""
    return f"{path}-wal"


def connect_read_only(path: str) -> ReadConnection:
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
    conn.budget_s = _budget()
    conn.set_progress_handler(conn.over_budget, BUDGET_CHECK_EVERY)
    return conn


@contextmanager
def write_transaction() -> Iterator[sqlite_utils.Database]:
    """A write transaction (BEGIN IMMEDIATE) on this thread's write connection to the
    app's database: committed when the block ends, rolled back if it raises. A 503
    problem if the file is missing or its layout is not this version's (neither is
    ever created here), and if the file at the path was replaced during the
    transaction: then nothing is committed, since the write would land in a file no
    reader sees; and if the -wal at the path is no longer the one this connection
    writes into: then no write is made until the
    process restarts (see _keep_what_the_removed_wal_holds).

    The app's config may name a WRITE_TRACE callable: it is given every SQL statement
    the request runs on this connection, opening and layout check included
    (sqlite3's trace callback), so a test can count them.
    """
    path, trace = current_app.config["DATABASE"], current_app.config.get("WRITE_TRACE")
    cached = _held("writers", path, lambda: _connect_writer(path, trace))
    if path in _damaged:
        _check_repaired(path)
    db: sqlite_utils.Database = cached.conn
    if path in _wal_removed:
        _keep_what_the_removed_wal_holds(path, cached)
        raise _wal_removed_problem(path)
    db.conn.set_trace_callback(trace)
    try:
        with immediate_transaction(db):
            yield db
            # The last moment before COMMIT: a file moved or deleted meanwhile keeps
            # this connection, but the write would be lost with it.
            if identity(path) != cached.identity:
                raise _replaced()
            # Likewise its -wal: the commit would go into a log no restart reads.
            if _wal_gone(path, cached):
                _wal_removed.add(path)
                raise _wal_removed_problem(path)
    finally:
        db.conn.set_trace_callback(None)
        if path in _wal_removed and not db.conn.in_transaction:
            _keep_what_the_removed_wal_holds(path, cached)
        if db.conn.in_transaction or identity(path) != cached.identity:
            # The rollback failed, or the file is gone: the next write starts afresh.
            _threads.writers.pop(path, None)
            db.close()


def _wal_gone(path: str, held: _Held) -> bool:
    """Whether the -wal the connection opened is no longer the one at the path. While
    any connection is open SQLite never deletes nor replaces it (a checkpoint rewrites
    it in place), so only someone else did."""
    return held.wal is not None and held.wal != identity(wal_path(path))


def _keep_what_the_removed_wal_holds(path: str, held: _Held) -> None:
    """Copy into the database file the writes committed into a deleted -wal, through
    a connection that still has that -wal open (a FULL checkpoint): they were
    acknowledged, and a restart reads only the database file and the -wal at the
    path. A connection opened after the deletion holds a new -wal, not the old one.

    Run again at every refused write: a reader on an older snapshot makes the
    checkpoint stop short (SQLITE_BUSY), and a later one finishes it."""
    if not _wal_gone(path, held):
        return
    with contextlib.suppress(sqlite3.OperationalError):  # busy: the next write retries
        held.conn.execute("PRAGMA wal_checkpoint(FULL)")


def _connect_writer(path: str, trace: Callable[[str], None] | None) -> sqlite_utils.Database:
    try:
        return open_existing_for_writing(path, trace)
    except MissingDatabase as error:
        raise _missing(path) from error


def readiness() -> dict[str, str]:
    """What /readyz reports when the instance can serve: the database is at the path,
    readable, of this version's layout, not seen damaged (or read cleanly since), and
    its -wal is the one this process opened (a deleted one needs a restart).
    Raises a 503 problem naming what is wrong otherwise."""
    path = current_app.config["DATABASE"]
    conn = get_db()
    if _wal_gone(path, _threads.readers[path]):
        _wal_removed.add(path)
    if path in _wal_removed:
        writer = _threads.__dict__.get("writers", {}).get(path)
        if writer is not None:
            _keep_what_the_removed_wal_holds(path, writer)
        raise _wal_removed_problem(path)
    missing, differing = layout_differences(conn)
    if missing or differing:
        raise _unavailable(
            f"The events database's layout is not this version's ({', '.join(missing + differing)} "
            "missing or different): run `python -m api init`, or seed a new file."
        )
    if path in _damaged:
        _check_repaired(path)
    return {"status": "ready", "database": "ok"}


def _check_repaired(path: str) -> None:
    """Clear a damaged mark if the file now passes SQLite's quick check (on a new
    connection: an old one may have cached damaged pages); a 503 problem if not."""
    conn = connect_read_only(path)
    try:
        conn.start_budget(math.inf)  # a full check of a large file takes seconds
        (result,) = conn.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.DatabaseError as error:
        result = str(error)
    finally:
        conn.close()
    if result != "ok":
        raise _damaged_problem(f"An integrity check reports: {result}.")
    _damaged.discard(path)
    _generation[0] += 1


def init_app(app: Flask) -> None:
    """Answer every SQLite error as a problem (503, or 507 for a full disk), and a
    database of another layout, wherever a request meets it, as a 503 saying what
    to run."""

    def database_fault(error: sqlite3.Error) -> Response:
        return problem_response(database_problem(error))

    def outdated_layout(error: OutdatedLayout) -> Response:
        return problem_response(_unavailable(f"The events database {error.advice}."))

    app.register_error_handler(sqlite3.Error, database_fault)
    app.register_error_handler(OutdatedLayout, outdated_layout)


def database_problem(error: sqlite3.Error) -> Problem:
    """The problem a client gets for a fault of the database."""
    code = getattr(error, "sqlite_errorcode", None) or 0
    primary = code & 0xFF
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return Problem(
            503,
            "The database is busy with another writer; nothing was written. Retry after "
            f"{BUSY_RETRY_AFTER_S} s.",
            type=DATABASE_BUSY,
            title="Database busy",
            headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
        )
    # A WAL database also fails to grow its shared-memory file when the disk is full.
    if primary == sqlite3.SQLITE_FULL or code == sqlite3.SQLITE_IOERR_SHMSIZE:
        return Problem(
            507,
            "The server's disk is full; nothing was written. Retry later.",
            type=STORAGE_FULL,
            title="Insufficient storage",
        )
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        _damaged.add(current_app.config["DATABASE"])
        _generation[0] += 1
        return _damaged_problem("SQLite reports the file damaged.")
    if primary == sqlite3.SQLITE_INTERRUPT:
        if "q" in sent_parameters():
            return invalid_parameter(
                "q",
                f"This search needs more than {_budget():g} s; narrow it (fewer OR "
                "terms, longer prefixes) or add filters.",
            )
        return Problem(
            503,
            f"The query needs more than {_budget():g} s and was stopped; narrow it "
            "with filters, or use the CSV or NDJSON export for everything.",
            type=QUERY_TOO_COSTLY,
            title="Query too costly",
            headers={"Retry-After": "1"},
        )
    if code == sqlite3.SQLITE_READONLY_ROLLBACK:
        return _unavailable(
            "A write to the events database was interrupted and left a journal this "
            "read-only server may not roll back; run `python -m seed` or `python -m api "
            "init` once, which recovers it."
        )
    if primary == sqlite3.SQLITE_CANTOPEN:
        return _missing(current_app.config["DATABASE"])
    return _unavailable(
        f"The events database failed ({getattr(error, 'sqlite_errorname', 'unknown error')}); "
        "retry later."
    )


def _budget() -> float:
    """The app's QUERY_BUDGET_S; the default outside an app (scripts, the bench)."""
    if not has_app_context():
        return QUERY_BUDGET_S
    return float(current_app.config.get("QUERY_BUDGET_S", QUERY_BUDGET_S))


def _missing(path: str) -> Problem:
    return _unavailable(
        f"There is no events database at {Path(path).name}; create it with `python -m "
        "seed` (the curated events) or `python -m api init` (no events)."
    )


def _replaced() -> Problem:
    return _unavailable(
        "The events database file was replaced while writing, so nothing was written; "
        "retry. (Swap databases with `python -m api restore`, never by moving files.)"
    )


def _wal_removed_problem(path: str) -> Problem:
    return _unavailable(
        f"The events database's write-ahead log ({Path(wal_path(path)).name}) was deleted "
        "while the server had it open. Nothing is written until the server restarts (the "
        "writes acknowledged before are copied into the database file from the log it still "
        "holds): restart every server process on this file, and never delete the -wal or "
        "-shm of a database in use."
    )


def _damaged_problem(detail: str) -> Problem:
    return Problem(
        503,
        f"{detail} This instance reports itself not ready (/readyz) until the file reads "
        "cleanly; restore it from a backup (`python -m api restore`).",
        type=DATABASE_DAMAGED,
        title="Database damaged",
    )


def _unavailable(detail: str) -> Problem:
    return Problem(503, detail, type=DATABASE_UNAVAILABLE, title="Database unavailable")


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance between two WGS84 points."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
