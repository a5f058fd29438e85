"""Schema versions on PostgreSQL: `migrate(conn)` creates a database's layout, or
upgrades it in place to this release's, with the contract of SQLite's migrations
(api/store/sqlite/migrations.py):

- Every database records its layout's version in the one-row table `schema_version`
  (layout.SCHEMA_VERSION), numbered by this store's own steps: version 1 laid out
  what SQLite's version 1 does, version 2 is PostgreSQL's alone (event_search keeps
  each event's date and id). Version 1 is the first the PostgreSQL store lays out:
  there is no PostgreSQL database from before versions, so a database holding
  Salvo's events table without a version was not made by this store, and is refused
  (ForeignLayout) rather than written into.
- An upgrade is one transaction (PostgreSQL's DDL is transactional, so a failure,
  or a lost connection, leaves the database as it was): the steps above the
  database's version in order, then what it lacks created (layout.create_layout,
  which creates only what is missing), the version recorded, and the layout checked:
  anything still missing rolls it all back. Concurrent migrations queue on an
  advisory lock, and writers wait on the change counter's row, which the migration
  holds as a writer does.
- A database of a newer version (a later release upgraded it) is refused before
  anything is written (NewerSchema); one at this version with nothing missing is
  left alone: no DDL, no lock beyond one read.

A step checks before it changes, as SQLite's do. Re-rendering stored documents
(SQLite's `rerender` steps) waits for the PostgreSQL store's writer.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from api.store import Unavailable
from api.store.postgresql.layout import (
    SCHEMA_VERSION,
    ForeignLayout,
    NewerSchema,
    NoPostGIS,
    create_layout,
    database_name,
    expected_objects,
    has_salvo_tables,
    missing_objects,
    present_objects,
    schema_version,
)

# The first schema version the PostgreSQL store lays out (SQLite's version 1 made the
# seq indexes unique, which this layout has from the start).
FIRST_VERSION = 1

# pg_advisory_xact_lock's key for migrations: "salvomig" as a big-endian bigint.
MIGRATION_LOCK = int.from_bytes(b"salvomig", "big")


@dataclass(frozen=True)
class Step:
    """What brings a database of version `version - 1` to `version`: `upgrade` runs in
    the migration's transaction and may return a sentence on what it found and did."""

    version: int
    summary: str
    upgrade: Callable[[psycopg.Connection[Any]], str | None]


def _search_dates(conn: psycopg.Connection[Any]) -> str | None:
    """Version 2: event_search keeps each event's date and id beside its words, so
    that a search's most recent matches are read from it alone (dialect._most_recent).
    The table is built anew from the old one and events, in row_id order, rather than
    altered: an UPDATE of every row would leave each one's old version behind (the
    table twice its size, until a VACUUM FULL, which cannot run in a transaction) and
    add every row to the GIN index again. Its GIN index is built once, after the copy."""
    columns = {
        name
        for (name,) in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass('event_search') "
            "AND attnum > 0 AND NOT attisdropped"
        )
    }
    if not columns:
        return None  # no such table: the completion creates it as this version lays out
    if {"date", "id"} <= columns:
        return "event_search already kept them"
    conn.execute("ALTER TABLE event_search RENAME TO event_search_before")
    conn.execute("ALTER INDEX event_search_pkey RENAME TO event_search_before_pkey")
    conn.execute("DROP INDEX IF EXISTS event_search_words")
    conn.execute(
        "CREATE TABLE event_search ("
        "row_id bigint PRIMARY KEY REFERENCES events (row_id), "
        'date text COLLATE "C" NOT NULL, id text COLLATE "C" NOT NULL, '
        "words tsvector NOT NULL)"
    )
    copied = conn.execute(
        "INSERT INTO event_search (row_id, date, id, words) "
        "SELECT s.row_id, e.date, e.id, s.words FROM event_search_before s "
        "JOIN events e ON e.row_id = s.row_id ORDER BY s.row_id"
    ).rowcount
    conn.execute("DROP TABLE event_search_before")
    conn.execute("CREATE INDEX event_search_words ON event_search USING gin (words)")
    # The planner's statistics of the new table (the lexemes' frequencies among them),
    # before the first search reads it.
    conn.execute("ANALYZE event_search")
    return f"{copied:,} events' words copied with their dates and ids"


# The steps since FIRST_VERSION, each a new layout.SCHEMA_VERSION.
STEPS: tuple[Step, ...] = (
    Step(
        2,
        "event_search keeps each event's date and id beside its words (a search's most "
        "recent matches, which /stats sums, are read from it alone); the table is rebuilt, "
        "and reads that search wait for it",
        _search_dates,
    ),
)


def newest_version(steps: Sequence[Step]) -> int:
    return steps[-1].version if steps else FIRST_VERSION


assert newest_version(STEPS) == SCHEMA_VERSION, "a new step goes with a new SCHEMA_VERSION"
assert [s.version for s in STEPS] == list(range(FIRST_VERSION + 1, SCHEMA_VERSION + 1))


class IncompleteLayout(Unavailable):
    """After a migration's steps and completion, objects of this layout are still
    missing (a step dropped one): the migration is rolled back."""

    def __init__(self, database: str, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(f"{database} still lacks {', '.join(missing)} after migrating")


@dataclass
class Migration:
    """What migrate did: the schema version before (None for a database with no Salvo
    table) and after, the steps it ran with what each said, the objects it created,
    and how long it took."""

    database: str
    before: int | None
    after: int
    applied: list[tuple[Step, str | None]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def upgraded(self) -> bool:
        return self.before is not None and self.before != self.after

    def described(self) -> str:
        """What the migration did, in the words of SQLite's Migration.described."""
        if not self.upgraded:
            if self.created and self.before is None:
                # A new database: its every object, which would be a list of 80 names.
                return (
                    f"{self.database} is at schema version {self.after}; created Salvo's "
                    f"layout ({len(self.created)} tables, indexes and triggers)"
                )
            if self.created:
                created = ", ".join(self.created)
                return f"{self.database} is at schema version {self.after}; created {created}"
            return f"{self.database} is at schema version {self.after}, this Salvo's; nothing to do"
        lines = [
            f"migrated {self.database} from schema version {self.before} to {self.after} "
            f"in {self.seconds:.1f} s:"
        ]
        for step, said in self.applied:
            lines.append(f"  {step.version}: {step.summary}" + (f"; {said}" if said else ""))
        if self.created:
            lines.append(f"  created {', '.join(self.created)}")
        return "\n".join(lines)


def migrate(conn: psycopg.Connection[Any], steps: Sequence[Step] = STEPS) -> Migration:
    """Create the database's layout, or upgrade it to the last of `steps` (this
    release's schema version), in one transaction of its own; see the module's
    docstring. Raises NewerSchema for a later release's database and ForeignLayout
    for Salvo's tables without a version, both before anything is written, NoPostGIS
    when the extension is missing and may not be created, IncompleteLayout if the
    layout is incomplete after all (nothing is then changed)."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise ValueError("migrate runs its own transaction: call it outside one")
    started = time.perf_counter()
    database, newest = database_name(conn), newest_version(steps)
    with conn.transaction():
        version = _refuse_early(conn, database, newest)
        current = version == newest and not missing_objects(conn)
    migration = Migration(database, version, newest)
    if current:
        return migration
    with conn.transaction():
        # No read budget: a step may rebuild an index of every event. SET LOCAL, as a
        # role's budget (transaction pooling: docs/operations.md) holds otherwise.
        conn.execute("SET LOCAL statement_timeout = 0")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK])
        # Again under the lock: another migration may have run meanwhile.
        version = migration.before = _refuse_early(conn, database, newest)
        _ensure_postgis(conn, database)
        if version is not None:
            # As a writer does (layout.lock_changes): writes wait for the upgrade.
            conn.execute("SELECT 1 FROM change_counter WHERE singleton = 1 FOR UPDATE")
        present = present_objects(conn)
        for step in steps:
            if version is not None and step.version > version:
                migration.applied.append((step, step.upgrade(conn)))
        create_layout(conn)
        migration.created = [name for name in expected_objects() if name not in present]
        conn.execute(
            "INSERT INTO schema_version (singleton, version) VALUES (1, %s) "
            "ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
            [newest],
        )
        missing = missing_objects(conn)
        if missing:
            raise IncompleteLayout(database, missing)
    migration.seconds = time.perf_counter() - started
    return migration


def _refuse_early(conn: psycopg.Connection[Any], database: str, newest: int) -> int | None:
    """The database's schema version, unless it is one this code must not write into:
    a later version's (NewerSchema), or Salvo's tables with no version (ForeignLayout)."""
    version = schema_version(conn)
    if version is not None and version > newest:
        raise NewerSchema(database, version)
    if version is None and has_salvo_tables(conn):
        raise ForeignLayout(database)
    return version


def _ensure_postgis(conn: psycopg.Connection[Any], database: str) -> None:
    """Create the PostGIS extension if the database lacks it, which takes a superuser
    (or the database's owner where PostGIS is trusted): otherwise NoPostGIS, saying so."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone():
        return
    try:
        with conn.transaction():  # a savepoint: the migration goes on, or says why not
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except psycopg.Error as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise NoPostGIS(database, reason) from error
