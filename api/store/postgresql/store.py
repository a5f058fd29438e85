"""PostgresStore: the store on a PostgreSQL + PostGIS database (issue 22), selected
by a `postgresql://` database setting.

Connections come from one psycopg_pool pool per store, in autocommit: a read is one
statement (or a few, each seeing every write committed before it), never a
transaction held between them, and each read statement may run for the store's
budget_s (`statement_timeout`, set on every connection the pool opens; behind a
pooler in transaction mode, the role's: docs/operations.md, "pgbouncer"). A write is
one transaction whose first statement locks the change counter (layout.lock_changes:
writers queue there, as SQLite's queue on BEGIN IMMEDIATE), numbers its changes from
it and records the last before its commit (advance_changes). Every PostgreSQL error
leaves as one of the store's errors (api/store/__init__.py), by its SQLSTATE.

With a replica (`SALVO_DATABASE_REPLICA`, a hot standby kept by streaming
replication) a second pool reads from the standby: plain reads go there, unless they
carry a position (`after`) the standby has not replayed within REPLAY_WAIT_S;
writes, the change feed, API keys and what a write transaction reads stay on the
primary; a standby that fails is left to the primary for a while, never an error.
docs/design.md, "Reads from a replica".
"""

import copy
import dataclasses
import datetime
import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Collection, Generator, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg import errors
from psycopg.rows import dict_row

from api.keys import new_key
from api.store import (
    Answer,
    AuditRecord,
    Author,
    BulkCounts,
    Busy,
    Change,
    CuratedLoad,
    Damaged,
    DatabaseSummary,
    EventDeleted,
    EventPages,
    FeedPosition,
    Full,
    IdempotentRequest,
    KeptTotals,
    KeyListing,
    NoSuchEvent,
    Store,
    StoredEvent,
    StoredKey,
    StoreError,
    TooCostly,
    Unavailable,
    Writer,
    command_author,
    filters,
    search,
)
from api.store.cursors import decode_cursor
from api.store.filters import LOCATIONS, Scope
from api.store.postgresql import layout, migrations, writes
from api.store.postgresql.bulk import PostgresBulk
from api.store.postgresql.dialect import POSTGRESQL, Reading, to_pyformat
from api.store.postgresql.writes import Changes, run
from api.store.series import Group, Series
from api.store.sqlite import partners, query, stats
from api.store.sqlite.audit import stamp
from api.store.sqlite.query import Page

# How long a request waits for a connection from the pool before the store is
# called unavailable.
POOL_WAIT_S = 5.0
# Connections per store (per process): one per worker thread at most.
POOL_SIZE = 10
# Events per statement of an export (CSV, NDJSON), each under the read budget: a
# page of 1,000 drone strikes with their documents took 40-270 ms on a quiet server
# at 100,000 events, and past the 1 s budget under `make soak-postgresql` on a loaded
# machine, which cut the export. A page of 250 takes a quarter of that, and the
# whole export no longer (0.68-0.76 s against 0.66-1.33 s for 30 MB, three rounds).
EXPORT_PAGE_EVENTS = 250
# Reads from a replica. A read carrying a position waits this long at most for the
# standby to replay it (polling), then the primary serves it: a
# standby on the same network replays a commit within milliseconds, and a client
# that just wrote should not wait longer than the primary would take to answer.
REPLAY_WAIT_S = 0.15
# The first poll's pause, doubled after each up to REPLAY_POLL_MAX_S: a standby
# replays a synchronous commit within a millisecond here (docs/operations.md,
# "Reads from a replica"), so a fixed 10 ms poll made most of a writer's next read.
REPLAY_POLL_S = 0.001
REPLAY_POLL_MAX_S = 0.02
# How long a read waits for a standby connection before the primary serves it; and,
# once the standby failed to connect (or shut down), how long reads go to the
# primary before the standby is tried again, so that an outage costs one failed
# attempt per REPLICA_RETRY_S rather than one per read.
REPLICA_POOL_WAIT_S = 0.5
REPLICA_RETRY_S = 5.0

_log = logging.getLogger(__name__)
_Read = TypeVar("_Read")

_EVENT_FILTERS = filters.filters_of(filters.EVENTS)
_LOCATION_FILTERS = filters.filters_of(LOCATIONS)
_EVENT_ONLY_FILTERS = tuple(f for f in _EVENT_FILTERS if LOCATIONS not in f.resources)

_SUMMARY = """SELECT
    (SELECT coalesce(sum(events), 0)::bigint FROM stats_totals WHERE category = ''),
    (SELECT min(date) FROM events),
    (SELECT max(date) FROM events),
    (SELECT count(*) FROM sources),
    (SELECT max(changed) FROM (SELECT max(updated_at) AS changed FROM events
                               UNION ALL SELECT max(deleted_at) FROM event_tombstones) AS c)"""
_REGIONS = "SELECT DISTINCT admin1 FROM stats_totals WHERE admin1 != '' ORDER BY admin1"
_LOCATION_COLUMNS = (
    "l.row_id, l.id, l.name, l.admin1, l.country, l.country_code, l.latitude, l.longitude, "
    "l.precision"
)
_LOCATIONS = (
    f"SELECT {_LOCATION_COLUMNS}, (SELECT coalesce(sum(events), 0)::bigint FROM stats_totals "
    "WHERE location_id = l.id AND category = '') AS event_count FROM locations l"
)
_SOURCES = (
    "SELECT s.*, (SELECT coalesce(sum(events), 0)::bigint FROM stats_sources "
    "WHERE source_id = s.id AND category = '') AS event_count FROM sources s"
)
_FEED_POSITION = (
    f"SELECT id, old_tokens_until, {layout.HIGHEST_SEQ} FROM change_history WHERE singleton = 1"
)


def _where(conditions: list[str]) -> str:
    conditions = [c for c in conditions if c]
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""


class _Pools:
    """The connection pools of one store, opened on first use and shared by the
    views `after()` makes of it: the primary's and, with a replica, the standby's,
    and until when the standby is left alone after it failed."""

    def __init__(
        self, url: str, replica: str | None, budget_s: float, transaction_pooling: bool = False
    ) -> None:
        self.url, self.replica, self.budget_s = url, replica, budget_s
        self.transaction_pooling = transaction_pooling
        self._primary: psycopg_pool.ConnectionPool[Any] | None = None
        self._standby: psycopg_pool.ConnectionPool[Any] | None = None
        self._opening = threading.Lock()
        self._standby_down_until: float | None = None
        # Per standby connection, the highest position its server was seen to have
        # replayed (PostgresStore._replayed); forgotten with the connection.
        self.replayed: weakref.WeakKeyDictionary[psycopg.Connection[Any], int] = (
            weakref.WeakKeyDictionary()
        )

    def primary(self) -> psycopg_pool.ConnectionPool[Any]:
        pool = self._primary
        if pool is None:
            with self._opening:
                if self._primary is None:
                    self._primary = self._open(self.url, POOL_WAIT_S, "salvo")
                pool = self._primary
        return pool

    def standby(self) -> psycopg_pool.ConnectionPool[Any] | None:
        """The standby's pool, or None: no replica, or it failed less than
        REPLICA_RETRY_S ago."""
        if self.replica is None:
            return None
        down_until = self._standby_down_until
        if down_until is not None and time.monotonic() < down_until:
            return None
        pool = self._standby
        if pool is None:
            with self._opening:
                if self._standby is None:
                    self._standby = self._open(self.replica, REPLICA_POOL_WAIT_S, "salvo-replica")
                pool = self._standby
        return pool

    def standby_failed(self, error: Exception) -> None:
        """The standby could not be reached: reads go to the primary for a while."""
        if self._standby_down_until is None:
            _log.warning(
                "the replica is unreachable (%s: %s): reads go to the primary, and the "
                "replica is tried again every %g s",
                _fault(error),
                str(error).strip(),
                REPLICA_RETRY_S,
            )
        self._standby_down_until = time.monotonic() + REPLICA_RETRY_S

    def standby_served(self) -> None:
        if self._standby_down_until is not None:
            self._standby_down_until = None
            _log.warning("the replica answers again: reads go to it")

    def connection_options(self) -> dict[str, Any]:
        """What every connection to the database is opened with: behind transaction
        pooling, no prepared statement (psycopg prepares a statement run 5 times on
        one connection, which the pooler runs on another server connection by name)."""
        return {"prepare_threshold": None} if self.transaction_pooling else {}

    def _open(self, url: str, wait_s: float, name: str) -> psycopg_pool.ConnectionPool[Any]:
        return psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True, **self.connection_options()},
            configure=self.configure,
            timeout=wait_s,
            open=True,
            name=name,
        )

    @property
    def budget_ms(self) -> int:
        return max(1, round(self.budget_s * 1000))

    def configure(self, conn: psycopg.Connection[Any]) -> None:
        """Each new connection: the read budget for every statement (a write
        transaction lifts it for itself, SET LOCAL). Behind transaction pooling a
        SET would stay on whichever server connection ran it, for other clients: the
        budget is then the role's (readiness checks it)."""
        if not self.transaction_pooling:
            conn.execute(f"SET statement_timeout = {self.budget_ms}")

    def close(self) -> None:
        with self._opening:
            pools = (self._primary, self._standby)
            self._primary = self._standby = None
        for pool in pools:
            if pool is not None:
                pool.close()


def _fault(error: Exception) -> str:
    """An error of the standby as /readyz says it: its SQLSTATE, or its type (not
    its message, which names the standby's host and port to every caller)."""
    return getattr(error, "sqlstate", None) or type(error).__name__


def _standby_down(error: psycopg.OperationalError) -> bool:
    """Whether an error on a standby connection says the standby cannot serve now
    (no connection: 08*, or none answered; shut down or starting: 57P*), rather
    than that this one statement failed there (a recovery conflict, 40001)."""
    state = error.sqlstate or ""
    return state == "" or state.startswith(("08", "57P"))


class PostgresStore(Store):
    """The store on the PostgreSQL database at `url`, reading from the hot standby
    at `replica` if given: it owns its pools (close() closes them; a later use
    opens new ones)."""

    def __init__(
        self,
        url: str,
        *,
        budget_s: float = 1.0,
        replica: str | None = None,
        transaction_pooling: bool = False,
    ) -> None:
        self.url, self.budget_s = url, budget_s
        self._pools = _Pools(url, replica, budget_s, transaction_pooling)
        # The position this store's reads must see (after()); None: any.
        self._after: int | None = None
        # /events totals, shared by this process's threads (_Pages.total).
        self.totals = KeptTotals()

    # Lifecycle.

    def pool(self) -> psycopg_pool.ConnectionPool[Any]:
        """The primary's pool."""
        return self._pools.primary()

    def close(self) -> None:
        self._pools.close()

    @contextmanager
    def translated(self, args: dict[str, Any] | None = None) -> Iterator[None]:
        """Every PostgreSQL (and pool) error inside the block leaves as a StoreError;
        `args` are the request's, so that a search that ran out of budget is named."""
        try:
            yield
        except psycopg_pool.PoolTimeout as error:
            # Before psycopg.Error, which it is (an OperationalError).
            raise Unavailable(
                f"No connection to the events database within {POOL_WAIT_S:g} s "
                f"({error}); retry later."
            ) from error
        except psycopg.Error as error:
            raise self.store_error(error, args) from error

    @contextmanager
    def reading(self, args: dict[str, Any] | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A connection of the primary's pool for one read (autocommit, the read
        budget): for what must see every commit (the change feed, API keys)."""
        with self.translated(args), self.pool().connection() as conn:
            yield conn

    def read(
        self,
        reader: Callable[[psycopg.Connection[Any]], _Read],
        args: dict[str, Any] | None = None,
    ) -> _Read:
        """`reader` run on a connection for one read: the standby's when there is
        one that answers and has replayed this view's position (after()) within
        REPLAY_WAIT_S, else the primary's. A standby that cannot connect, or fails
        the read for a reason of its own (shut down, a recovery conflict), leaves it
        to the primary: a read is never refused for the replica's sake."""
        with self.translated(args):
            on_standby = self._standby_connection()
            if on_standby is not None:
                held, conn = on_standby
                try:
                    with held:
                        found = reader(conn)
                    self._pools.standby_served()
                    return found
                except psycopg.OperationalError as error:
                    # Out of budget is the read's cost, the same on the primary.
                    if isinstance(error, errors.QueryCanceled):
                        raise
                    self._standby_fault(error)
            with self.pool().connection() as conn:
                return reader(conn)

    def _standby_connection(self) -> tuple[ExitStack, psycopg.Connection[Any]] | None:
        """A connection of the standby that may serve this view's reads (it has
        replayed the position) and the stack that returns it to its pool; None for
        the primary: no replica, the standby left alone, failing or behind."""
        standby = self._pools.standby()
        if standby is None:
            return None
        held = ExitStack()
        try:
            conn = held.enter_context(standby.connection())
            if self._replayed(conn):
                return held, conn
        except (psycopg_pool.PoolTimeout, psycopg.OperationalError) as error:
            held.close()
            self._standby_fault(error)
            return None
        except BaseException:
            held.close()
            raise
        held.close()
        return None

    def _standby_fault(self, error: Exception) -> None:
        """A read failed on the standby and goes to the primary: if the standby
        cannot serve now (rather than this one statement failing there), it is left
        alone for a while."""
        if isinstance(error, psycopg_pool.PoolTimeout) or (
            isinstance(error, psycopg.OperationalError) and _standby_down(error)
        ):
            self._pools.standby_failed(error)

    def _replayed(self, conn: psycopg.Connection[Any]) -> bool:
        """Whether the standby on `conn` has replayed this view's position, waiting
        REPLAY_WAIT_S at most. False at once for a server that replays nothing
        (not a standby: pg_last_wal_replay_lsn() is null). What a connection's
        server was last seen to have replayed is remembered with the connection:
        a standby's replay only moves forward, and a connection stays on one
        server (even where the replica's address names several), so a client
        sending the same position on every read costs one query, not one each."""
        if self._after is None:
            return True
        replayed = self._pools.replayed
        if replayed.get(conn, -1) >= self._after:
            return True
        deadline = time.monotonic() + REPLAY_WAIT_S
        pause = REPLAY_POLL_S
        while True:
            row = conn.execute("SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn").fetchone()
            if row is None or row[0] is None:
                return False
            replayed[conn] = int(row[0])
            if replayed[conn] >= self._after:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(pause, left))
            pause = min(pause * 2, REPLAY_POLL_MAX_S)

    # Read-your-writes (docs/design.md, "Reads from a replica").

    def position(self) -> int | None:
        """The primary's WAL insert position: past the end of every commit made
        before this call, even one whose log is not yet flushed (an asynchronous
        commit), where pg_current_wal_lsn() (written so far) may not be. None
        without a replica: reads then see every commit anyway."""
        if self._pools.replica is None:
            return None
        with self.reading() as conn:
            row = conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn").fetchone()
        assert row is not None
        return int(row[0])

    def after(self, position: int | None) -> "PostgresStore":
        if position is None or self._pools.replica is None:
            return self
        view = copy.copy(self)  # the same pools (shared), its own position
        view._after = position
        return view

    def store_error(self, error: psycopg.Error, args: dict[str, Any] | None = None) -> StoreError:
        """The store's error for a fault of PostgreSQL, by its SQLSTATE."""
        state = error.sqlstate or ""
        if isinstance(
            error, (errors.SerializationFailure, errors.DeadlockDetected, errors.LockNotAvailable)
        ):
            return Busy(
                "The database is busy with another writer; nothing was written. Retry "
                f"after {Busy.retry_after_s} s."
            )
        if isinstance(error, errors.DiskFull) or state == "53100":
            return Full("The server's disk is full; nothing was written. Retry later.")
        if state in ("XX001", "XX002"):
            return Damaged(
                f"PostgreSQL reports the data damaged ({state}: {error}). This instance "
                "reports itself not ready until the database reads cleanly; restore it "
                "from a backup."
            )
        if isinstance(error, (errors.UndefinedTable, errors.UndefinedColumn)):
            # A database an older release laid out, which this instance serves before
            # `migrate` ran (its /readyz says so too, but a lone instance has no
            # balancer asking).
            return Unavailable(
                f"The events database lacks part of this release's layout ({state}): run "
                "`python -m api migrate`."
            )
        if isinstance(error, errors.QueryCanceled):
            if args and args.get("q"):
                return TooCostly(
                    f"This search needs more than {self.budget_s:g} s; narrow it (fewer "
                    "OR terms, longer prefixes) or add filters.",
                    self.budget_s,
                    parameter="q",
                )
            return TooCostly(
                f"The query needs more than {self.budget_s:g} s and was stopped; narrow "
                "it with filters, or use the CSV or NDJSON export for everything.",
                self.budget_s,
            )
        # Connection failures (08*, no SQLSTATE when the server never answered),
        # shutdowns (57P*), too many connections (53300) and the rest.
        return Unavailable(
            f"The events database failed ({state or type(error).__name__}); retry later."
        )

    # Readers: each through read() (the standby if it serves), but the change feed
    # and API keys, which must see every commit (a revoked key stops at once).

    def event_pages(
        self, args: dict[str, Any], *, coordinates: bool = False, csv: bool = False
    ) -> EventPages:
        return _Pages(
            self, args, functools.partial(query.EventPages, coordinates=coordinates, csv=csv)
        )

    def event_stream(
        self, args: dict[str, Any], *, csv: bool
    ) -> tuple[Iterator[Any], Callable[[], None]]:
        # Built on a connection so that a bad filter is refused before any document.
        pages = self.read(lambda conn: query.EventPages(Reading(conn), args, csv=csv), args)

        def lend(read: Callable[[query.EventPages], query.EventColumns]) -> query.EventColumns:
            return self.read(lambda conn: read(pages.on(Reading(conn))), args)

        def documents() -> Generator[Any, None, None]:
            # Each page on a connection lent for it alone, each statement with the
            # budget of its own: a client taking an export slowly holds no
            # connection while it does, so that the exports a process runs at once
            # (SALVO_EXPORTS_RUNNING) never leave its reads without one.
            for page in pages.all(EXPORT_PAGE_EVENTS, lend):
                yield from page.documents

        stream = documents()
        return stream, stream.close

    def event(self, event_id: str) -> StoredEvent:
        return self.read(lambda conn: _stored_event(conn, event_id))

    def changes(self, after: int, limit: int) -> tuple[list[Change], bool]:
        # The primary's: a mirror must never see a seq before the replica has it,
        # and tokens are seqs of the primary's feed.
        with self.reading() as conn:
            return query.changes(Reading(conn), after, limit)

    def feed_position(self) -> FeedPosition:
        with self.reading() as conn:
            row = run(conn, _FEED_POSITION).fetchone()
        if row is None:
            raise Unavailable(
                "The events database has no change history: run `python -m api migrate`."
            )
        return FeedPosition(str(row[0]), int(row[1]), int(row[2]))

    def stats_grouped(self, args: dict[str, Any]) -> list[tuple[Group, dict[str, Any]]]:
        found = self.read(lambda conn: stats.grouped(Reading(conn), args), args)
        return [(group, stats.render_totals(totals)) for group, totals in found]

    def stats_series(
        self,
        args: dict[str, Any],
        after: tuple[str | None, str] | None,
        limit: int,
        max_rows: int | None,
    ) -> Series[dict[str, Any]]:
        found = self.read(
            lambda conn: stats.series(Reading(conn), args, after, limit, max_rows=max_rows), args
        )
        render = stats.render_totals
        return dataclasses.replace(
            found,
            rows=[(group, period, render(totals)) for group, period, totals in found.rows],
            coarser=[(group, period, render(totals)) for group, period, totals in found.coarser],
        )

    def search_capped(self, q: search.Search) -> bool:
        return self.read(lambda conn: POSTGRESQL.search_capped(conn, q), {"q": q})

    def locations(self, args: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
        return self.read(lambda conn: _locations(conn, args), args)

    def location(self, location_id: str) -> dict[str, Any] | None:
        def read(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
            with conn.cursor(row_factory=dict_row) as cursor:
                return cursor.execute(
                    to_pyformat(f"{_LOCATIONS} WHERE l.id = ?"), [location_id]
                ).fetchone()

        return self.read(read)

    def sources(self, args: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
        rows, next_key = self.read(
            lambda conn: _page_by_id(conn, _SOURCES, [], [], args, "s.id"), args
        )
        return [_source(row) for row in rows], next_key

    def source(self, source_id: str) -> dict[str, Any] | None:
        def read(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
            with conn.cursor(row_factory=dict_row) as cursor:
                return cursor.execute(
                    to_pyformat(f"{_SOURCES} WHERE s.id = ?"), [source_id]
                ).fetchone()

        found = self.read(read)
        return None if found is None else _source(found)

    def summary(self) -> dict[str, Any]:
        def read(conn: psycopg.Connection[Any]) -> dict[str, Any]:
            row = run(conn, _SUMMARY).fetchone()
            assert row is not None
            events, first, last, sources, changed = row
            regions = [region for (region,) in run(conn, _REGIONS)]
            return {
                "events": int(events),
                "first": first,
                "last": last,
                "sources": int(sources),
                "changed": changed,
                "regions": regions,
            }

        return self.read(read)

    def live_key(self, key_id: str) -> StoredKey | None:
        with self.reading() as conn:
            row = run(
                conn,
                "SELECT id, name, scope, salt, hash FROM api_keys "
                "WHERE id = ? AND revoked_at IS NULL",
                [key_id],
            ).fetchone()
        if row is None:
            return None
        key_id, name, scope, salt, hashed = row
        return StoredKey(key_id, name, scope, bytes(salt), bytes(hashed))

    def readiness(self) -> dict[str, str]:
        """Ready when the database answers and is at this release's schema version
        with every object of the layout present."""
        with self.reading() as conn:
            version = layout.schema_version(conn)
            database = layout.database_name(conn)
            if version is not None and version > layout.SCHEMA_VERSION:
                raise layout.NewerSchema(database, version)
            missing = layout.missing_objects(conn) if version == layout.SCHEMA_VERSION else []
            if self._pools.transaction_pooling:
                self._check_role_budget(conn)
        if version != layout.SCHEMA_VERSION or missing:
            state = "has no Salvo schema" if version is None else f"is at schema version {version}"
            if missing:
                state = f"lacks {', '.join(missing)}"
            raise Unavailable(
                f"The events database {state}, not this release's "
                f"({layout.SCHEMA_VERSION}): run `python -m api migrate`."
            )
        ready = {"status": "ready", "database": "ok"}
        if self._pools.replica is not None:
            ready.update(self._standby_state())
        return ready

    def _check_role_budget(self, conn: psycopg.Connection[Any]) -> None:
        """Behind transaction pooling the read budget is the role's: Unavailable, naming
        the statement that sets it, unless the server holds reads to it."""
        row = conn.execute(
            "SELECT current_user, current_database(), setting FROM pg_settings "
            "WHERE name = 'statement_timeout'"
        ).fetchone()
        role, database, timeout = row if row else ("salvo", "salvo", "0")
        budget = self._pools.budget_ms
        if int(timeout) != budget:
            raise Unavailable(
                f"Behind transaction pooling (SALVO_DATABASE_POOLING=transaction) the read "
                f"budget must be the role's, and statement_timeout is {timeout} ms, not "
                f"{budget}: run ALTER ROLE {role} IN DATABASE {database} SET "
                f"statement_timeout = {budget} on the server."
            )

    def _standby_state(self) -> dict[str, str]:
        """Where reads go (`reads`: replica or primary) and why (`replica`): the
        instance is ready either way, since reads fall back to the primary."""
        standby = self._pools.standby()
        if standby is None:
            return {
                "reads": "primary",
                "replica": f"unreachable; tried again every {REPLICA_RETRY_S:g} s",
            }
        try:
            with standby.connection() as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        except (psycopg_pool.PoolTimeout, psycopg.OperationalError) as error:
            self._pools.standby_failed(error)
            return {"reads": "primary", "replica": f"unreachable ({_fault(error)})"}
        self._pools.standby_served()
        if not (row and row[0]):
            # Reads without a position still go there, as configured; those with one
            # find nothing replayed and go to the primary.
            return {"reads": "replica", "replica": "not a standby (it is not in recovery)"}
        return {"reads": "replica", "replica": "ok"}

    # Writers.

    @contextmanager
    def writer(self, trace: Callable[[str], None] | None = None) -> Iterator["_PostgresWriter"]:
        """One write transaction (writes.write_transaction). `trace` is not called
        yet: psycopg has no per-statement hook like sqlite3's trace callback (the
        tests that count statements run on SQLite)."""
        with (
            self.translated(),
            self.pool().connection() as conn,
            writes.write_transaction(conn) as changes,
        ):
            yield _PostgresWriter(conn, changes)

    @contextmanager
    def bulk_load(
        self,
        author: Author,
        at: datetime.datetime,
        audit: Callable[[BulkCounts], list[AuditRecord]],
    ) -> Iterator[PostgresBulk]:
        if self._pools.transaction_pooling:
            raise Unavailable(
                "A bulk load stages its rows in tables of its own session, which "
                "transaction pooling does not keep: run it against PostgreSQL itself "
                "(its own port, without SALVO_DATABASE_POOLING)."
            )
        with self.translated(), self.pool().connection() as conn:
            # The read budget is not a bulk load's: staging (COPY, its indexes) runs
            # outside the slices' write transactions, which lift it for themselves.
            conn.execute("SET statement_timeout = 0")
            load = PostgresBulk(conn)
            try:
                yield load
                load.finish(lambda counts: writes.append_audit(conn, author, at, audit(counts)))
            finally:
                load.close()
                self._pools.configure(conn)  # the budget again, before the pool lends it

    # Operators.

    def create_key(self, name: str, scope: str) -> str:
        stored, key = new_key(name, scope)
        now = datetime.datetime.now(datetime.UTC)
        with self.translated(), self.pool().connection() as conn, conn.transaction():
            run(
                conn,
                "INSERT INTO api_keys (id, name, scope, salt, hash, created_at, revoked_at) "
                "VALUES (?, ?, ?, ?, ?, ?, NULL)",
                [*stored, stamp(now)],
            )
            detail = {"key_id": stored.id, "name": stored.name, "scope": stored.scope}
            writes.append_audit(
                conn, command_author(), now, [("key-create", None, None, None, detail)]
            )
        return key

    def revoke_key(self, key_id: str) -> bool:
        now = datetime.datetime.now(datetime.UTC)
        with self.translated(), self.pool().connection() as conn, conn.transaction():
            revoked = run(
                conn,
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                [stamp(now), key_id],
            ).rowcount
            if revoked != 1:
                return False
            detail = {"key_id": key_id}
            writes.append_audit(
                conn, command_author(), now, [("key-revoke", None, None, None, detail)]
            )
        return True

    def key_listings(self) -> list[KeyListing]:
        with self.reading() as conn:
            return [
                KeyListing(*row)
                for row in run(
                    conn,
                    "SELECT id, name, scope, created_at, revoked_at FROM api_keys "
                    "ORDER BY created_at",
                )
            ]

    def back_up(self, target: str, *, replace: bool = False) -> DatabaseSummary:
        raise Unavailable(
            "Back up a PostgreSQL database with pg_dump; `python -m api backup` copies "
            "SQLite files."
        )

    def restore(self, source: str) -> DatabaseSummary:
        raise Unavailable(
            "Restore a PostgreSQL database with pg_restore; `python -m api restore` "
            "restores SQLite files."
        )

    def migrate(self) -> str:
        options = self._pools.connection_options()
        with self.translated(), psycopg.connect(self.url, **options) as conn:
            return migrations.migrate(conn).described()

    def recover(self) -> str | None:
        # A PostgreSQL transaction is all or nothing: no operator's write is left
        # half done.
        return None


def _locations(
    conn: psycopg.Connection[Any], args: dict[str, Any]
) -> tuple[list[dict[str, Any]], Any]:
    """/locations: a page of places with their event counts, and the key after it."""
    condition, params = filters.where(Scope.locations(POSTGRESQL, conn), _LOCATION_FILTERS, args)
    if not any(name in args for f in _EVENT_ONLY_FILTERS for name in f.params):
        return _page_by_id(conn, _LOCATIONS, [condition], params, args, "l.id")
    # With a filter of events: the places with a matching event, each with how many,
    # from the smallest rollup keeping places and the filters.
    event_args = {n: args[n] for f in _EVENT_FILTERS for n in f.params if n in args}
    counts = stats.events_by_place(Reading(conn), event_args)
    rows, next_key = _page_by_id(
        conn,
        f"SELECT {_LOCATION_COLUMNS} FROM locations l",
        [condition, "l.id = ANY(?)"],
        [*params, list(counts)],
        args,
        "l.id",
    )
    return [{**row, "event_count": counts[row["id"]]} for row in rows], next_key


def _stored_event(conn: psycopg.Connection[Any], event_id: str) -> StoredEvent:
    stored = writes.stored_event(conn, event_id)
    if stored is None:
        deleted_at = writes.tombstone(conn, event_id)
        if deleted_at is not None:
            raise EventDeleted(event_id, deleted_at)
        raise NoSuchEvent(event_id)
    return stored


def _source(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "published": datetime.date.fromisoformat(row["published"])}


def _page_by_id(
    conn: psycopg.Connection[Any],
    select: str,
    conditions: list[str],
    params: list[Any],
    args: dict[str, Any],
    id_column: str,
) -> tuple[list[dict[str, Any]], tuple[str] | None]:
    if "cursor" in args:
        (after,) = decode_cursor(args["cursor"], "id", (str,))
        conditions = [*conditions, f"{id_column} > ?"]
        params = [*params, after]
    limit = args["limit"]
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            to_pyformat(f"{select} {_where(conditions)} ORDER BY {id_column} LIMIT ?"),
            [*params, limit + 1],
        ).fetchall()
    page = rows[:limit]
    return page, ((page[-1]["id"],) if len(rows) > limit else None)


class _Pages(EventPages):
    """The pages of one /events request, each read on a connection of the pool."""

    def __init__(
        self,
        store: PostgresStore,
        args: dict[str, Any],
        pages: Callable[[Reading, dict[str, Any]], query.EventPages],
    ) -> None:
        self._store, self._args, self._pages = store, args, pages
        # The version of the events the last page was read at (events_version).
        self._version: str | None = None

    def page(self, cursor: str | None, limit: int) -> Page:
        def read(conn: psycopg.Connection[Any]) -> Page:
            # Planned on the connection that reads the page (a request reads one):
            # a bad filter is refused before any row is, without a checkout of its own.
            return self._pages(Reading(conn), self._args).page(cursor, limit)

        page = self._store.read(read, self._args)
        self._version = page.version
        return page

    def total(self) -> tuple[int, bool]:
        """As on SQLite (stats.event_total): summed from the smallest rollup keeping
        the filters a rollup keeps, an upper bound when others are given; kept
        while the events are at the version the page was read at (KeptTotals).
        Counting it on every page was a statement or more of its own after the
        page's: ~180 µs of a page's Python at 1M events (bench/inprocess.py)."""
        key = stats.total_key(self._args)
        found = self._store.totals.get(self._version, key)
        if found is None:
            version, found = self._store.read(
                lambda conn: _counted_total(conn, self._args), self._args
            )
            self._store.totals.keep(version, key, found)
        return found


def _counted_total(
    conn: psycopg.Connection[Any], args: dict[str, Any]
) -> tuple[str | None, tuple[int, bool]]:
    """The version of the events and the total of a listing, read in one snapshot
    (a read-only REPEATABLE READ transaction), so that the total is kept under the
    version it was counted at."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        (version,) = run(conn, f"SELECT {POSTGRESQL.events_version}").fetchone() or (None,)
        return version, stats.event_total(Reading(conn), args)


class _PostgresWriter(Writer):
    """The writes of one transaction on `conn`, numbered by `changes`."""

    def __init__(self, conn: psycopg.Connection[Any], changes: Changes) -> None:
        self.conn, self.changes = conn, changes

    def event(self, event_id: str) -> StoredEvent:
        return _stored_event(self.conn, event_id)

    def check_owner(self, event_id: str, key_id: str, admin: bool) -> None:
        partners.check_owner(Reading(self.conn), event_id, key_id, admin)

    def create_events(
        self,
        events: list[dict[str, Any]],
        author: Author,
        at: datetime.datetime,
        idempotent: IdempotentRequest | None,
    ) -> tuple[Answer, bool]:
        return writes.create_events(self.conn, self.changes, events, author, at, idempotent)

    def update_event(
        self, event: dict[str, Any], before: str, author: Author, at: datetime.datetime
    ) -> str:
        return writes.update_event(self.conn, self.changes, event, before, author, at)

    def delete_event(
        self, event_id: str, before: str, author: Author, at: datetime.datetime
    ) -> None:
        writes.delete_event(self.conn, self.changes, event_id, before, author, at)

    def load_curated(
        self,
        events: list[dict[str, Any]],
        author: Author,
        at: datetime.datetime,
        restore: Collection[str] = (),
    ) -> CuratedLoad:
        return writes.load_curated(self.conn, self.changes, events, author, at, list(restore))

    def append_audit(
        self,
        author: Author,
        at: datetime.datetime,
        entries: list[AuditRecord],
    ) -> None:
        writes.append_audit(self.conn, author, at, entries)

    def renew_history(self) -> tuple[str, FeedPosition]:
        previous = run(self.conn, "SELECT id FROM change_history WHERE singleton = 1").fetchone()
        if previous is None:
            raise Unavailable(
                "The events database has no change history: run `python -m api migrate`."
            )
        layout.renew_history(self.conn)
        row = run(self.conn, _FEED_POSITION).fetchone()
        assert row is not None
        return str(previous[0]), FeedPosition(str(row[0]), int(row[1]), int(row[2]))
