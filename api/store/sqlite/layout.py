"""The SQLite layout: tables, indexes and their statistics, and the checks that a
file is laid out as this version lays it out."""

import functools
import secrets
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from api.store.sqlite import rollups

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
    """ANALYZE the tables whose statistics the query planner weighs (query.py): not
    event_documents, only ever read by row id, whose row count alone takes a scan of
    its every page (1,000,000 events: 1.65 of ANALYZE's 4.1 s)."""
    for (table,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'event_documents' "
        "AND name NOT LIKE 'sqlite_%' AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'"
    ).fetchall():
        db.execute(f'ANALYZE "{table}"')


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
