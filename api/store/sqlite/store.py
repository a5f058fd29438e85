"""SQLiteStore: the store on one SQLite file, and the faults of that file.

Per worker thread, a read-only connection and a write one, each opened on first use
and reused by every read or write that thread makes, as long as the file at the
path is still the one they hold (device and inode, compared on every use: a
replaced file is reopened, and no write is acknowledged into a file that is no
longer at the path). A write is not acknowledged either if the write-ahead log it
went into is no longer the `-wal` at the path (deleted by hand): nothing SQLite
reads after a restart. A read statement may run for the store's budget_s at most.
Every SQLite error leaves as one of the store's errors (api/store/__init__.py).
"""

import contextlib
import dataclasses
import datetime
import math
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

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
    KeyListing,
    NoSuchEvent,
    Store,
    StoredEvent,
    StoredKey,
    StoreError,
    TooCostly,
    Unavailable,
    Writer,
    search,
)
from api.store.series import Group, Series
from api.store.sqlite import backups, keys, migrations, partners, query, stats, writes
from api.store.sqlite.audit import AuditEntry, append_audit
from api.store.sqlite.connections import (
    Identity,
    ReadConnection,
    connect_read_only,
    identity,
    wal_path,
)
from api.store.sqlite.dialect import SQLITE
from api.store.sqlite.layout import (
    MissingDatabase,
    check_version,
    immediate_transaction,
    layout_differences,
    open_existing_for_writing,
    renew_history,
    schema_version,
)


@dataclass
class _Held:
    """A connection, the identity of the file it was opened on and of the -wal it
    opened beside it (None outside WAL mode), and the store's generation then."""

    conn: Any
    identity: Identity
    wal: Identity | None
    generation: int


# What the explorer's summary says the data holds, from the all-time rollup (a few rows
# a place, rollups.py) and the indexes on events' date and updated_at.
_SUMMARY = """SELECT
    (SELECT coalesce(sum(events), 0) FROM stats_totals WHERE category = ''),
    (SELECT min(date) FROM events),
    (SELECT max(date) FROM events),
    (SELECT count(*) FROM sources),
    (SELECT max(changed) FROM (SELECT max(updated_at) AS changed FROM events
                               UNION ALL SELECT max(deleted_at) FROM event_tombstones))"""
# The regions with events (the rollup keeps a row per place, type and weapon set).
_REGIONS = "SELECT DISTINCT admin1 FROM stats_totals WHERE admin1 != '' ORDER BY admin1"


class SQLiteStore(Store):
    """The store on the SQLite file at `path`: it owns its connections (close()
    closes them) and what it has seen of the file (damaged, its -wal deleted)."""

    def __init__(self, path: str, *, budget_s: float = 1.0) -> None:
        self.path, self.budget_s = path, budget_s
        self._threads = threading.local()
        self._every_connection: list[Any] = []
        self._opening = threading.Lock()
        # Seen damaged, until a check reads the file cleanly.
        self._damaged = False
        # The -wal was deleted while this store had it open: no write is acknowledged,
        # and /readyz says not ready, until the process restarts.
        self._wal_removed = False
        # Bumped when the file is seen damaged or reads cleanly again: every thread
        # then opens new connections, whose page caches hold no page read before.
        self._generation = 0
        # The file's schema version and layout were found this release's, on the first
        # write connection: they are not checked again on every write (replacing the
        # file under a running server needs a restart).
        self._layout_verified = False

    def close(self) -> None:
        """Close every connection this store opened, in any thread."""
        with self._opening:
            for conn in self._every_connection:
                conn.close()
            self._every_connection.clear()

    # Connections.

    def _held(self, kind: str, connect: Callable[[], Any]) -> _Held:
        """This thread's connection of `kind`, opened by `connect` on first use, and
        again when the file at the path is another one or was marked damaged or
        repaired since; Unavailable if there is no file."""
        held: _Held | None = self._threads.__dict__.get(kind)
        current = identity(self.path)
        if held is None or held.identity != current or held.generation != self._generation:
            if held is not None:
                del self._threads.__dict__[kind]
                self._forget(held.conn)
            if current is None:
                raise self._missing()
            conn = connect()
            with self._opening:
                self._every_connection.append(conn)
            # SQLite opened (or created) the -wal at the path while connecting, and
            # keeps it open as long as the connection: its identity now is the
            # connection's.
            held = _Held(conn, current, identity(wal_path(self.path)), self._generation)
            self._threads.__dict__[kind] = held
        return held

    def _forget(self, conn: Any) -> None:
        with self._opening:
            if conn in self._every_connection:
                self._every_connection.remove(conn)
        conn.close()

    def reader(self) -> ReadConnection:
        """This thread's read-only connection, reopened if the file at the path was
        replaced, its statements given budget_s anew. It never holds a read
        transaction between statements, so each read sees every write committed
        before it. Reusing it saves opening one per request (about 0.15 ms, a tenth
        of a page's cost at 1M events)."""
        conn: ReadConnection = self._held(
            "reader", lambda: connect_read_only(self.path, self.budget_s)
        ).conn
        conn.start_budget()
        return conn

    @contextmanager
    def translated(self, args: dict[str, Any] | None = None) -> Iterator[None]:
        """Every SQLite error inside the block leaves as a StoreError; `args` are the
        request's, so that a search that ran out of budget is named."""
        try:
            yield
        except sqlite3.Error as error:
            raise self.store_error(error, args) from error

    # Readers.

    def event_pages(
        self, args: dict[str, Any], *, coordinates: bool = False, csv: bool = False
    ) -> EventPages:
        with self.translated(args):
            conn = self.reader()
            pages = query.EventPages(conn, args, coordinates=coordinates, csv=csv)
            return _Pages(self, args, pages, conn)

    def event_stream(
        self, args: dict[str, Any], *, csv: bool
    ) -> tuple[Iterator[Any], Callable[[], None]]:
        # A connection of its own, closed with the stream: the thread's shared one
        # stays free for the requests this thread serves meanwhile.
        with self.translated(args):
            conn = connect_read_only(self.path, self.budget_s)
            try:
                conn.start_budget()
                pages = query.EventPages(conn, args, csv=csv)
            except BaseException:
                conn.close()
                raise

        def documents() -> Iterator[Any]:
            # Each page's statement has the budget of its own: a stream runs as long
            # as it has events, one bounded statement at a time.
            with self.translated(args):
                each_page = pages.all()
                while True:
                    conn.start_budget()
                    page = next(each_page, None)
                    if page is None:
                        return
                    yield from page.documents

        return documents(), conn.close

    def event(self, event_id: str) -> StoredEvent:
        with self.translated():
            return _stored_event(self.reader(), event_id)

    def changes(self, after: int, limit: int) -> tuple[list[Change], bool]:
        with self.translated():
            return query.changes(self.reader(), after, limit)

    def feed_position(self) -> FeedPosition:
        with self.translated():
            return query.feed_position(self.reader(), self.path)

    def stats_grouped(self, args: dict[str, Any]) -> list[tuple[Group, dict[str, Any]]]:
        with self.translated(args):
            found = stats.grouped(self.reader(), args)
        return [(group, stats.render_totals(totals)) for group, totals in found]

    def stats_series(
        self,
        args: dict[str, Any],
        after: tuple[str | None, str] | None,
        limit: int,
        max_rows: int | None,
    ) -> Series[dict[str, Any]]:
        with self.translated(args):
            found = stats.series(self.reader(), args, after, limit, max_rows=max_rows)
        render = stats.render_totals
        return dataclasses.replace(
            found,
            rows=[(group, period, render(totals)) for group, period, totals in found.rows],
            coarser=[(group, period, render(totals)) for group, period, totals in found.coarser],
        )

    def search_capped(self, q: search.Search) -> bool:
        with self.translated({"q": q}):
            return SQLITE.search_capped(self.reader(), q)

    def locations(self, args: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
        with self.translated(args):
            return query.list_locations(self.reader(), args)

    def location(self, location_id: str) -> dict[str, Any] | None:
        with self.translated():
            return query.get_location(self.reader(), location_id)

    def sources(self, args: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
        with self.translated(args):
            return query.list_sources(self.reader(), args)

    def source(self, source_id: str) -> dict[str, Any] | None:
        with self.translated():
            return query.get_source(self.reader(), source_id)

    def summary(self) -> dict[str, Any]:
        with self.translated():
            conn = self.reader()
            events, first, last, sources, changed = conn.execute(_SUMMARY).fetchone()
            regions = [row[0] for row in conn.execute(_REGIONS)]
        return {
            "events": events,
            "first": first,
            "last": last,
            "sources": sources,
            "changed": changed,
            "regions": regions,
        }

    def live_key(self, key_id: str) -> StoredKey | None:
        with self.translated():
            return keys.live_key(self.reader(), key_id)

    def readiness(self) -> dict[str, str]:
        """Ready when the database is at the path, readable, of this version's
        layout, not seen damaged (or read cleanly since), and its -wal is the one
        this store opened (a deleted one needs a restart)."""
        with self.translated():
            conn = self.reader()
            if self._wal_gone(self._threads.reader):
                self._wal_removed = True
            if self._wal_removed:
                writer = self._threads.__dict__.get("writer")
                if writer is not None:
                    self._keep_what_the_removed_wal_holds(writer)
                raise self._wal_removed_error()
            # A file of another schema version says which way to go (OlderSchema:
            # migrate; NewerSchema: a later release's), through translated().
            check_version(self.path, schema_version(conn))
            missing, differing = layout_differences(conn)
            if missing or differing:
                raise Unavailable(
                    "The events database's layout is not this version's "
                    f"({', '.join(missing + differing)} missing or different): run "
                    "`python -m api migrate`."
                )
            if self._damaged:
                self._check_repaired()
        return {"status": "ready", "database": "ok"}

    # Writers.

    @contextmanager
    def writer(self, trace: Callable[[str], None] | None = None) -> Iterator["_SQLiteWriter"]:
        """A write transaction (BEGIN IMMEDIATE) on this thread's write connection:
        committed when the block ends, rolled back if it raises. Unavailable if the
        file is missing or its layout is not this version's (neither is ever created
        here), and if the file at the path was replaced during the transaction: then
        nothing is committed, since the write would land in a file no reader sees;
        and if the -wal at the path is no longer the one this connection writes into:
        then no write is made until the process restarts.

        `trace`, if given, is given every SQL statement of the transaction (sqlite3's
        trace callback), opening and layout check included, so a test can count them.
        """
        with self.translated():
            held = self._held("writer", lambda: self._connect_writer(trace))
            if self._damaged:
                self._check_repaired()
            db: sqlite_utils.Database = held.conn
            if self._wal_removed:
                self._keep_what_the_removed_wal_holds(held)
                raise self._wal_removed_error()
            db.conn.set_trace_callback(trace)
            try:
                with immediate_transaction(db):
                    yield _SQLiteWriter(db)
                    # The last moment before COMMIT: a file moved or deleted meanwhile
                    # keeps this connection, but the write would be lost with it.
                    if identity(self.path) != held.identity:
                        raise Unavailable(
                            "The events database file was replaced while writing, so "
                            "nothing was written; retry. (Swap databases with `python -m "
                            "api restore`, never by moving files.)"
                        )
                    # Likewise its -wal: the commit would go into a log no restart reads.
                    if self._wal_gone(held):
                        self._wal_removed = True
                        raise self._wal_removed_error()
            finally:
                db.conn.set_trace_callback(None)
                if self._wal_removed and not db.conn.in_transaction:
                    self._keep_what_the_removed_wal_holds(held)
                if db.conn.in_transaction or identity(self.path) != held.identity:
                    # The rollback failed, or the file is gone: the next write starts
                    # afresh.
                    self._threads.__dict__.pop("writer", None)
                    self._forget(db)

    def _connect_writer(self, trace: Callable[[str], None] | None) -> sqlite_utils.Database:
        with self._opening:
            verify = not self._layout_verified
        try:
            db = open_existing_for_writing(self.path, trace, verify_layout=verify)
        except MissingDatabase as error:
            raise self._missing() from error
        with self._opening:
            self._layout_verified = True
        return db

    # Faults.

    def _wal_gone(self, held: _Held) -> bool:
        """Whether the -wal the connection opened is no longer the one at the path.
        While any connection is open SQLite never deletes nor replaces it (a
        checkpoint rewrites it in place), so only someone else did."""
        return held.wal is not None and held.wal != identity(wal_path(self.path))

    def _keep_what_the_removed_wal_holds(self, held: _Held) -> None:
        """Copy into the database file the writes committed into a deleted -wal,
        through a connection that still has that -wal open (a FULL checkpoint): they
        were acknowledged, and a restart reads only the database file and the -wal
        at the path. A connection opened after the deletion holds a new -wal.

        Run again at every refused write: a reader on an older snapshot makes the
        checkpoint stop short (SQLITE_BUSY), and a later one finishes it."""
        if not self._wal_gone(held):
            return
        with contextlib.suppress(sqlite3.OperationalError):  # busy: the next write retries
            held.conn.execute("PRAGMA wal_checkpoint(FULL)")

    def _check_repaired(self) -> None:
        """Clear the damaged mark if the file now passes SQLite's quick check (on a
        new connection: an old one may have cached damaged pages); Damaged if not."""
        conn = connect_read_only(self.path, self.budget_s)
        try:
            conn.start_budget(math.inf)  # a full check of a large file takes seconds
            (result,) = conn.execute("PRAGMA quick_check(1)").fetchone()
        except sqlite3.DatabaseError as error:
            result = str(error)
        finally:
            conn.close()
        if result != "ok":
            raise _damaged(f"An integrity check reports: {result}.")
        self._damaged = False
        self._generation += 1

    def store_error(self, error: sqlite3.Error, args: dict[str, Any] | None = None) -> StoreError:
        """The store's error for a fault of SQLite."""
        code = getattr(error, "sqlite_errorcode", None) or 0
        primary = code & 0xFF
        if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return Busy(
                "The database is busy with another writer; nothing was written. Retry "
                f"after {Busy.retry_after_s} s."
            )
        # A WAL database also fails to grow its shared-memory file when the disk is full.
        if primary == sqlite3.SQLITE_FULL or code == sqlite3.SQLITE_IOERR_SHMSIZE:
            return Full("The server's disk is full; nothing was written. Retry later.")
        if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            self._damaged = True
            self._generation += 1
            return _damaged("SQLite reports the file damaged.")
        if primary == sqlite3.SQLITE_INTERRUPT:
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
        if code == sqlite3.SQLITE_READONLY_ROLLBACK:
            return Unavailable(
                "A write to the events database was interrupted and left a journal this "
                "read-only server may not roll back; run `python -m seed` or `python -m "
                "api init` once, which recovers it."
            )
        if primary == sqlite3.SQLITE_CANTOPEN:
            return self._missing()
        return Unavailable(
            "The events database failed "
            f"({getattr(error, 'sqlite_errorname', 'unknown error')}); retry later."
        )

    def _missing(self) -> Unavailable:
        return Unavailable(
            f"There is no events database at {Path(self.path).name}; create it with "
            "`python -m seed` (the curated events) or `python -m api init` (no events)."
        )

    def _wal_removed_error(self) -> Unavailable:
        return Unavailable(
            "The events database's write-ahead log "
            f"({Path(wal_path(self.path)).name}) was deleted while the server had it "
            "open. Nothing is written until the server restarts (the writes "
            "acknowledged before are copied into the database file from the log it "
            "still holds): restart every server process on this file, and never delete "
            "the -wal or -shm of a database in use."
        )

    @contextmanager
    def bulk_load(
        self,
        author: Author,
        at: datetime.datetime,
        audit: Callable[[BulkCounts], list[AuditRecord]],
    ) -> Iterator[writes.SQLiteBulk]:
        """One write transaction (the seed's SQLite loads add its recovery journal
        around this themselves: seed/__main__.py)."""
        with self.writer() as writer:
            with writes.bulk_writes(writer.db) as bulk:
                yield bulk
            writer.append_audit(author, at, audit(bulk.counts()))

    # Operators.

    def create_key(self, name: str, scope: str) -> str:
        with self.writer() as writer:
            return keys.create_key(writer.db, name, scope)

    def revoke_key(self, key_id: str) -> bool:
        with self.writer() as writer:
            return keys.revoke_key(writer.db, key_id)

    def key_listings(self) -> list[KeyListing]:
        with self.translated():
            conn = self.reader()
            check_version(self.path, schema_version(conn))
            return keys.key_listings(conn)

    def back_up(self, target: str, *, replace: bool = False) -> DatabaseSummary:
        return backups.back_up(self.path, target, replace=replace)

    def restore(self, source: str) -> DatabaseSummary:
        # The connections held read the file the restore replaces.
        self.close()
        return backups.restore(source, self.path)

    def migrate(self) -> str:
        db, migration = migrations.open_migrated(self.path)
        db.close()
        return migration.described()

    def recover(self) -> str | None:
        return backups.recover(self.path)


def _damaged(detail: str) -> Damaged:
    return Damaged(
        f"{detail} This instance reports itself not ready (/readyz) until the file reads "
        "cleanly; restore it from a backup (`python -m api restore`)."
    )


def _stored_event(conn: sqlite3.Connection, event_id: str) -> StoredEvent:
    stored = query.get_event(conn, event_id)
    if stored is None:
        deleted_at = query.tombstone(conn, event_id)
        if deleted_at is not None:
            raise EventDeleted(event_id, deleted_at)
        raise NoSuchEvent(event_id)
    return stored


class _Pages(EventPages):
    """query.EventPages whose SQLite errors leave as the store's."""

    def __init__(
        self,
        store: SQLiteStore,
        args: dict[str, Any],
        pages: query.EventPages,
        conn: ReadConnection,
    ) -> None:
        self._store, self._args, self._pages, self._conn = store, args, pages, conn

    def page(self, cursor: str | None, limit: int) -> query.Page:
        with self._store.translated(self._args):
            return self._pages.page(cursor, limit)

    def total(self) -> tuple[int, bool]:
        with self._store.translated(self._args):
            return self._conn.total(
                stats.total_key(self._args), lambda: stats.event_total(self._conn, self._args)
            )


class _SQLiteWriter(Writer):
    """The writes of one transaction on the write connection `db`."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def event(self, event_id: str) -> StoredEvent:
        return _stored_event(self.db.conn, event_id)

    def check_owner(self, event_id: str, key_id: str, admin: bool) -> None:
        partners.check_owner(self.db.conn, event_id, key_id, admin)

    def create_events(
        self,
        events: list[dict[str, Any]],
        author: Author,
        at: Any,
        idempotent: IdempotentRequest | None,
    ) -> tuple[Answer, bool]:
        return partners.create_events(self.db, events, author, at, idempotent)

    def update_event(self, event: dict[str, Any], before: str, author: Author, at: Any) -> str:
        return partners.update_event(self.db, event, before, author, at)

    def delete_event(self, event_id: str, before: str, author: Author, at: Any) -> None:
        partners.delete_event(self.db, event_id, before, author, at)

    def load_curated(
        self, events: list[dict[str, Any]], author: Author, at: Any, restore: Collection[str] = ()
    ) -> CuratedLoad:
        return writes.write_curated(self.db, events, author, at, restore)

    def append_audit(
        self,
        author: Author,
        at: datetime.datetime,
        entries: list[AuditRecord],
    ) -> None:
        append_audit(self.db.conn, author, at, [AuditEntry(*entry) for entry in entries])

    def renew_history(self) -> tuple[str, FeedPosition]:
        (previous,) = self.db.conn.execute("SELECT id FROM change_history").fetchone()
        renew_history(self.db.conn)
        return previous, FeedPosition(*self.db.conn.execute(query.FEED_POSITION).fetchone())
