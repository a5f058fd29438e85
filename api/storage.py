"""The SQLite layout, and every statement that writes into it.

Events are normalised into tables that the query layer filters on (munitions,
actors, reporters, places, sources, a full-text index, an R*Tree of places) and
also kept whole in `event_documents`: the JSON document the API returns and its
CSV line, rendered when the event is written. Reads then join stored documents
instead of serialising every row (see docs/design.md). The totals /stats reads are
kept in rollups (api/rollups.py, the part of the store that owns their tables),
which every write here keeps current in the same transaction.

The layout is created by the seed and by `python -m api init` (open_for_writing,
init_database). The API never creates a file or a table: open_existing_for_writing
opens an existing database and checks its layout once per process, so that a write
request runs only its own statements. Functions that only read take a sqlite3 connection;
writers take the sqlite_utils.Database the seed also writes through, and leave the
transaction to their caller.
"""

import datetime
import functools
import hashlib
import os
import re
import secrets
import signal
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

import orjson
import sqlite_utils
from marshmallow import ValidationError

from api import rollups
from schemas.csv import csv_line
from schemas.event import EventSchema, event_document
from schemas.fields import TIMESTAMP_FORMAT, flatten_messages
from schemas.vocabulary import MUNITION_CATEGORIES

# Bit i of events.weapons is set when the event has a munition entry of the i-th
# category, so the weapon filter is a cheap test on the row being scanned.
WEAPON_BITS = {category: 1 << i for i, category in enumerate(MUNITION_CATEGORIES)}

# Events per batch of rows written at once, by the seed and the synthetic generator.
BATCH_SIZE = 2000

# Every statement that reads an event with its stored document joins them so.
EVENTS_WITH_DOCUMENTS = "events e JOIN event_documents d ON d.row_id = e.row_id"


def placeholders(values: Collection[Any]) -> str:
    """One SQL parameter marker per value, for `IN (...)`: "?, ?, ?"."""
    return ", ".join(["?"] * len(values))


# How long a writer waits for another's lock before giving up (the API then answers
# 503 with Retry-After): long enough for any API write to finish, short enough that a
# lock held by another process does not hold a worker for long.
WRITE_LOCK_WAIT_MS = 1500


class OutdatedLayout(Exception):
    """The database's tables and indexes are not this version's: some are missing, or
    differ because another version of Salvo made them."""

    def __init__(self, path: str, missing: list[str], differing: list[str]) -> None:
        self.missing, self.differing = missing, differing
        if differing:
            advice = (
                f"was made by another version of Salvo ({', '.join(differing)} differ); "
                "seed a new file, or delete this one and seed again"
            )
        else:
            advice = f"lacks {', '.join(missing)}; run `python -m api init` to add them"
        self.advice = advice
        super().__init__(f"{path} {advice}")


class MissingDatabase(Exception):
    """There is no database file where one was expected; the API never creates one."""


def open_for_writing(path: str) -> sqlite_utils.Database:
    """Open the database at path for a seed or an operator's command, creating the
    file and adding the tables and indexes it lacks. Raises OutdatedLayout rather
    than write into tables of another layout."""
    db, _ = _open_laid_out(path)
    return db


def init_database(path: str) -> list[str]:
    """Create the database at path, or add the tables and indexes it lacks
    (`python -m api init`). Returns the names of those created, none if the layout
    was complete. Raises OutdatedLayout for tables of another layout."""
    db, created = _open_laid_out(path)
    db.close()
    return created


def _open_laid_out(path: str) -> tuple[sqlite_utils.Database, list[str]]:
    db = sqlite_utils.Database(path)
    try:
        missing, differing = _compare_layout(db.conn)
        if differing:
            raise OutdatedLayout(path, missing, differing)
        _configure(db)
        # Only a file lacking something runs the DDL: a current one is just opened.
        if missing:
            with immediate_transaction(db):
                _upgrade(db, missing)
                create_tables(db)
                # Rollups added to a database that has events start from them.
                if set(missing) & set(rollups.TABLES):
                    rollups.rebuild(db.conn)
        elif rollups.lacks_all_categories(db.conn):
            with immediate_transaction(db):
                rollups.rebuild(db.conn)
    except BaseException:
        db.close()
        raise
    return db, missing


# Paths whose layout this process found current: open_existing_for_writing checks a file once,
# not on every request. Replacing the file under a running server needs a restart.
_verified_layouts: set[str] = set()
_verifying = threading.Lock()


def open_existing_for_writing(
    path: str, trace: Callable[[str], None] | None = None
) -> sqlite_utils.Database:
    """A write connection to the existing database at path, whose layout is this
    version's (checked on the process's first connection to it). Opened with
    mode=rw, so that a missing file raises MissingDatabase instead of being created
    empty; a layout that is not current raises OutdatedLayout. `trace`, if given, is
    sqlite3's trace callback from the first statement on (for tests)."""
    uri = Path(path).resolve().as_uri() + "?mode=rw"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.OperationalError as error:
        raise MissingDatabase(f"{path} cannot be opened: {error}") from error
    conn.set_trace_callback(trace)
    db = sqlite_utils.Database(conn)
    try:
        with _verifying:
            if path not in _verified_layouts:
                missing, differing = _compare_layout(conn)
                if missing or differing:
                    raise OutdatedLayout(path, missing, differing)
                _verified_layouts.add(path)
        _configure(db)
    except BaseException:
        db.close()
        raise
    return db


def _configure(db: sqlite_utils.Database) -> None:
    """Settings every writer's connection needs: the WAL (readers are never blocked
    by a writer), foreign keys, and a bounded wait for the write lock."""
    db.enable_wal()
    db.execute("PRAGMA foreign_keys = ON")
    db.execute(f"PRAGMA busy_timeout = {WRITE_LOCK_WAIT_MS}")


@contextmanager
def immediate_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One transaction taken with BEGIN IMMEDIATE, so that concurrent writers wait
    for each other (busy_timeout) rather than fail on upgrading a read lock:
    committed when the block ends, rolled back if it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def layout_differences(conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
    """Salvo's tables and indexes missing from the database, and those it defines
    otherwise than this version does."""
    return _compare_layout(conn)


def outdated_objects(conn: sqlite3.Connection) -> list[str]:
    """Salvo's tables and indexes whose definition in the database is not this
    version's. Missing ones are not counted (create_tables adds them), nor objects
    Salvo does not define (an operator's own index or trigger)."""
    return _compare_layout(conn)[1]


def _compare_layout(conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
    """Salvo's tables and indexes that the database lacks, and those it defines
    otherwise (see outdated_objects)."""
    expected, present = _expected_layout(), dict(_layout(conn))
    # A table an earlier version laid out, which _upgrade turns into this version's,
    # is as good as missing: `python -m api init` adds what it lacks.
    missing = [
        name
        for name in expected
        if name not in present or _EARLIER_LAYOUTS.get(name) == present[name]
    ]
    differing = [
        name
        for name, sql in present.items()
        if expected.get(name, sql) != sql and _EARLIER_LAYOUTS.get(name) != sql
    ]
    return missing, differing


# Tables as an earlier version created them, which _upgrade rebuilds in this
# version's layout keeping their rows: audit_log before it recorded commands, key
# changes, request ids and client addresses.
_EARLIER_LAYOUTS = {
    "audit_log": 'CREATE TABLE "audit_log" (\n   "seq" INTEGER PRIMARY KEY,\n'
    '   "at" TEXT NOT NULL,\n   "key_id" TEXT NOT NULL,\n   "key_name" TEXT NOT NULL,\n'
    '   "action" TEXT NOT NULL,\n   "event_id" TEXT NOT NULL,\n   "before" TEXT,\n'
    '   "after" TEXT\n)',
}
_EARLIER_AUDIT_COLUMNS = "seq, at, key_id, key_name, action, event_id, before, after"


def _upgrade(db: sqlite_utils.Database, missing: list[str]) -> None:
    """Bring an earlier version's tables to this version's layout, keeping their rows,
    and fill the tables added since from what the database already records. Runs in
    the caller's transaction, before create_tables."""
    present = dict(_layout(db.conn))
    if "audit_log" in missing and present.get("audit_log") == _EARLIER_LAYOUTS["audit_log"]:
        # DROP TABLE fires no trigger: the append-only rule holds for the rows, which
        # move whole into the new table, seq included.
        for verb in ("update", "delete"):
            db.execute(f"DROP TRIGGER IF EXISTS audit_log_no_{verb}")
        db.execute("ALTER TABLE audit_log RENAME TO audit_log_earlier")
        create_tables(db)
        db.execute(
            f"INSERT INTO audit_log ({_EARLIER_AUDIT_COLUMNS}) "
            f"SELECT {_EARLIER_AUDIT_COLUMNS} FROM audit_log_earlier ORDER BY seq"
        )
        db.execute("DROP TABLE audit_log_earlier")
    if "event_owners" in missing:
        create_tables(db)
        # Events created through the API before owners were recorded: their creator
        # is in the audit log.
        db.execute(
            "INSERT OR IGNORE INTO event_owners (event_id, key_id) "
            "SELECT event_id, key_id FROM audit_log "
            "WHERE action = 'create' AND key_id IS NOT NULL "
            "AND event_id IN (SELECT id FROM events) ORDER BY seq"
        )


def _layout(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
    ).fetchall()


@functools.cache
def _expected_layout() -> dict[str, str]:
    # Kept as data, not as the connection: a connection may not cross threads.
    db = sqlite_utils.Database(memory=True)
    create_tables(db)
    layout = dict(_layout(db.conn))
    db.close()
    return layout


def create_tables(db: sqlite_utils.Database) -> None:
    """Create every table, index and virtual table the API reads; safe to call again."""
    db.table("sources").create(
        {"id": str, "title": str, "publisher": str, "url": str, "published": str, "reference": str},
        pk="id",
        not_null={"title", "published"},
        if_not_exists=True,
    )
    # Tables that virtual tables point into have an explicit INTEGER PRIMARY KEY:
    # VACUUM may renumber an implicit rowid and cut the link.
    db.table("locations").create(
        {
            "row_id": int,
            "id": str,
            "name": str,
            "admin1": str,
            "country": str,
            "country_code": str,
            "latitude": float,
            "longitude": float,
            "precision": str,
        },
        pk="row_id",
        not_null={"id", "name", "country", "country_code", "latitude", "longitude", "precision"},
        if_not_exists=True,
    )
    db.table("locations").create_index(["id"], unique=True, if_not_exists=True)
    db.table("events").create(
        {
            "row_id": int,
            "id": str,
            "event_type": str,
            "date": str,
            "date_precision": str,
            "location_id": str,
            # Copied from the place so that filters walk one index in date order and
            # GeoJSON needs no join.
            "country_code": str,
            "admin1": str,
            "latitude": float,
            "longitude": float,
            "source_id": str,
            "weapons": int,
            "killed_best": int,
            "killed_low": int,
            "killed_high": int,
            "killed_qualifier": str,
            "injured_best": int,
            "injured_low": int,
            "injured_high": int,
            "injured_qualifier": str,
            # Every write of an event takes the next number of one sequence shared
            # with tombstones: /changes reads events and deletions in that order.
            "seq": int,
            "first_seq": int,
            "updated_at": str,
        },
        pk="row_id",
        not_null={
            "id",
            "seq",
            "first_seq",
            "updated_at",
            "event_type",
            "date",
            "date_precision",
            "location_id",
            "country_code",
            "source_id",
            "weapons",
        },
        foreign_keys=[("location_id", "locations", "id"), ("source_id", "sources", "id")],
        if_not_exists=True,
    )
    db.table("events").create_index(["id"], unique=True, if_not_exists=True)
    # The rendered documents live apart from the rows the filters read, so that
    # index walks and index builds touch small rows only.
    # digest is the SHA-1 of body: page ETags are built from the digests of their
    # documents instead of hashing every response.
    # content_digest is the SHA-1 of the document without updated_at: a write that
    # changes nothing is recognised and skipped, so re-seeding is a no-op.
    db.table("event_documents").create(
        {"row_id": int, "body": str, "digest": bytes, "content_digest": bytes, "csv": str},
        pk="row_id",
        not_null={"body", "digest", "content_digest", "csv"},
        foreign_keys=[("row_id", "events", "row_id")],
        if_not_exists=True,
    )
    db.table("actors").create(
        {"name": str, "kind": str}, pk="name", not_null={"kind"}, if_not_exists=True
    )
    db.table("event_actors").create(
        {"event_id": str, "position": int, "actor_name": str, "role": str},
        pk=("event_id", "position"),
        not_null={"actor_name", "role"},
        foreign_keys=[("event_id", "events", "id"), ("actor_name", "actors", "name")],
        if_not_exists=True,
    )
    db.table("munitions").create(
        {
            "event_id": str,
            "position": int,
            "category": str,
            "model": str,
            "launched": int,
            "intercepted": int,
            "not_reached": int,
            "hit": int,
            "reported_by": str,
        },
        pk=("event_id", "position"),
        not_null={"category"},
        foreign_keys=[("event_id", "events", "id")],
        if_not_exists=True,
    )
    db.table("reporters").create(
        {"event_id": str, "position": int, "name": str, "kind": str, "title": str},
        pk=("event_id", "position"),
        not_null={"name", "kind"},
        foreign_keys=[("event_id", "events", "id")],
        if_not_exists=True,
    )
    # A deleted event leaves its last document and the sequence number of its deletion.
    db.table("event_tombstones").create(
        {"id": str, "seq": int, "deleted_at": str, "body": str},
        pk="id",
        not_null={"seq", "deleted_at", "body"},
        if_not_exists=True,
    )
    # Per curated event id, the SHA-1 of the curated record the last seed read (see
    # write_curated): a record whose digest moved was edited by the curators, whose
    # version then replaces an edit made through the API.
    db.table("curated_loads").create(
        {"event_id": str, "record_digest": bytes},
        pk="event_id",
        not_null={"record_digest"},
        if_not_exists=True,
    )
    # Full-text search over the notes and the place name; rowid is events.row_id.
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(notes, place)")
    # Places as points in an R*Tree for bbox and near; id is locations.row_id.
    db.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS locations_rtree "
        "USING rtree(id, min_lon, max_lon, min_lat, max_lat)"
    )
    # Keys are stored as a salted hash of their secret only (see api/keys.py).
    db.table("api_keys").create(
        {
            "id": str,
            "name": str,
            "scope": str,
            "salt": bytes,
            "hash": bytes,
            "created_at": str,
            "revoked_at": str,
        },
        pk="id",
        not_null={"name", "scope", "salt", "hash", "created_at"},
        if_not_exists=True,
    )
    # Every change to an event, key or the whole content (docs/operations.md, "Audit
    # trail"), append-only: the triggers refuse to change the past. key_id and
    # key_name are null for a command run on the server (seed, import, keys, restore),
    # event_id for an entry about no one event; detail is a JSON object.
    db.table("audit_log").create(
        {
            "seq": int,
            "at": str,
            "key_id": str,
            "key_name": str,
            "action": str,
            "event_id": str,
            "before": str,
            "after": str,
            "request_id": str,
            "client_address": str,
            "detail": str,
        },
        pk="seq",
        not_null={"at", "action"},
        if_not_exists=True,
    )
    for verb in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )
    # The API key that created each event through the API; an event without a row
    # (curated, imported, synthetic) belongs to the curators. See event_owner.
    db.table("event_owners").create(
        {"event_id": str, "key_id": str},
        pk="event_id",
        not_null={"key_id"},
        if_not_exists=True,
    )
    # Answers to POSTs sent with an Idempotency-Key, replayed when the client retries
    # within IDEMPOTENCY_KEEP; request_digest is content_digest of the body. The index
    # lets each POST purge a few expired answers, oldest first (purge_idempotent_requests).
    db.table("idempotent_requests").create(
        {
            "key_id": str,
            "idempotency_key": str,
            "request_digest": bytes,
            "status": int,
            "body": bytes,
            "created_at": str,
        },
        pk=("key_id", "idempotency_key"),
        not_null={"request_digest", "status", "body", "created_at"},
        if_not_exists=True,
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS idempotent_requests_created ON idempotent_requests (created_at)"
    )
    # The source rows imports turned into events (seed/imports.py): the digest of a
    # row's cells read in its import's context, its event, and the event's seq once
    # the import was done. A row whose event still has that seq (no write since) is
    # unchanged: a re-import of its file skips it without mapping or validating it.
    db.execute(
        "CREATE TABLE IF NOT EXISTS import_sources (digest BLOB PRIMARY KEY, "
        "event_id TEXT NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID"
    )
    _create_change_history(db)
    rollups.create(db.conn)
    create_indexes(db)


def _create_change_history(db: sqlite_utils.Database) -> None:
    """The one-row table naming this database's change history (see docs/operations.md).

    Change tokens carry the history's id: a file restored from a backup gets a new id,
    so a partner's token from before the restore is refused even where its sequence
    number exists again. `old_tokens_until` is the highest sequence number when the
    id was made: tokens from before histories had ids are trusted up to it only."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS change_history ("
        "singleton INTEGER PRIMARY KEY CHECK (singleton = 1), "
        "id TEXT NOT NULL, "
        "old_tokens_until INTEGER NOT NULL)"
    )
    conn = db.conn
    # Python's sqlite3 opens a transaction before an INSERT: commit it unless the
    # caller had one open, so that init_database's close does not discard the row.
    outer = conn.in_transaction
    conn.execute(
        "INSERT OR IGNORE INTO change_history (singleton, id, old_tokens_until) VALUES (1, ?, ?)",
        [new_history_id(), next_seq(conn) - 1],
    )
    if not outer:
        conn.commit()


def new_history_id() -> str:
    """A random id for a change history: 64 bits, never reused in practice."""
    return secrets.token_hex(8)


# Every filter and sort has an index ending in the keyset tie-breaker `id`, so a
# page is one ordered index walk that stops after `limit` rows.
INDEXES = {
    "events_date": "events (date, id)",
    "events_seq": "events (seq)",
    "events_updated": "events (updated_at, id)",
    "event_tombstones_seq": "event_tombstones (seq)",
    "events_type_date": "events (event_type, date, id)",
    "events_country_date": "events (country_code, date, id)",
    "events_admin1_date": "events (admin1 COLLATE NOCASE, date, id)",
    "events_location_date": "events (location_id, date, id)",
    "events_source": "events (source_id)",
    "events_killed": "events (coalesce(killed_best, -1), id)",
    "events_injured": "events (coalesce(injured_best, -1), id)",
    "locations_name": "locations (name COLLATE NOCASE)",
    "locations_admin1": "locations (admin1 COLLATE NOCASE)",
    "locations_country": "locations (country_code)",
    "event_actors_actor": "event_actors (actor_name, event_id)",
    "munitions_category": "munitions (category, event_id)",
}


def create_indexes(db: sqlite_utils.Database) -> None:
    """Create the secondary indexes that do not exist yet."""
    for name, definition in INDEXES.items():
        db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}")


def gather_statistics(db: sqlite_utils.Database) -> None:
    """ANALYZE the tables whose statistics the query planner weighs (api/query.py): not
    event_documents, only ever read by row id, whose row count alone takes a scan of
    its every page (1,000,000 events: 1.65 of ANALYZE's 4.1 s)."""
    for (table,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'event_documents' "
        "AND name NOT LIKE 'sqlite_%' AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'"
    ).fetchall():
        db.execute(f'ANALYZE "{table}"')


# The writer itself reads these (next_seq), so a bulk load keeps them.
_WRITE_PATH_INDEXES = {"events_seq", "event_tombstones_seq"}

# The connections inside a bulk_load: insert_rows leaves their rollups to its end.
_bulk_loading: set[int] = set()


@contextmanager
def bulk_load(db: sqlite_utils.Database) -> Iterator[None]:
    """For a bulk load: drop the secondary indexes the writer does not read, and
    leave the rollups alone, then build both once the rows are in. Sorting a million
    keys once is several times cheaper than a million random index inserts, and one
    GROUP BY over the events cheaper than a million rollup updates. Run inside the
    load's transaction, so a failure keeps the indexes and rollups as they were."""
    for name in INDEXES.keys() - _WRITE_PATH_INDEXES:
        db.execute(f"DROP INDEX IF EXISTS {name}")
    # The default 2 MB page cache, measured against 256 MiB, which made the index and
    # rollup builds of 100,000 ACLED rows 20-28% cheaper but a 1M-event synthetic load
    # slower (163.2 s against 146.8 s, back to back).
    _bulk_loading.add(id(db.conn))
    try:
        yield
        # The copies of the places and sources the load changed, found with one scan
        # of the events and written before the indexes are back (see insert_rows).
        moved = _moved_in_bulk.pop(id(db.conn), None)
        if moved is not None:
            _rerender_copies(db, moved)
        # The sorts that build indexes and rollups may use every core: the load's
        # workers are done by now (measured at 1M events: 31.5 s -> 26.9 s).
        (threads,) = db.execute("PRAGMA threads").fetchone()
        db.execute(f"PRAGMA threads = {os.cpu_count() or 1}")
        try:
            create_indexes(db)
            rollups.rebuild(db.conn)
        finally:
            db.execute(f"PRAGMA threads = {int(threads)}")
    finally:
        _bulk_loading.discard(id(db.conn))
        _moved_in_bulk.pop(id(db.conn), None)


class EventRow(NamedTuple):
    """An event's row in `events`, but for seq and first_seq, which insert_rows assigns."""

    id: str
    event_type: str
    date: str
    date_precision: str
    location_id: str
    country_code: str
    admin1: str | None
    latitude: float
    longitude: float
    source_id: str
    weapons: int
    killed_best: int | None
    killed_low: int | None
    killed_high: int | None
    killed_qualifier: str | None
    injured_best: int | None
    injured_low: int | None
    injured_high: int | None
    injured_qualifier: str | None
    updated_at: str


class DocumentRow(NamedTuple):
    """An event's rendered document, and the text its full-text index row holds."""

    event_id: str
    body: str
    digest: bytes  # SHA-1 of body: the event's ETag
    content_digest: bytes  # SHA-1 of the document without updated_at
    csv: str
    notes: str
    place: str


@dataclass
class EventRows:
    """A batch of validated events as the rows of each table. Building it is pure
    work, so a bulk load can do it in worker processes; insert_rows writes it."""

    locations: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    actors: dict[str, str] = field(default_factory=dict)
    events: list[EventRow] = field(default_factory=list)
    # The rows of event_actors, munitions and reporters, each (event id, position,
    # the other columns in table order): passed whole to executemany. Plain tuples,
    # as a million-event load builds millions and pickles them across processes.
    event_actors: list[tuple[Any, ...]] = field(default_factory=list)
    munitions: list[tuple[Any, ...]] = field(default_factory=list)
    reporters: list[tuple[Any, ...]] = field(default_factory=list)
    documents: list[DocumentRow] = field(default_factory=list)

    def only(self, ids: set[str]) -> "EventRows":
        """The rows of the events with these ids (and every place, source and actor)."""

        def kept(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
            return [row for row in rows if row[_EVENT_ID] in ids]

        return EventRows(
            locations=self.locations,
            sources=self.sources,
            actors=self.actors,
            events=[row for row in self.events if row.id in ids],
            event_actors=kept(self.event_actors),
            munitions=kept(self.munitions),
            reporters=kept(self.reporters),
            documents=[row for row in self.documents if row.event_id in ids],
        )


# Where the event id is in a row of event_actors, munitions or reporters.
_EVENT_ID = 0


def _upsert(table: str, columns: tuple[str, ...], key: str, keep: tuple[str, ...] = ()) -> str:
    """An INSERT of one row that updates the row with the same `key` instead, except
    for the columns in `keep`."""
    updates = ", ".join(
        f"{column} = excluded.{column}" for column in columns if column not in (key, *keep)
    )
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders(columns)}) "
        f"ON CONFLICT({key}) DO UPDATE SET {updates}"
    )


# first_seq is the sequence number an event was created at: an update keeps it.
_EVENT_COLUMNS = (*EventRow._fields, "seq", "first_seq")
_UPSERT_EVENT = _upsert("events", _EVENT_COLUMNS, "id", keep=("first_seq",))
_LOCATION_COLUMNS = (
    "id", "name", "admin1", "country", "country_code", "latitude", "longitude", "precision",
)  # fmt: skip
_UPSERT_LOCATION = _upsert("locations", _LOCATION_COLUMNS, "id")
_SOURCE_COLUMNS = ("id", "title", "publisher", "url", "published", "reference")
_UPSERT_SOURCE = _upsert("sources", _SOURCE_COLUMNS, "id")
_UPSERT_ACTOR = _upsert("actors", ("name", "kind"), "name")
_MUNITION_COLUMNS = (
    "category",
    "model",
    "launched",
    "intercepted",
    "not_reached",
    "hit",
    "reported_by",
)


def event_rows(events: Iterable[dict[str, Any]], changed_at: datetime.datetime) -> EventRows:
    """The table rows of validated events (as EventSchema.load returns them), as
    written at changed_at (UTC)."""
    updated_at = changed_at.strftime(TIMESTAMP_FORMAT)
    rows = EventRows()
    for event in events:
        event_id, location, casualties = event["id"], event["location"], event["casualties"]
        rows.locations[location["id"]] = location
        rows.sources[event["source"]["id"]] = {
            **event["source"],
            "published": event["source"]["published"].isoformat(),
        }
        killed, injured = casualties["killed"] or {}, casualties["injured"] or {}
        rows.events.append(
            EventRow(
                event_id,
                event["event_type"],
                event["date"].isoformat(),
                event["date_precision"],
                location["id"],
                location["country_code"],
                location["admin1"],
                location["latitude"],
                location["longitude"],
                event["source"]["id"],
                sum({WEAPON_BITS[m["category"]] for m in event["munitions"]}),
                killed.get("best"),
                killed.get("low"),
                killed.get("high"),
                killed.get("qualifier"),
                injured.get("best"),
                injured.get("low"),
                injured.get("high"),
                injured.get("qualifier"),
                updated_at,
            )
        )
        for position, actor in enumerate(event["actors"]):
            rows.actors[actor["name"]] = actor["kind"]
            rows.event_actors.append((event_id, position, actor["name"], actor["role"]))
        for position, munition in enumerate(event["munitions"]):
            rows.munitions.append(
                (event_id, position, *(munition[column] for column in _MUNITION_COLUMNS))
            )
        for position, reporter in enumerate(event["reported_by"]):
            rows.reporters.append(
                (event_id, position, reporter["name"], reporter["kind"], reporter["title"])
            )
        place = " ".join(filter(None, (location["name"], location["admin1"])))
        document = event_document(event, changed_at)
        # The document without updated_at is the content; the body is the same bytes
        # with updated_at, the document's last member, put back in (one dump, not two).
        updated = orjson.dumps({"updated_at": document.pop("updated_at")})
        content = orjson.dumps(document)
        body = b"%b,%b" % (content[:-1], updated[1:])
        rows.documents.append(
            DocumentRow(
                event_id,
                body.decode(),
                hashlib.sha1(body, usedforsecurity=False).digest(),
                hashlib.sha1(content, usedforsecurity=False).digest(),
                csv_line(document),
                event["notes"],
                place,
            )
        )
    return rows


def write_events(
    db: sqlite_utils.Database,
    events: Iterable[dict[str, Any]],
    changed_at: datetime.datetime | None = None,
) -> int:
    """Upsert validated events (as EventSchema.load returns them) with their places,
    sources, actors, munitions and reporters, replacing what each event had before.
    An event whose content is unchanged is left as it is; every other one takes the
    next change sequence number and updated_at = changed_at (default: now, UTC).

    The caller owns the transaction: wrap the call in ``db.atomic()`` so that a
    failure leaves the database as it was. Returns the number of events changed.
    """
    changed_at = changed_at or datetime.datetime.now(datetime.UTC)
    count = 0
    iterator = iter(events)
    while batch := list(islice(iterator, BATCH_SIZE)):
        count += insert_rows(db, event_rows(batch, changed_at))
    return count


@dataclass
class CuratedLoad:
    """How many curated events write_curated inserted, updated, found unchanged, and
    kept as partners left them; and how many other events it re-rendered, as they
    copy a place or source it changed."""

    new: int
    updated: int
    unchanged: int
    kept_edited: int
    kept_deleted: int
    rerendered: int = 0


def record_digest(event: dict[str, Any]) -> bytes:
    """The SHA-1 of a validated record (as EventSchema.load returns it), with keys in
    a fixed order: the same record gives the same digest in every run."""
    return hashlib.sha1(
        orjson.dumps(event, option=orjson.OPT_SORT_KEYS), usedforsecurity=False
    ).digest()


def write_curated(
    db: sqlite_utils.Database,
    events: list[dict[str, Any]],
    author: "Author",
    changed_at: datetime.datetime | None = None,
    restore: Iterable[str] = (),
) -> CuratedLoad:
    """Load the curated events without undoing partners' writes:

    - an event deleted through the API stays deleted, unless its id is in `restore`;
    - an event whose stored version is an API write (the audit log's last document
      for it) stays as the partner left it, unless its curated record changed since
      the last seed: then the curated version replaces it;
    - every other event is written as write_events writes it (a new one is inserted,
      an unchanged one left as it is).

    With no curated record remembered for an event (a database seeded before
    curated_loads existed, or an id a partner created first), the record counts as
    unchanged: an API write stays. Every record's digest is remembered for the next
    seed. Every event written is audited (create or update, before and after, as
    `author`), and the load as a whole ('seed', with its counts); an event written
    becomes the curators' again. The caller owns the transaction."""
    changed_at = changed_at or datetime.datetime.now(datetime.UTC)
    conn = db.conn
    digests = {event["id"]: record_digest(event) for event in events}
    # json_each takes the ids as one parameter, however many there are.
    ids = orjson.dumps(list(digests)).decode()
    remembered = dict(
        conn.execute(
            "SELECT event_id, record_digest FROM curated_loads "
            "WHERE event_id IN (SELECT value FROM json_each(?))",
            [ids],
        )
    )
    deleted = {
        event_id
        for (event_id,) in conn.execute(
            "SELECT id FROM event_tombstones WHERE id IN (SELECT value FROM json_each(?))", [ids]
        )
    } - set(restore)
    stored = dict(
        conn.execute(
            f"SELECT e.id, d.body FROM {EVENTS_WITH_DOCUMENTS} "
            "WHERE e.id IN (SELECT value FROM json_each(?))",
            [ids],
        )
    )
    # The stored document is an API write when it is the document the event's last
    # audited write left, but for the place and source it copies, which a change to
    # them re-rendered since (unaudited); a later seed write would have replaced it.
    # (SQLite takes the bare column `after` from the row of max(seq).)
    # Only entries made with an API key count: the seed audits its own writes too.
    edited = {
        event_id
        for event_id, after, _ in conn.execute(
            "SELECT event_id, after, max(seq) FROM audit_log WHERE key_id IS NOT NULL "
            "AND event_id IN (SELECT value FROM json_each(?)) GROUP BY event_id",
            [ids],
        )
        if after is not None
        and event_id in stored
        and _own_content(stored[event_id]) == _own_content(after)
    }
    kept_deleted = {event_id for event_id in digests if event_id in deleted}
    kept_edited = {
        event_id
        for event_id in edited
        if remembered.get(event_id, digests[event_id]) == digests[event_id]
    }
    loaded = [event for event in events if event["id"] not in kept_deleted | kept_edited]
    new = sum(1 for event in loaded if event["id"] not in stored)
    first_seq = next_seq(conn)
    changed = write_events(db, loaded, changed_at)
    # Each event written takes one number: those beyond the curated events' went to
    # the events re-rendered with a place or source the curated events changed.
    rerendered = next_seq(conn) - first_seq - changed
    conn.executemany(
        "INSERT INTO curated_loads (event_id, record_digest) VALUES (?, ?) "
        "ON CONFLICT(event_id) DO UPDATE SET record_digest = excluded.record_digest",
        digests.items(),
    )
    now = event_documents(conn, [event["id"] for event in loaded])
    written = [event_id for event_id, body in now.items() if stored.get(event_id) != body]
    conn.execute(
        "DELETE FROM event_owners WHERE event_id IN (SELECT value FROM json_each(?))",
        [orjson.dumps(written).decode()],
    )
    load = CuratedLoad(
        new=new,
        updated=changed - new,
        unchanged=len(loaded) - changed,
        kept_edited=len(kept_edited),
        kept_deleted=len(kept_deleted),
        rerendered=rerendered,
    )
    entries = [
        AuditEntry("update" if i in stored else "create", i, stored.get(i), now[i]) for i in written
    ]
    entries.append(AuditEntry("seed", detail={"curated_events": len(events), **asdict(load)}))
    append_audit(conn, author, changed_at, entries)
    return load


def _own_content(document: str) -> dict[str, Any]:
    """A stored document but for what writes of other events change in it: its
    updated_at, and the values of the place and source it copies (their ids stay)."""
    content = orjson.loads(document)
    del content["updated_at"]
    content["location"], content["source"] = content["location"]["id"], content["source"]["id"]
    return content


# The highest number of the change sequence taken so far, 0 for none: one seek to the
# end of each seq index (events_seq, event_tombstones_seq), never a scan.
HIGHEST_SEQ = (
    "max(coalesce((SELECT max(seq) FROM events), 0), "
    "coalesce((SELECT max(seq) FROM event_tombstones), 0))"
)


def next_seq(conn: sqlite3.Connection) -> int:
    """The next number of the change sequence shared by events and tombstones."""
    (last,) = conn.execute(f"SELECT {HIGHEST_SEQ}").fetchone()
    return last + 1


def insert_rows(db: sqlite_utils.Database, rows: EventRows, *, keep_rollups: bool = True) -> int:
    """Write one batch of event rows, replacing the events' previous rows and skipping
    events whose content has not changed. Returns the number of events written.

    The rollups are kept current unless `keep_rollups` is false: then the caller
    subtracts and adds the events' contributions around the write (or a bulk load
    rebuilds them). A place or source the rows change is changed for every event
    that copies it (_rerender_copies)."""
    conn = db.conn
    ids = [row.id for row in rows.events]
    # What each event is now: its content digest and the sequence number it was created at.
    stored = {
        event_id: _StoredVersion(content_digest, first_seq)
        for event_id, content_digest, first_seq in conn.execute(
            f"SELECT e.id, d.content_digest, e.first_seq FROM {EVENTS_WITH_DOCUMENTS} "
            f"WHERE e.id IN ({placeholders(ids)})",
            ids,
        )
    }
    changed = {
        row.event_id
        for row in rows.documents
        if row.event_id not in stored or stored[row.event_id].content_digest != row.content_digest
    }
    if not changed:
        return 0
    if len(changed) < len(ids):
        rows = rows.only(changed)
        ids = [row.id for row in rows.events]
    marks = placeholders(ids)
    # The rollups lose what the stored versions contributed and gain the new ones.
    maintain_rollups = keep_rollups and id(conn) not in _bulk_loading
    ids_json = orjson.dumps(ids).decode()
    replaced = bool(stored.keys() & changed)
    if maintain_rollups and replaced:
        rollups.subtract(conn, ids_json)
    seq = next_seq(conn)
    events = []
    for offset, row in enumerate(rows.events):
        first_seq = stored[row.id].first_seq if row.id in stored else seq + offset
        events.append((*row, seq + offset, first_seq))

    moved = _moved_shared_records(conn, rows)
    # Every table takes executemany with prepared statements, which measured twice
    # as fast as sqlite-utils' per-value conversion at 1M events, and reads no schema.
    conn.executemany(
        _UPSERT_LOCATION,
        [[place[column] for column in _LOCATION_COLUMNS] for place in rows.locations.values()],
    )
    conn.executemany(
        _UPSERT_SOURCE,
        [[source[column] for column in _SOURCE_COLUMNS] for source in rows.sources.values()],
    )
    conn.executemany(_UPSERT_ACTOR, rows.actors.items())
    conn.executemany(_UPSERT_EVENT, events)
    conn.execute(f"DELETE FROM event_tombstones WHERE id IN ({marks})", ids)
    # Only a stored event has rows to replace: a new one has none to look for.
    replacing = [event_id for event_id in ids if event_id in stored]
    for table in ("event_actors", "munitions", "reporters") if replacing else ():
        conn.execute(
            f"DELETE FROM {table} WHERE event_id IN ({placeholders(replacing)})", replacing
        )
    conn.executemany("INSERT INTO event_actors VALUES (?, ?, ?, ?)", rows.event_actors)
    conn.executemany("INSERT INTO munitions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows.munitions)
    conn.executemany("INSERT INTO reporters VALUES (?, ?, ?, ?, ?)", rows.reporters)

    row_ids = dict(conn.execute(f"SELECT id, row_id FROM events WHERE id IN ({marks})", ids))
    conn.executemany(
        "INSERT OR REPLACE INTO event_documents (row_id, body, digest, content_digest, csv) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            (row_ids[row.event_id], row.body, row.digest, row.content_digest, row.csv)
            for row in rows.documents
        ],
    )
    if replacing:
        conn.execute(
            f"DELETE FROM events_fts WHERE rowid IN ({placeholders(replacing)})",
            [row_ids[i] for i in replacing],
        )
    conn.executemany(
        "INSERT INTO events_fts (rowid, notes, place) VALUES (?, ?, ?)",
        [(row_ids[row.event_id], row.notes, row.place) for row in rows.documents],
    )
    places = list(rows.locations)
    conn.executemany(
        "INSERT OR REPLACE INTO locations_rtree VALUES (?, ?, ?, ?, ?)",
        [
            (row_id, lon, lon, lat, lat)
            for row_id, lon, lat in conn.execute(
                "SELECT row_id, longitude, latitude FROM locations "
                f"WHERE id IN ({placeholders(places)})",
                places,
            )
        ],
    )
    if maintain_rollups:
        rollups.add(conn, ids_json)
        rollups.apply(conn, removed=replaced)
    if moved.places or moved.sources:
        # Every other event copying a changed place or source is written again; in a
        # bulk load, once at its end (bulk_load): finding them without the indexes
        # the load dropped is a scan of the events.
        if id(conn) in _bulk_loading:
            _moved_in_bulk.setdefault(id(conn), _SharedChanges()).update(moved)
        else:
            _rerender_copies(db, moved, written=set(ids))
    return len(ids)


@dataclass
class _SharedChanges:
    """The places and sources (by id) a write changed, and when (its updated_at)."""

    places: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)
    at: str = ""

    def update(self, other: "_SharedChanges") -> None:
        self.places |= other.places
        self.sources |= other.sources
        self.at = max(self.at, other.at)


# Per connection inside a bulk_load, the places and sources its writes changed so far.
_moved_in_bulk: dict[int, _SharedChanges] = {}

_STORED_SHARED = (
    f"SELECT 'locations', {', '.join(_LOCATION_COLUMNS)} FROM locations WHERE id IN ({{}}) "
    f"UNION ALL SELECT 'sources', {', '.join(_SOURCE_COLUMNS)}, NULL, NULL FROM sources "
    "WHERE id IN ({})"
)


def _moved_shared_records(conn: sqlite3.Connection, rows: EventRows) -> _SharedChanges:
    """The stored places and sources that these rows describe with other values:
    writing the rows changes them for every event that copies them. One statement,
    before the rows are written."""
    stored = conn.execute(
        _STORED_SHARED.format(placeholders(rows.locations), placeholders(rows.sources)),
        [*rows.locations, *rows.sources],
    )
    moved = _SharedChanges(at=rows.events[0].updated_at)
    for table, record_id, *values in stored:
        if table == "locations":
            place = rows.locations[record_id]
            if [place[column] for column in _LOCATION_COLUMNS[1:]] != values:
                moved.places.add(record_id)
        else:
            source = rows.sources[record_id]
            if [source[column] for column in _SOURCE_COLUMNS[1:]] != values[:-2]:
                moved.sources.add(record_id)
    return moved


def loadable(document: str) -> dict[str, Any]:
    """A stored document as EventSchema loads it: without its output-only fields."""
    event = orjson.loads(document)
    for output_only in ("acled", "updated_at"):
        event.pop(output_only)
    return event


_SCHEMA = EventSchema()


class CopyInvalid(Exception):
    """An event copying a place or source that a write changes has a stored document
    that does not load as an event today (written under older rules): it cannot be
    re-rendered, so the write cannot keep its copy current."""

    def __init__(self, event_id: str, problems: list[tuple[str, str]]) -> None:
        super().__init__(event_id, problems)
        self.event_id, self.problems = event_id, problems

    def __str__(self) -> str:
        details = "; ".join(f"{field or '(event)'}: {message}" for field, message in self.problems)
        return (
            f"the event {self.event_id!r} copies a place or source this write changes, but "
            f"its stored document does not load as an event now ({details}): correct or "
            "delete it through the API, then write again"
        )


def _rerender_copies(
    db: sqlite_utils.Database, moved: _SharedChanges, written: Collection[str] = ()
) -> None:
    """Write again every event that copies a place or source of `moved` (but those
    just `written`, which copy them as they are now), with its place and source as
    stored now, as written at `moved.at`. Each event is loaded back from its stored
    document as a PATCH loads one (loadable, EventSchema.load), and rendered and
    written as every event is (event_rows, insert_rows), BATCH_SIZE at a time: its
    document, digests (its ETag), CSV line, full-text row and events row change, it
    takes the next change seq, and its rollup contributions move (outside a bulk
    load, which rebuilds them), in the caller's transaction. An event whose content
    this does not change (written earlier in the same load) is skipped."""
    conn = db.conn
    places, sources = (orjson.dumps(sorted(ids)).decode() for ids in (moved.places, moved.sources))
    copies = [
        event_id
        for (event_id,) in conn.execute(
            "SELECT id FROM events WHERE location_id IN (SELECT value FROM json_each(?)) "
            "UNION SELECT id FROM events WHERE source_id IN (SELECT value FROM json_each(?))",
            [places, sources],
        )
        if event_id not in written
    ]
    if not copies:
        return
    ids = orjson.dumps(copies).decode()
    # Both the place and the source of each copy as stored now: a copy of the other
    # one that had drifted (written before the copies were kept current) would
    # otherwise be written back over the stored one.
    now = {
        name: _stored_records(conn, table, columns, column, ids)
        for name, table, columns, column in (
            ("location", "locations", _LOCATION_COLUMNS, "location_id"),
            ("source", "sources", _SOURCE_COLUMNS, "source_id"),
        )
    }
    changed_at = datetime.datetime.strptime(moved.at, TIMESTAMP_FORMAT).replace(tzinfo=datetime.UTC)
    # The rollups lose every copy's contribution before and gain it back after, each
    # set-based, and fold only what did not cancel out: a copy's admin1 and country
    # move it, its place's name or point, or a source's title, do not (a bulk load
    # rebuilds the rollups at its end).
    keep_rollups = id(conn) not in _bulk_loading
    if keep_rollups:
        rollups.subtract(conn, ids)
    for start in range(0, len(copies), BATCH_SIZE):
        events = []
        for document in event_documents(conn, copies[start : start + BATCH_SIZE]).values():
            record = loadable(document)
            for name, stored in now.items():
                record[name] = stored[record[name]["id"]]
            try:
                events.append(_SCHEMA.load(record))
            except ValidationError as error:
                raise CopyInvalid(record["id"], flatten_messages(error.messages)) from None
        insert_rows(db, event_rows(events, changed_at), keep_rollups=False)
    if keep_rollups:
        rollups.add(conn, ids)
        rollups.cancel_out(conn)
        rollups.apply(conn)


def _stored_records(
    conn: sqlite3.Connection, table: str, columns: tuple[str, ...], column: str, ids: str
) -> dict[str, dict[str, Any]]:
    """The places or sources (`table`) that the events with these ids (a JSON array)
    name in `column`, as stored, by id."""
    return {
        row[0]: dict(zip(columns, row, strict=True))
        for row in conn.execute(
            f"SELECT {', '.join(columns)} FROM {table} WHERE id IN (SELECT {column} FROM "
            "events WHERE id IN (SELECT value FROM json_each(?)))",
            [ids],
        )
    }


class _StoredVersion(NamedTuple):
    content_digest: bytes
    first_seq: int


class _DeletedEvent(NamedTuple):
    row_id: int
    id: str
    body: str


def delete_events(
    db: sqlite_utils.Database, ids: Iterable[str], deleted_at: datetime.datetime
) -> int:
    """Replace events by tombstones that keep their last document and take the next
    change sequence numbers. Unknown ids are ignored. Returns how many were deleted;
    the caller owns the transaction."""
    conn = db.conn
    wanted = list(dict.fromkeys(ids))
    found = [
        _DeletedEvent(*row)
        for row in conn.execute(
            f"SELECT e.row_id, e.id, d.body FROM {EVENTS_WITH_DOCUMENTS} "
            f"WHERE e.id IN ({placeholders(wanted)}) ORDER BY e.id",
            wanted,
        )
    ]
    if not found:
        return 0
    seq = next_seq(conn)
    stamp = deleted_at.strftime(TIMESTAMP_FORMAT)
    conn.executemany(
        "INSERT OR REPLACE INTO event_tombstones (id, seq, deleted_at, body) VALUES (?, ?, ?, ?)",
        [(event.id, seq + i, stamp, event.body) for i, event in enumerate(found)],
    )
    row_ids = [event.row_id for event in found]
    event_ids = [event.id for event in found]
    rollups.subtract(conn, orjson.dumps(event_ids).decode())
    rollups.apply(conn)
    marks = placeholders(found)
    for table in ("event_actors", "munitions", "reporters"):
        conn.execute(f"DELETE FROM {table} WHERE event_id IN ({marks})", event_ids)
    conn.execute(f"DELETE FROM events_fts WHERE rowid IN ({marks})", row_ids)
    conn.execute(f"DELETE FROM event_documents WHERE row_id IN ({marks})", row_ids)
    conn.execute(f"DELETE FROM events WHERE row_id IN ({marks})", row_ids)
    return len(found)


def event_documents(conn: sqlite3.Connection, ids: Collection[str]) -> dict[str, str]:
    """The stored JSON documents of the events with these ids, by id (unknown ids
    are left out)."""
    return dict(
        conn.execute(
            f"SELECT e.id, d.body FROM {EVENTS_WITH_DOCUMENTS} WHERE e.id IN ({placeholders(ids)})",
            list(ids),
        )
    )


def taken_ids(conn: sqlite3.Connection, ids: Collection[str]) -> list[str]:
    """Those of these ids that an event has, or had before it was deleted: a new
    event may take neither, so that a mirror never confuses two events."""
    marks = placeholders(ids)
    return [
        event_id
        for (event_id,) in conn.execute(
            f"SELECT id FROM events WHERE id IN ({marks}) "
            f"UNION SELECT id FROM event_tombstones WHERE id IN ({marks})",
            [*ids, *ids],
        )
    ]


def unchanged_sources(conn: sqlite3.Connection, digests: Collection[bytes]) -> dict[bytes, str]:
    """Of these source-row digests, those whose event has had no write since the
    import that recorded them (neither an edit nor a deletion), with the event's id.
    Every write of an event takes a new seq, so an event still holding the recorded
    seq is the one that import left: the events_seq index alone answers, without
    reading an event (8 s less at 1M rows than a join on the id)."""
    return dict(
        conn.execute(
            "SELECT s.digest, s.event_id FROM import_sources s "
            f"WHERE s.digest IN ({placeholders(digests)}) "
            "AND EXISTS (SELECT 1 FROM events e WHERE e.seq = s.seq)",
            list(digests),
        )
    )


@contextmanager
def remembering_sources(
    conn: sqlite3.Connection,
) -> Iterator[Callable[[Iterable[tuple[bytes, str]]], None]]:
    """A function that records source rows, each (digest, event id), in import_sources
    when the block ends, with their events' seq then, in place of the rows recorded
    for those events before. They wait in a temporary table and go in in digest
    order: a million random keys inserted as they come cost 5.5 s more CPU (10 s
    against 4.5, measured on this machine). The rows of an event deleted through the
    API stay until an import gives that event again; they never match, as no event
    holds their seq."""
    conn.execute("CREATE TEMP TABLE import_sources_staged (digest BLOB, event_id TEXT)")

    def stage(sources: Iterable[tuple[bytes, str]]) -> None:
        conn.executemany("INSERT INTO temp.import_sources_staged VALUES (?, ?)", sources)

    try:
        yield stage
        conn.execute(
            "DELETE FROM import_sources "
            "WHERE event_id IN (SELECT event_id FROM temp.import_sources_staged)"
        )
        conn.execute(
            "INSERT OR REPLACE INTO import_sources SELECT s.digest, s.event_id, e.seq "
            "FROM temp.import_sources_staged s JOIN events e ON e.id = s.event_id "
            "ORDER BY s.digest"
        )
    finally:
        # IF EXISTS: a failed write (a full disk) may have rolled the transaction back.
        conn.execute("DROP TABLE IF EXISTS temp.import_sources_staged")


# Writes through the API: each is audited, and a POST's answer is kept for replay.


class Author(NamedTuple):
    """Who makes a change, as the audit log names them: an API key, with the request's
    id and client address; or a command run on the server (see command_author)."""

    key_id: str | None
    key_name: str | None
    request_id: str | None
    client_address: str | None


def command_author() -> Author:
    """A command run on the server (seed, import, keys, restore): no key and no
    address; its entries share one random run id in place of a request id."""
    return Author(None, None, f"run-{secrets.token_hex(12)}", None)


class AuditEntry(NamedTuple):
    """One audit_log row but for its author and time."""

    action: str
    event_id: str | None = None
    before: str | None = None
    after: str | None = None
    detail: dict[str, Any] | None = None


def append_audit(
    conn: sqlite3.Connection, author: Author, at: datetime.datetime, entries: list[AuditEntry]
) -> None:
    """Append one audit_log row per entry, in the caller's transaction."""
    stamp = _stamp(at)
    conn.executemany(
        "INSERT INTO audit_log (at, key_id, key_name, action, event_id, before, after, "
        "request_id, client_address, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                stamp,
                author.key_id,
                author.key_name,
                *entry[:4],
                author.request_id,
                author.client_address,
                None if entry.detail is None else orjson.dumps(entry.detail).decode(),
            )
            for entry in entries
        ],
    )


class NotTheOwner(Exception):
    """A write key tried to change an event that another key created, or a curated
    one (owner None)."""

    def __init__(self, event_id: str, owner: str | None) -> None:
        super().__init__(event_id)
        self.event_id, self.owner = event_id, owner


def check_owner(conn: sqlite3.Connection, event_id: str, key_id: str, admin: bool) -> None:
    """Raise NotTheOwner unless the key with this id may change the event: an admin
    key may change any, a write key only those it created."""
    if admin:
        return
    owner = event_owner(conn, event_id)
    if owner != key_id:
        raise NotTheOwner(event_id, owner)


def event_owner(conn: sqlite3.Connection, event_id: str) -> str | None:
    """The id of the API key that created the event, None for the curators' events
    (curated, imported, synthetic)."""
    row = conn.execute("SELECT key_id FROM event_owners WHERE event_id = ?", [event_id]).fetchone()
    return None if row is None else str(row[0])


# How long the answer to a POST sent with an Idempotency-Key is replayed: at least
# this long after it was given, a retry with the same key and body gets it again;
# after it, the key is new (docs/operations.md, "Idempotency keys"). A day, as
# Stripe keeps its keys: long enough for any client's retries.
IDEMPOTENCY_KEEP = datetime.timedelta(hours=24)
# Expired answers each POST deletes, oldest first: more than the one answer a POST
# may add, so that the table holds about a day of keyed POSTs, and a backlog (the
# answers kept forever before answers expired) drains as partners write.
IDEMPOTENCY_PURGE_BATCH = 10


class IdempotentRequest(NamedTuple):
    """A POST sent with an Idempotency-Key: the key, the content_digest of its
    parsed body, and the SHA-256 of its bytes as sent (`body_digest`), which answers
    kept before content digests matched (see _replayed_answer)."""

    key: str
    content_digest: bytes
    body_digest: bytes


def content_digest(body: Any) -> bytes:
    """The SHA-256 of a parsed JSON body written canonically (orjson, keys sorted at
    every depth, no whitespace): the same JSON with its keys in another order or
    other whitespace has the same digest, and any other content another."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).digest()


class Answer(NamedTuple):
    """The answer to a POST, kept whole so that a retry replays the very bytes."""

    status: int
    body: bytes


class IdsTaken(Exception):
    """A POST named ids that exist (or existed) already, or one id twice."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(", ".join(ids))
        self.ids = ids


class SharedRecordsDiffer(Exception):
    """A write describes a place or source that exists (or comes twice in the
    batch) with other values: places and sources are shared by id, so writing it
    would change every event that names it. `records` says the same for programs:
    per conflict, the record (`location`, `source`), its id, the fields that differ
    and what they differ from (`stored`, or `batch` for another event of the write)."""

    def __init__(self, differences: list[str], records: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(differences))
        self.differences = differences
        self.records = records


_SHARED = {
    "locations": (
        "name",
        "admin1",
        "country",
        "country_code",
        "latitude",
        "longitude",
        "precision",
    ),
    "sources": ("title", "publisher", "url", "published", "reference"),
}


def check_shared_records(conn: sqlite3.Connection, events: list[dict[str, Any]]) -> None:
    """Raise SharedRecordsDiffer if these validated events describe a stored place or
    source, or one another's, with other values than it has. Partners' writes call
    it; the curated seed, which owns its places and sources, may change them."""
    differences, records = [], []
    for table, columns in _SHARED.items():
        sent: dict[str, dict[str, Any]] = {}
        for event in events:
            record = _shared_record(event, table)
            first = sent.setdefault(record["id"], record)
            differing = [column for column in columns if first[column] != record[column]]
            if differing:
                differences.append(
                    f"{table[:-1]} {record['id']!r} comes twice with other {', '.join(differing)}"
                )
                records.append(_conflict(table, record["id"], differing, "batch"))
        stored = conn.execute(
            f"SELECT id, {', '.join(columns)} FROM {table} WHERE id IN ({placeholders(sent)})",
            list(sent),
        ).fetchall()
        for record_id, *values in stored:
            changed = [
                (column, value)
                for column, value in zip(columns, values, strict=True)
                if sent[record_id][column] != value
            ]
            if changed:
                as_stored = ", ".join(f"{column} {value!r}" for column, value in changed)
                differences.append(f"{table[:-1]} {record_id!r} is stored with {as_stored}")
                records.append(
                    _conflict(table, record_id, [column for column, _ in changed], "stored")
                )
    if differences:
        raise SharedRecordsDiffer(differences, records)


def _conflict(table: str, record_id: str, fields: list[str], against: str) -> dict[str, Any]:
    """One entry of SharedRecordsDiffer.records."""
    return {"record": table[:-1], "id": record_id, "fields": fields, "against": against}


def _shared_record(event: dict[str, Any], table: str) -> dict[str, Any]:
    """The event's place or source as its table stores it."""
    if table == "locations":
        return dict(event["location"])
    return {**event["source"], "published": event["source"]["published"].isoformat()}


class IdempotencyKeyReused(Exception):
    """An Idempotency-Key came back with another request body than its first."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def create_events(
    db: sqlite_utils.Database,
    events: list[dict[str, Any]],
    author: Author,
    at: datetime.datetime,
    request: IdempotentRequest | None = None,
) -> tuple[Answer, bool]:
    """Create validated events for a POST, all or none, and audit each; returns the
    answer (201 and the created documents as `{"data": [...]}`) and False. A request
    whose Idempotency-Key was seen less than IDEMPOTENCY_KEEP before `at` writes
    nothing: its first answer and True. Every call purges a few expired answers.

    Raises IdsTaken if an id exists, existed or comes twice (nothing is written),
    and IdempotencyKeyReused if the key came with another body. The caller owns the
    transaction."""
    conn = db.conn
    purge_idempotent_requests(conn, at)
    if request is not None:
        replayed = _replayed_answer(conn, author, request, at)
        if replayed is not None:
            return replayed, True
    ids = [event["id"] for event in events]
    twice = {event_id for event_id in ids if ids.count(event_id) > 1}
    taken = set(taken_ids(conn, ids)) | twice
    if taken:
        raise IdsTaken(sorted(taken))
    check_shared_records(conn, events)
    write_events(db, events, at)
    documents = event_documents(conn, ids)
    conn.executemany(
        "INSERT INTO event_owners (event_id, key_id) VALUES (?, ?)",
        [(event_id, author.key_id) for event_id in ids],
    )
    append_audit(conn, author, at, [AuditEntry("create", i, None, documents[i]) for i in ids])
    answer = Answer(201, b'{"data":[' + b",".join(documents[i].encode() for i in ids) + b"]}")
    if request is not None:
        conn.execute(
            "INSERT INTO idempotent_requests "
            "(key_id, idempotency_key, request_digest, status, body, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [author.key_id, request.key, request.content_digest, *answer, _stamp(at)],
        )
    return answer, False


def _replayed_answer(
    conn: sqlite3.Connection, author: Author, request: IdempotentRequest, at: datetime.datetime
) -> Answer | None:
    """The answer kept for this key, if it was given less than IDEMPOTENCY_KEEP ago;
    an expired one is deleted, so that the key is new. Raises IdempotencyKeyReused if
    the key came with another body."""
    row = conn.execute(
        "SELECT request_digest, status, body, created_at FROM idempotent_requests "
        "WHERE key_id = ? AND idempotency_key = ?",
        [author.key_id, request.key],
    ).fetchone()
    if row is None:
        return None
    digest, status, body, created_at = row
    if created_at < _stamp(at - IDEMPOTENCY_KEEP):
        conn.execute(
            "DELETE FROM idempotent_requests WHERE key_id = ? AND idempotency_key = ?",
            [author.key_id, request.key],
        )
        return None
    # Answers kept before digests were taken of the parsed body hold the SHA-256 of
    # the bytes sent: the same bytes are the same request. (A content digest never
    # equals the SHA-256 of other content's bytes, so this replays nothing else;
    # those answers expire IDEMPOTENCY_KEEP after the upgrade.)
    if digest not in (request.content_digest, request.body_digest):
        raise IdempotencyKeyReused(request.key)
    return Answer(status, body)


def purge_idempotent_requests(
    conn: sqlite3.Connection, at: datetime.datetime, limit: int = IDEMPOTENCY_PURGE_BATCH
) -> int:
    """Delete up to `limit` answers given more than IDEMPOTENCY_KEEP before `at`,
    oldest first (one walk of idempotent_requests_created from its start: a seek when
    none has expired); returns how many. In the caller's transaction."""
    return conn.execute(
        "DELETE FROM idempotent_requests WHERE rowid IN (SELECT rowid FROM "
        "idempotent_requests WHERE created_at < ? ORDER BY created_at LIMIT ?)",
        [_stamp(at - IDEMPOTENCY_KEEP), limit],
    ).rowcount


def update_event(
    db: sqlite_utils.Database,
    event: dict[str, Any],
    before: str,
    author: Author,
    at: datetime.datetime,
) -> str:
    """Replace a validated event whose stored document is `before`, and audit the
    change; returns its document now (`before` if nothing changed, which is neither
    written nor audited). Raises SharedRecordsDiffer if it would change a shared place
    or source. The caller owns the transaction."""
    check_shared_records(db.conn, [event])
    if not write_events(db, [event], at):
        return before
    after = event_documents(db.conn, [event["id"]])[event["id"]]
    append_audit(db.conn, author, at, [AuditEntry("update", event["id"], before, after)])
    return after


def delete_event(
    db: sqlite_utils.Database, event_id: str, before: str, author: Author, at: datetime.datetime
) -> None:
    """Delete an event whose stored document is `before` (see delete_events), and
    audit it. The caller owns the transaction."""
    delete_events(db, [event_id], at)
    # A deleted id is never created again through the API; only the curated seed may
    # bring it back (--restore), as a curated event.
    db.conn.execute("DELETE FROM event_owners WHERE event_id = ?", [event_id])
    append_audit(db.conn, author, at, [AuditEntry("delete", event_id, before, None)])


def _stamp(at: datetime.datetime) -> str:
    return at.strftime(TIMESTAMP_FORMAT)


# API keys: api/keys.py makes and checks them; these statements store them.


class StoredKey(NamedTuple):
    """An API key's row: never the key, only a salted hash of its secret."""

    id: str
    name: str
    scope: str
    salt: bytes
    hash: bytes


class KeyListing(NamedTuple):
    """What `python -m api keys list` shows of a key."""

    id: str
    name: str
    scope: str
    created_at: str
    revoked_at: str | None


def insert_key(
    db: sqlite_utils.Database, key: StoredKey, created_at: datetime.datetime, author: Author
) -> None:
    """Store a new, live key, and audit it (never its hash)."""
    with db.atomic():
        db.execute(
            "INSERT INTO api_keys (id, name, scope, salt, hash, created_at, revoked_at) "
            "VALUES (?, ?, ?, ?, ?, ?, NULL)",
            [*key, _stamp(created_at)],
        )
        detail = {"key_id": key.id, "name": key.name, "scope": key.scope}
        append_audit(db.conn, author, created_at, [AuditEntry("key-create", detail=detail)])


def live_key(conn: sqlite3.Connection, key_id: str) -> StoredKey | None:
    """The key with this id, unless there is none or it was revoked."""
    row = conn.execute(
        "SELECT id, name, scope, salt, hash FROM api_keys WHERE id = ? AND revoked_at IS NULL",
        [key_id],
    ).fetchone()
    return None if row is None else StoredKey(*row)


def mark_key_revoked(
    db: sqlite_utils.Database, key_id: str, revoked_at: datetime.datetime, author: Author
) -> bool:
    """Revoke a live key, and audit it; False if there is no live key with this id."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            [_stamp(revoked_at), key_id],
        )
        if cursor.rowcount != 1:
            return False
        entry = AuditEntry("key-revoke", detail={"key_id": key_id})
        append_audit(db.conn, author, revoked_at, [entry])
    return True


def key_listings(conn: sqlite3.Connection) -> list[KeyListing]:
    """Every key, revoked ones included, oldest first."""
    return [
        KeyListing(*row)
        for row in conn.execute(
            "SELECT id, name, scope, created_at, revoked_at FROM api_keys ORDER BY created_at"
        )
    ]


# Backups, restores and recovery (docs/operations.md): whole-file copies through
# SQLite's backup API, which copies a consistent snapshot page by page under the
# database's own locks, so that a serving database is never copied half-written.


# A staging file is named .salvo-<pid>-<random>.db after the process making it, so
# that a later backup or restore can tell one left by a killed process (gone) from
# one a concurrent run is still writing (alive).
_STAGING = re.compile(r"\.salvo-(\d+)-[a-z0-9_]+\.db(-wal|-shm|-journal)?")


@contextmanager
def private_files() -> Iterator[None]:
    """Within the block, the files and folders this process creates are readable by
    their owner only (0600, 0700), whatever the umask (a stricter one is kept): the
    database, its -wal and -shm (SQLite gives them the database's mode), its backups
    and an import's rejected rows hold key hashes, the audit log, unpublished events."""
    previous = os.umask(0o077)
    os.umask(previous | 0o077)
    try:
        yield
    finally:
        os.umask(previous)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (a service manager's stop, `kill`) raises
    KeyboardInterrupt in this process as Ctrl-C does, so that a command cleans up
    on its way out (rolls a load back, removes a staging file) instead of dying."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class DatabaseSummary(NamedTuple):
    """What a backup or restore copied: its events and the highest change seq."""

    events: int
    highest_seq: int


class NotRestorable(Exception):
    """A file given to restore is not a Salvo database of this version's layout."""


def back_up(source: str, target: str, *, replace: bool = False) -> DatabaseSummary:
    """Copy the database at source to a new file at target, in WAL mode like the
    original, while others read and write it: the copy is the database as of one
    moment (every transaction committed before the copy began, none half). The copy
    is made beside target and renamed into place, so target is never half-written.

    Raises MissingDatabase if there is no database at source, FileExistsError if
    target exists (unless `replace`), and ValueError if target is source."""
    if Path(target).exists():
        if Path(source).exists() and os.path.samefile(source, target):
            raise ValueError(f"{target} is the database itself")
        if not replace:
            raise FileExistsError(target)
    reader = _connect_read_only(source)
    # A first backup goes into a folder that may not exist yet (var/backups/ on a
    # fresh clone); it is made as private_files makes folders.
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with _staging(Path(target).parent) as staged:
        try:
            _copy(reader, staged, wal=True)
        finally:
            reader.close()
        summary = _summarise(staged)
        # A -wal or -shm left beside target by the file it replaces belongs to that
        # file: SQLite would apply that WAL's pages to the copy.
        for leftover in (f"{target}-wal", f"{target}-shm"):
            Path(leftover).unlink(missing_ok=True)
        os.replace(staged, target)
    return summary


def restore(source: str, target: str) -> DatabaseSummary:
    """Replace the content of the database at target (created if missing) by that
    of the Salvo database at source, in one write transaction through the backup
    API: servers may keep their connections, and read the restored content from
    their next statement on. The restored content starts a new change history, so
    that partners' change tokens from before the restore are refused.

    Raises NotRestorable, leaving target untouched, if source is not a database of
    this version's layout."""
    try:
        reader = _connect_read_only(source)
    except MissingDatabase as error:
        raise NotRestorable(str(error)) from error
    except sqlite3.DatabaseError as error:
        raise NotRestorable(f"{source} is not a SQLite database ({error})") from error
    try:
        missing, differing = layout_differences(reader)
        if differing:
            raise NotRestorable(
                f"{source} was made by another version of Salvo ({', '.join(differing)} differ)"
            )
        if missing:
            raise NotRestorable(
                f"{source} lacks {', '.join(missing)}; add them to a copy of it with "
                "`python -m api --db COPY init`, and restore the copy"
            )
    except BaseException:
        reader.close()
        raise
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with _staging(Path(target).parent) as staged:
        # The copy made here is the one checked and restored: source may change meanwhile.
        try:
            _copy(reader, staged, wal=False)
        finally:
            reader.close()
        stage = sqlite3.connect(staged)
        try:
            stage.execute(
                "UPDATE change_history SET id = ?, old_tokens_until = 0", [new_history_id()]
            )
            _carry_audit_over(stage, target, source)
            stage.commit()
            summary = _summarise(staged)
            live = sqlite3.connect(target, timeout=30)
            try:
                # A new file becomes a WAL database before the copy; an existing one is
                # one already (the backup API keeps the destination's journal mode).
                live.execute("PRAGMA journal_mode = WAL")
                stage.backup(live)
                # The restored pages are in the WAL; copy them into the file now
                # rather than at some later write's checkpoint.
                live.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                live.close()
        finally:
            stage.close()
    return summary


def _carry_audit_over(stage: sqlite3.Connection, target: str, source: str) -> None:
    """Make the audit log append-only across a restore: append to the restored copy
    the entries of the live database's log that the backup lacks, then a 'restore'
    entry naming the file. The backup's log is a prefix of the live one when it was
    taken from this database (its last entry is the live one of the same seq): then
    the later entries are carried over; otherwise the backup comes from elsewhere,
    and every live entry is, after the backup's own."""
    carried: list[tuple[Any, ...]] = []
    if Path(target).exists():
        live = _connect_read_only(target)
        try:
            if live.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit_log'").fetchone():
                columns = [row[1] for row in live.execute("PRAGMA table_info(audit_log)")]
                ours = [row[1] for row in stage.execute("PRAGMA table_info(audit_log)")]
                shared = [c for c in columns if c in ours and c != "seq"]
                last = stage.execute(
                    f"SELECT seq, {', '.join(shared)} FROM audit_log ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                same = (
                    last is not None
                    and last
                    == live.execute(
                        f"SELECT seq, {', '.join(shared)} FROM audit_log WHERE seq = ?", [last[0]]
                    ).fetchone()
                )
                carried = live.execute(
                    f"SELECT {', '.join(shared)} FROM audit_log WHERE seq > ? ORDER BY seq",
                    [last[0] if same else 0],
                ).fetchall()
                stage.executemany(
                    f"INSERT INTO audit_log ({', '.join(shared)}) VALUES ({placeholders(shared)})",
                    carried,
                )
        finally:
            live.close()
    detail = {"file": str(Path(source).resolve()), "entries_carried_over": len(carried)}
    append_audit(
        stage,
        command_author(),
        datetime.datetime.now(datetime.UTC),
        [AuditEntry("restore", detail=detail)],
    )


def _connect_read_only(path: str) -> sqlite3.Connection:
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
    except sqlite3.OperationalError as error:
        raise MissingDatabase(f"{path} cannot be opened: {error}") from error
    return conn


@contextmanager
def _staging(folder: Path) -> Iterator[Path]:
    """A new empty file in folder for the block to copy into: removed when the block
    ends, however it ends (unless the block moved it away). Staging files left in
    folder by processes that are gone (killed) are removed first."""
    for leftover in folder.iterdir():
        named = _STAGING.fullmatch(leftover.name)
        if named and not _running(int(named[1])):
            leftover.unlink(missing_ok=True)
    handle, name = tempfile.mkstemp(dir=folder, prefix=f".salvo-{os.getpid()}-", suffix=".db")
    staged = Path(name)
    try:
        os.close(handle)
        yield staged
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{staged}{suffix}").unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _copy(reader: sqlite3.Connection, staged: Path, *, wal: bool) -> None:
    """Copy reader's database into the empty file staged, in one step of the backup
    API: one read transaction, hence one consistent snapshot."""
    copy = sqlite3.connect(staged)
    try:
        if wal:
            copy.execute("PRAGMA journal_mode = WAL")
        reader.backup(copy)
    finally:
        # Closing the last connection checkpoints the WAL and deletes it.
        copy.close()


def _summarise(path: Path) -> DatabaseSummary:
    conn = sqlite3.connect(path)
    try:
        (events,) = conn.execute("SELECT count(*) FROM events").fetchone()
        return DatabaseSummary(events, next_seq(conn) - 1)
    finally:
        conn.close()


def recover(path: str) -> str | None:
    """Put a database left outside WAL mode back into it: a bulk load (python -m seed
    synthetic) writes through a rollback journal, and one killed mid-write leaves the
    file in that mode with a hot `-journal` beside it. Opening the file read-write
    rolls the interrupted write back (SQLite replays the journal); then the WAL is
    restored. Returns a sentence saying what was done, None if the file (or its
    absence) needed nothing."""
    file = Path(path)
    try:
        with file.open("rb") as opened:
            header = opened.read(20)
    except FileNotFoundError:
        return None
    # Bytes 18 and 19 of the header are 2 in WAL mode, 1 with a rollback journal.
    if not header.startswith(b"SQLite format 3\x00") or header[18] == 2:
        return None
    journal = Path(f"{path}-journal")
    interrupted = journal.exists() and journal.stat().st_size > 0
    conn = sqlite3.connect(path)
    try:
        # The first read takes the shared lock, and with it rolls a hot journal back.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    finally:
        conn.close()
    if mode != "wal":
        raise sqlite3.OperationalError(f"{path} stays in {mode} mode; is a bulk load running?")
    if interrupted:
        return "an interrupted write was rolled back; WAL mode restored"
    return "it was left with a rollback journal; WAL mode restored"
