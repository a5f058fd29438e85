"""The SQLite layout: tables, indexes and their statistics, the schema version a file
records, and the checks that a file is laid out as this version lays it out. The steps
that bring a file of an earlier version to this one are in migrations.py."""

import functools
import secrets
import sqlite3
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from api.store import Unavailable
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

# The layout create_tables makes, as the one-row table schema_version records it: the
# version of the last step in migrations.STEPS. A file without the table is version 0,
# laid out by a release from before schema versions (3cbda1a and earlier).
SCHEMA_VERSION = 1


class OutdatedLayout(Unavailable):
    """The database's tables and indexes are not this version's: some are missing, or
    differ because another version of Salvo made them, or the file records another
    schema version (`advice` says which, and what to run)."""

    def __init__(
        self, path: str, missing: list[str], differing: list[str], advice: str | None = None
    ) -> None:
        self.missing, self.differing = missing, differing
        if advice is None and differing:
            advice = (
                f"was made by another version of Salvo ({', '.join(differing)} differ); "
                "seed a new file, or delete this one and seed again"
            )
        elif advice is None:
            advice = f"lacks {', '.join(missing)}; run `python -m api init` to add them"
        self.advice = advice
        super().__init__(f"{path} {advice}")
        # What a client is told (the file's path is the server's business).
        self.detail = f"The events database {advice}."


class OlderSchema(OutdatedLayout):
    """The file records a schema version older than this Salvo's: `python -m api
    migrate` upgrades it in place."""

    def __init__(self, path: str, version: int) -> None:
        self.version = version
        before = " (from before schema versions)" if version == 0 else ""
        super().__init__(
            path,
            [],
            [],
            f"is at schema version {version}{before}, older than this Salvo's "
            f"{SCHEMA_VERSION}: run `python -m api migrate` to upgrade it",
        )


class NewerSchema(OutdatedLayout):
    """The file records a schema version newer than this Salvo's: a later release
    upgraded it, and this one neither writes nor migrates it."""

    def __init__(self, path: str, version: int) -> None:
        self.version = version
        super().__init__(
            path,
            [],
            [],
            f"is at schema version {version}, newer than this Salvo's {SCHEMA_VERSION}: a "
            "later release upgraded it, and this one does not know that layout; run that "
            "release or a later one (a release never downgrades a file)",
        )


def schema_version(conn: sqlite3.Connection) -> int | None:
    """The schema version the database records: 0 for a file from before schema
    versions (it has Salvo's events table but no schema_version), None for a file
    with no Salvo table at all (a new one)."""
    try:
        row = conn.execute("SELECT version FROM schema_version WHERE singleton = 1").fetchone()
    except sqlite3.OperationalError as error:
        if "no such table: schema_version" not in str(error):
            raise
        row = None
    if row is not None:
        return int(row[0])
    (salvo,) = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'"
    ).fetchone()
    return 0 if salvo else None


class MissingDatabase(Unavailable):
    """There is no database file where one was expected; the API never creates one."""


def open_for_writing(path: str) -> sqlite_utils.Database:
    """Open the database at path for a seed or an operator's command, creating the
    file at this schema version, or upgrading it to this version (the steps of
    migrations.py; the seed says what it upgraded), and adding the tables and
    indexes it lacks. Raises OutdatedLayout rather than write into tables of another
    layout, NewerSchema for a file a later release upgraded."""
    from api.store.sqlite import migrations  # it builds on this module

    db, _ = migrations.open_migrated(path)
    return db


def init_database(path: str) -> list[str]:
    """Create the database at path, or add the tables and indexes a file of this
    schema version lacks (`python -m api init`). Returns the names of those created,
    none if the layout was complete. Raises OlderSchema for a file of an earlier
    version (upgrading is `python -m api migrate`'s), NewerSchema for a later one's,
    and OutdatedLayout for tables of another layout."""
    from api.store.sqlite import migrations  # it builds on this module

    db, migration = migrations.open_migrated(path, upgrade=False)
    db.close()
    return migration.created


def open_existing_for_writing(
    path: str, trace: Callable[[str], None] | None = None, *, verify_layout: bool = True
) -> sqlite_utils.Database:
    """A write connection to the existing database at path, whose layout is this
    version's (checked unless `verify_layout` is false: a store checks its file once,
    on its first write connection, not on every request). Opened with
    mode=rw, so that a missing file raises MissingDatabase instead of being created
    empty; a layout that is not current raises OutdatedLayout (OlderSchema or
    NewerSchema for a file that records another schema version). `trace`, if given,
    is sqlite3's trace callback from the first statement on (for tests)."""
    uri = Path(path).resolve().as_uri() + "?mode=rw"
    try:
        # Used by one thread, but SQLiteStore.close() closes it from whichever thread
        # ends the store (the read connections are opened the same way).
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    except sqlite3.OperationalError as error:
        raise MissingDatabase(f"{path} cannot be opened: {error}") from error
    conn.set_trace_callback(trace)
    db = sqlite_utils.Database(conn)
    try:
        if verify_layout:
            check_version(path, schema_version(conn))
            missing, differing = _compare_layout(conn)
            if missing or differing:
                raise OutdatedLayout(path, missing, differing)
        _configure(db)
    except BaseException:
        db.close()
        raise
    return db


def check_version(path: str, version: int | None, newest: int = SCHEMA_VERSION) -> None:
    """Raise OlderSchema or NewerSchema if the file at path records a schema version
    other than `newest` (a file with no Salvo table records none: nothing to say)."""
    if version is None or version == newest:
        return
    if version > newest:
        raise NewerSchema(path, version)
    raise OlderSchema(path, version)


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
    # An object an earlier version laid out, which migrations turn into this
    # version's keeping their rows, is as good as missing: migrate adds what it lacks.
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


# Objects as an earlier version created them, which migrations rebuild in this
# version's layout keeping their rows: audit_log before it recorded commands, key
# changes, request ids and client addresses; the seq indexes before schema version 1
# made them unique.
_EARLIER_LAYOUTS = {
    "audit_log": 'CREATE TABLE "audit_log" (\n   "seq" INTEGER PRIMARY KEY,\n'
    '   "at" TEXT NOT NULL,\n   "key_id" TEXT NOT NULL,\n   "key_name" TEXT NOT NULL,\n'
    '   "action" TEXT NOT NULL,\n   "event_id" TEXT NOT NULL,\n   "before" TEXT,\n'
    '   "after" TEXT\n)',
    "events_seq": "CREATE INDEX events_seq ON events (seq)",
    "event_tombstones_seq": "CREATE INDEX event_tombstones_seq ON event_tombstones (seq)",
}


def layout(conn: sqlite3.Connection) -> dict[str, str]:
    """The database's own tables, indexes and triggers (by name) with their SQL."""
    return dict(_layout(conn))


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
    _create_schema_version(db)
    rollups.create(db.conn)
    create_indexes(db)


def _create_schema_version(db: sqlite_utils.Database) -> None:
    """The one-row table recording the schema version of the layout (SCHEMA_VERSION for
    a file create_tables lays out whole; migrations.py records the version it upgraded
    to). A one-row table rather than SQLite's PRAGMA user_version: PostgreSQL has no
    such header field, and the store behind it records its version the same way."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        "singleton INTEGER PRIMARY KEY CHECK (singleton = 1), "
        "version INTEGER NOT NULL)"
    )
    conn = db.conn
    # Committed unless the caller had a transaction open, as in _create_change_history.
    outer = conn.in_transaction
    conn.execute(
        "INSERT OR IGNORE INTO schema_version (singleton, version) VALUES (1, ?)",
        [SCHEMA_VERSION],
    )
    if not outer:
        conn.commit()


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


def renew_history(conn: sqlite3.Connection) -> str:
    """Give the database a new change history, in the caller's transaction: a new id,
    and tokens without an id trusted up to no seq (old_tokens_until 0), since the
    content may not be the one that issued them (a restore). The new id."""
    history = new_history_id()
    conn.execute("UPDATE change_history SET id = ?, old_tokens_until = 0", [history])
    return history


# Every filter and sort has an index ending in the keyset tie-breaker `id`, so a
# page is one ordered index walk that stops after `limit` rows. The seq indexes are
# UNIQUE (UNIQUE_INDEXES): the single writer's contract, see next_seq.
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


UNIQUE_INDEXES = frozenset({"events_seq", "event_tombstones_seq"})


def create_indexes(db: sqlite_utils.Database) -> None:
    """Create the secondary indexes that do not exist yet."""
    for name, definition in INDEXES.items():
        unique = "UNIQUE " if name in UNIQUE_INDEXES else ""
        db.execute(f"CREATE {unique}INDEX IF NOT EXISTS {name} ON {definition}")


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
    """The next number of the change sequence shared by events and tombstones.

    The single writer's contract (docs/design.md, "The single writer"; checked by
    tests/test_single_writer.py), which every store keeps, whatever its engine:

    - One writer at a time. Every write runs in one transaction taken with BEGIN
      IMMEDIATE (immediate_transaction), so writers queue on the database's write
      lock; a writer calls next_seq inside its transaction, once it holds the lock.
    - seq = the highest seq taken + 1, over events and tombstones together, and
      each change in the transaction takes the next number (insert_rows,
      delete_events). Values are unique: the UNIQUE indexes events_seq and
      event_tombstones_seq refuse a repeat within a table, and the highest over
      both keeps the two apart.
    - Values are committed in seq order: a transaction's numbers are all above
      every committed one, and the next writer starts only after it committed (or
      rolled back, freeing its numbers, which are then taken again: no gap).

    So a reader never sees seq n+1 before every change numbered up to n is visible,
    and a mirror that keeps the highest seq it has applied and asks for the changes
    after it (/changes) never misses one. An engine with concurrent writers must
    honour the same: take the number from a counter at the start of the transaction
    and hold it (a row lock on the counter) until the commit, so that writers commit
    in the order of their numbers; a plain sequence, handed out without waiting,
    lets a later number commit first and a mirror skip the earlier one."""
    (last,) = conn.execute(f"SELECT {HIGHEST_SEQ}").fetchone()
    return last + 1
