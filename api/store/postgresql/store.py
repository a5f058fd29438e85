"""PostgresStore: the store on a PostgreSQL + PostGIS database (issue 22), selected
by a `postgresql://` database setting.

Connections come from one psycopg_pool pool per store, in autocommit: a read is one
statement (or a few, each seeing every write committed before it), never a
transaction held between them, and each read statement may run for the store's
budget_s (`statement_timeout`, set on every connection the pool opens). A write is
one transaction whose first statement locks the change counter (layout.lock_changes:
writers queue there, as SQLite's queue on BEGIN IMMEDIATE), numbers its changes from
it and records the last before its commit (advance_changes). Every PostgreSQL error
leaves as one of the store's errors (api/store/__init__.py), by its SQLSTATE.
"""

import dataclasses
import datetime
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool
from psycopg import errors
from psycopg.rows import dict_row

from api.keys import new_key
from api.store import (
    Answer,
    AuditRecord,
    Author,
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


class PostgresStore(Store):
    """The store on the PostgreSQL database at `url`: it owns its pool (close()
    closes it; a later use opens a new one)."""

    def __init__(self, url: str, *, budget_s: float = 1.0) -> None:
        self.url, self.budget_s = url, budget_s
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._opening = threading.Lock()

    # Lifecycle.

    def pool(self) -> psycopg_pool.ConnectionPool[Any]:
        pool = self._pool
        if pool is None:
            with self._opening:
                if self._pool is None:
                    self._pool = psycopg_pool.ConnectionPool(
                        self.url,
                        min_size=1,
                        max_size=POOL_SIZE,
                        kwargs={"autocommit": True},
                        configure=self._configure,
                        timeout=POOL_WAIT_S,
                        open=True,
                        name="salvo",
                    )
                pool = self._pool
        return pool

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        """Each new connection: the read budget for every statement (a write
        transaction lifts it for itself, SET LOCAL)."""
        conn.execute(f"SET statement_timeout = {max(1, round(self.budget_s * 1000))}")

    def close(self) -> None:
        with self._opening:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

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
        """A connection of the pool for one read (autocommit, the read budget)."""
        with self.translated(args), self.pool().connection() as conn:
            yield conn

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

    # Readers.

    def event_pages(
        self, args: dict[str, Any], *, coordinates: bool = False, csv: bool = False
    ) -> EventPages:
        with self.reading(args) as conn:
            # Built on a connection so that a bad filter is refused before any page.
            pages = query.EventPages(Reading(conn), args, coordinates=coordinates, csv=csv)
        return _Pages(self, args, pages)

    def event_stream(
        self, args: dict[str, Any], *, csv: bool
    ) -> tuple[Iterator[Any], Callable[[], None]]:
        # A connection of the pool held by the stream, returned when it is closed;
        # each page's statement has the budget of its own.
        with self.translated(args):
            held = self.pool().connection()
            conn = held.__enter__()
            try:
                pages = query.EventPages(Reading(conn), args, csv=csv)
            except BaseException:
                held.__exit__(None, None, None)
                raise
        closed = False

        def close() -> None:
            nonlocal closed
            if not closed:
                closed = True
                held.__exit__(None, None, None)

        def documents() -> Iterator[Any]:
            with self.translated(args):
                for page in pages.all():
                    yield from page.documents

        return documents(), close

    def event(self, event_id: str) -> StoredEvent:
        with self.reading() as conn:
            return _stored_event(conn, event_id)

    def changes(self, after: int, limit: int) -> tuple[list[Change], bool]:
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
        with self.reading(args) as conn:
            found = stats.grouped(Reading(conn), args)
        return [(group, stats.render_totals(totals)) for group, totals in found]

    def stats_series(
        self,
        args: dict[str, Any],
        after: tuple[str | None, str] | None,
        limit: int,
        max_rows: int | None,
    ) -> Series[dict[str, Any]]:
        with self.reading(args) as conn:
            found = stats.series(Reading(conn), args, after, limit, max_rows=max_rows)
        render = stats.render_totals
        return dataclasses.replace(
            found,
            rows=[(group, period, render(totals)) for group, period, totals in found.rows],
            coarser=[(group, period, render(totals)) for group, period, totals in found.coarser],
        )

    def search_capped(self, q: search.Search) -> bool:
        with self.reading({"q": q}) as conn:
            return POSTGRESQL.search_capped(conn, q)

    def locations(self, args: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
        with self.reading(args) as conn:
            condition, params = filters.where(
                Scope.locations(POSTGRESQL, conn), _LOCATION_FILTERS, args
            )
            if not any(name in args for f in _EVENT_ONLY_FILTERS for name in f.params):
                return _page_by_id(conn, _LOCATIONS, [condition], params, args, "l.id")
            # With a filter of events: the places with a matching event, each with
            # how many, from the smallest rollup keeping places and the filters.
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

    def location(self, location_id: str) -> dict[str, Any] | None:
        with self.reading() as conn, conn.cursor(row_factory=dict_row) as cursor:
            row = cursor.execute(to_pyformat(f"{_LOCATIONS} WHERE l.id = ?"), [location_id])
            found = row.fetchone()
        return found

    def sources(self, args: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
        with self.reading(args) as conn:
            rows, next_key = _page_by_id(conn, _SOURCES, [], [], args, "s.id")
        return [_source(row) for row in rows], next_key

    def source(self, source_id: str) -> dict[str, Any] | None:
        with self.reading() as conn, conn.cursor(row_factory=dict_row) as cursor:
            found = cursor.execute(
                to_pyformat(f"{_SOURCES} WHERE s.id = ?"), [source_id]
            ).fetchone()
        return None if found is None else _source(found)

    def summary(self) -> dict[str, Any]:
        with self.reading() as conn:
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
        if version != layout.SCHEMA_VERSION or missing:
            state = "has no Salvo schema" if version is None else f"is at schema version {version}"
            if missing:
                state = f"lacks {', '.join(missing)}"
            raise Unavailable(
                f"The events database {state}, not this release's "
                f"({layout.SCHEMA_VERSION}): run `python -m api migrate`."
            )
        return {"status": "ready", "database": "ok"}

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
        self, author: Author, at: datetime.datetime, audit: list[AuditRecord]
    ) -> Iterator[PostgresBulk]:
        with self.translated(), self.pool().connection() as conn:
            # The read budget is not a bulk load's: staging (COPY, its indexes) runs
            # outside the slices' write transactions, which lift it for themselves.
            conn.execute("SET statement_timeout = 0")
            load = PostgresBulk(conn)
            try:
                yield load
                load.finish(lambda changes: writes.append_audit(conn, author, at, audit))
            finally:
                load.close()
                self._configure(conn)  # the budget again, before the pool lends it out

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
        with self.translated(), psycopg.connect(self.url) as conn:
            return migrations.migrate(conn).described()

    def recover(self) -> str | None:
        # A PostgreSQL transaction is all or nothing: no operator's write is left
        # half done.
        return None


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

    def __init__(self, store: PostgresStore, args: dict[str, Any], pages: query.EventPages) -> None:
        self._store, self._args, self._pages = store, args, pages

    def page(self, cursor: str | None, limit: int) -> Page:
        with self._store.reading(self._args) as conn:
            return self._pages.on(Reading(conn)).page(cursor, limit)

    def total(self) -> tuple[int, bool]:
        """As on SQLite (stats.event_total): summed from the smallest rollup keeping
        the filters a rollup keeps, an upper bound when others are given."""
        with self._store.reading(self._args) as conn:
            return stats.event_total(Reading(conn), self._args)


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
