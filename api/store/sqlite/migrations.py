"""Schema versions: the steps that upgrade a database written by an earlier release
of Salvo in place (`python -m api migrate`; the seed runs them too).

Every database records the version of its layout in the one-row table
`schema_version` (layout.SCHEMA_VERSION for a file laid out now; a file without the
table is version 0, from a release before versions). STEPS lists, for each version
since, what brings a file of the version before to it. An upgrade is one BEGIN
IMMEDIATE transaction: a failure, or Ctrl-C, leaves the file as it was, and servers
keep reading it meanwhile (writers wait, then get a 503 to retry).

1. Every step above the file's version, in order. A step checks before it changes:
   it may meet an object a file lacked and the completion below made already at its
   newest definition, and it skips a table the file lacks (the completion makes it).
2. The completion, as `python -m api init` always did: the objects an earlier
   release laid out otherwise (layout._EARLIER_LAYOUTS) are rebuilt keeping their
   rows, the tables and indexes the file lacks are created as this version defines
   them, and what they hold is filled from what the file records.
3. The version is recorded; if a step says the documents render otherwise now, every
   event is rendered again from its stored document and those whose content changed
   are written as any write is: a new seq (so /changes carries them after every
   token issued before) and a new digest (their ETag).
4. The layout is compared with this version's: any difference rolls it all back.

The change history, events, tombstones, keys, audit log, idempotency records and
everything else keep their rows: a mirror's token from before stays good.

Why not Alembic or sqlite-utils' migrations: docs/design.md, "Schema versions".
"""

import datetime
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson
import sqlite_utils
from marshmallow import ValidationError

from api.store import loadable
from api.store.sqlite import rollups
from api.store.sqlite.layout import (
    _EARLIER_LAYOUTS,
    EVENTS_WITH_DOCUMENTS,
    INDEXES,
    SCHEMA_VERSION,
    UNIQUE_INDEXES,
    NewerSchema,
    OutdatedLayout,
    _compare_layout,
    _configure,
    check_version,
    create_tables,
    immediate_transaction,
    layout,
    next_seq,
    schema_version,
)
from api.store.sqlite.writes import (
    BATCH_SIZE,
    LOCATION_COLUMNS,
    SOURCE_COLUMNS,
    _stored_records,
    event_rows,
    insert_rows,
)
from schemas.event import EventSchema


@dataclass(frozen=True)
class Step:
    """What brings a file of version `version - 1` to `version`: `upgrade` runs in the
    migration's transaction and may return a sentence on what it found and did; a
    step whose release renders stored documents otherwise sets `rerender`."""

    version: int
    summary: str
    upgrade: Callable[[sqlite_utils.Database], str | None]
    rerender: bool = False


def _unique_seqs(db: sqlite_utils.Database) -> str | None:
    """Make events.seq and event_tombstones.seq UNIQUE indexes (the single writer's
    contract, layout.next_seq). A seq held by more than one change (never written
    by Salvo's single writer; a copy edited by hand could hold one) is kept by the
    first and the others take new numbers, above every other: a mirror then fetches
    them again rather than skip one at a page boundary."""
    conn = db.conn
    tables = [
        table
        for (table,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name IN ('events', 'event_tombstones')"
        )
    ]
    renumbered = 0
    if len(tables) == 2:
        shared = [
            seq
            for (seq,) in conn.execute(
                "SELECT seq FROM events GROUP BY seq HAVING count(*) > 1 "
                "UNION SELECT seq FROM event_tombstones GROUP BY seq HAVING count(*) > 1 "
                "UNION SELECT t.seq FROM event_tombstones t JOIN events e ON e.seq = t.seq "
                "ORDER BY 1"
            )
        ]
        for seq in shared:
            holders = [
                *(("events", row_id) for (row_id,) in conn.execute(
                    "SELECT row_id FROM events WHERE seq = ? ORDER BY row_id", [seq])),
                *(("event_tombstones", key) for (key,) in conn.execute(
                    "SELECT id FROM event_tombstones WHERE seq = ? ORDER BY id", [seq])),
            ]  # fmt: skip
            for table, key in holders[1:]:
                renumbered += 1
                _renumber(db, table, key, seq, next_seq(conn))
    (analyzed,) = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
    ).fetchone()
    for name in sorted(UNIQUE_INDEXES):
        table = INDEXES[name].split(" ", 1)[0]
        if table in tables:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
            conn.execute(f"CREATE UNIQUE INDEX {name} ON {INDEXES[name]}")
            # Dropping the index dropped its statistics: one walk of it (not of its table).
            if analyzed:
                conn.execute(f"ANALYZE {name}")
    if not renumbered:
        return None
    changes = "1 change" if renumbered == 1 else f"{renumbered} changes"
    return f"{changes} that shared a seq with another took new ones (mirrors fetch them again)"


def _renumber(db: sqlite_utils.Database, table: str, key: object, old: int, new: int) -> None:
    """Give one change (an event by row_id, a tombstone by id) the seq `new`."""
    conn = db.conn
    if table == "events":
        (event_id,) = conn.execute("SELECT id FROM events WHERE row_id = ?", [key]).fetchone()
        # An event created at that seq stays "created" in /changes.
        conn.execute(
            "UPDATE events SET seq = ?, first_seq = CASE WHEN first_seq = seq THEN ? "
            "ELSE first_seq END WHERE row_id = ?",
            [new, new, key],
        )
    else:
        event_id = key
        conn.execute("UPDATE event_tombstones SET seq = ? WHERE id = ?", [new, key])
    # What an import remembered of the event still matches it (writes.unchanged_sources).
    conn.execute(
        "UPDATE import_sources SET seq = ? WHERE event_id = ? AND seq = ?", [new, event_id, old]
    )


STEPS: tuple[Step, ...] = (
    Step(
        1,
        "events.seq and event_tombstones.seq became unique indexes (the single writer's "
        "contract), and the schema version is recorded (the table schema_version)",
        _unique_seqs,
    ),
)
assert STEPS[-1].version == SCHEMA_VERSION, "a new step goes with a new layout.SCHEMA_VERSION"
assert [step.version for step in STEPS] == list(range(1, len(STEPS) + 1))


@dataclass
class Migration:
    """What open_migrated did to a file: its schema version before (None for a file
    that had no Salvo table) and after, the steps it ran with what each said, the
    objects it created, the events it rendered again, and how long it took."""

    path: str
    before: int | None
    after: int
    applied: list[tuple[Step, str | None]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    rerendered: int = 0
    # Events whose stored document no longer loads as an event (written under older
    # rules): left as they were, to correct or delete through the API.
    unrenderable: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def upgraded(self) -> bool:
        return self.before is not None and self.before != self.after

    def described(self) -> str:
        """What the migration did, as `python -m api migrate` and the seed say it: the
        versions, each step with what it found, what was created and re-rendered."""
        if not self.upgraded:
            if self.created:
                created = ", ".join(self.created)
                return f"{self.path} is at schema version {self.after}; created {created}"
            return f"{self.path} is at schema version {self.after}, this Salvo's; nothing to do"
        lines = [
            f"migrated {self.path} from schema version {self.before} to {self.after} "
            f"in {self.seconds:.1f} s:"
        ]
        for step, said in self.applied:
            lines.append(f"  {step.version}: {step.summary}" + (f"; {said}" if said else ""))
        if self.created:
            lines.append(f"  created {', '.join(self.created)}")
        if any(step.rerender for step, _ in self.applied):
            lines.append(
                f"  {_events(self.rerendered)} rendered anew (new ETags; /changes lists them "
                "after every token issued before)"
            )
        if self.unrenderable:
            shown = ", ".join(self.unrenderable[:10])
            more = " ..." if len(self.unrenderable) > 10 else ""
            lines.append(
                f"  {_events(len(self.unrenderable))} left as they were, as their stored "
                f"documents no longer load (correct or delete them through the API): "
                f"{shown}{more}"
            )
        return "\n".join(lines)


def _events(count: int) -> str:
    return "1 event" if count == 1 else f"{count:,} events"


def open_migrated(
    path: str, steps: Sequence[Step] = STEPS, *, upgrade: bool = True
) -> tuple[sqlite_utils.Database, "Migration"]:
    """Open the database at path for writing (creating the file if there is none),
    upgraded to the last of `steps`, with the objects it lacks created. Returns the
    connection and what was done. With `upgrade` false (`python -m api init`), a file
    of an earlier version raises OlderSchema instead. Raises NewerSchema for a file of
    a later version and OutdatedLayout for tables of another layout, in both cases
    before anything is written."""
    started = time.perf_counter()
    db = sqlite_utils.Database(path)
    try:
        migration = _migrate(db, path, steps, upgrade)
    except BaseException:
        db.close()
        raise
    migration.seconds = time.perf_counter() - started
    return db, migration


def _migrate(
    db: sqlite_utils.Database, path: str, steps: Sequence[Step], upgrade: bool
) -> Migration:
    conn = db.conn
    newest = steps[-1].version
    version = _refuse_early(conn, path, newest, upgrade)
    migration = Migration(path, version, newest)
    if version == newest:
        missing, differing = _compare_layout(conn)
        if differing:
            raise OutdatedLayout(path, missing, differing)
        if not missing:
            # A current file is only opened (and its rollups checked): no DDL, no lock.
            _configure(db)
            if rollups.lacks_all_categories(conn):
                with immediate_transaction(db):
                    rollups.rebuild(conn)
            return migration
    _configure(db)
    with immediate_transaction(db):
        # Again under the write lock: another process may have upgraded it meanwhile.
        version = migration.before = _refuse_early(conn, path, newest, upgrade)
        present = layout(conn)
        for step in steps:
            if version is not None and step.version > version:
                migration.applied.append((step, step.upgrade(db)))
        _complete(db)
        created = layout(conn)
        migration.created = [name for name in created if name not in present]
        conn.execute(
            "INSERT OR REPLACE INTO schema_version (singleton, version) VALUES (1, ?)",
            [newest],
        )
        rebuild = bool(set(migration.created) & set(rollups.TABLES))
        if any(step.rerender for step, _ in migration.applied):
            migration.rerendered, migration.unrenderable = rerender_documents(db)
            rebuild = rebuild or migration.rerendered > 0
        if rebuild or rollups.lacks_all_categories(conn):
            rollups.rebuild(conn)
        missing, differing = _compare_layout(conn)
        if missing or differing:
            raise OutdatedLayout(path, missing, differing)
    return migration


def _refuse_early(conn: sqlite3.Connection, path: str, newest: int, upgrade: bool) -> int | None:
    """The file's schema version, unless it is one this code must not write into: a
    later version (NewerSchema), an earlier one when not upgrading (OlderSchema), or a
    file from before versions whose tables differ from what any release made (the
    earlier layouts that _complete knows are not counted)."""
    version = schema_version(conn)
    if version is not None and version > newest:
        raise NewerSchema(path, version)
    if not upgrade:
        check_version(path, version, newest)
    if version == 0:
        missing, differing = _compare_layout(conn)
        if differing:
            raise OutdatedLayout(path, missing, differing)
    return version


def _complete(db: sqlite_utils.Database) -> None:
    """Rebuild the objects an earlier release laid out otherwise, keeping their rows,
    create the tables and indexes the file lacks, and fill the tables added since from
    what the file already records. In the caller's transaction."""
    conn = db.conn
    present = layout(conn)
    earlier = {name for name, sql in present.items() if _EARLIER_LAYOUTS.get(name) == sql}
    if "audit_log" in earlier:
        # DROP TABLE fires no trigger: the append-only rule holds for the rows, which
        # move whole into the new table, seq included.
        for verb in ("update", "delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS audit_log_no_{verb}")
        conn.execute("ALTER TABLE audit_log RENAME TO audit_log_earlier")
        create_tables(db)
        columns = "seq, at, key_id, key_name, action, event_id, before, after"
        conn.execute(
            f"INSERT INTO audit_log ({columns}) "
            f"SELECT {columns} FROM audit_log_earlier ORDER BY seq"
        )
        conn.execute("DROP TABLE audit_log_earlier")
    if earlier & UNIQUE_INDEXES:
        _unique_seqs(db)
    if "event_owners" not in present:
        create_tables(db)
        # Events created through the API before owners were recorded: their creator
        # is in the audit log.
        conn.execute(
            "INSERT OR IGNORE INTO event_owners (event_id, key_id) "
            "SELECT event_id, key_id FROM audit_log "
            "WHERE action = 'create' AND key_id IS NOT NULL "
            "AND event_id IN (SELECT id FROM events) ORDER BY seq"
        )
    create_tables(db)


_SCHEMA = EventSchema()


def rerender_documents(
    db: sqlite_utils.Database, changed_at: datetime.datetime | None = None
) -> tuple[int, list[str]]:
    """Render every event again from its stored document, with its place and source as
    stored now, as writes._rerender_copies does for the copies of a changed place: each
    is loaded as a PATCH loads one (writes.loadable, EventSchema.load) and written by
    insert_rows, which skips an event whose content is unchanged and gives each other
    one the next seq, a new digest (its ETag), CSV line and full-text row, as written at
    changed_at (default now). BATCH_SIZE events at a time, in row order; the rollups
    are left to the caller (rebuild them if any event was written). Returns how many
    were written, and the ids of those whose stored document no longer loads as an
    event: they are left as they were, since a migration cannot ask anyone to fix them
    first (the API refuses writes until the file is upgraded)."""
    conn = db.conn
    changed_at = changed_at or datetime.datetime.now(datetime.UTC)
    written, unrenderable, after = 0, [], 0
    while batch := conn.execute(
        f"SELECT e.row_id, e.id, d.body FROM {EVENTS_WITH_DOCUMENTS} WHERE e.row_id > ? "
        "ORDER BY e.row_id LIMIT ?",
        [after, BATCH_SIZE],
    ).fetchall():
        after = batch[-1][0]
        ids = orjson.dumps([event_id for _, event_id, _ in batch]).decode()
        stored = {
            name: _stored_records(conn, table, columns, column, ids)
            for name, table, columns, column in (
                ("location", "locations", LOCATION_COLUMNS, "location_id"),
                ("source", "sources", SOURCE_COLUMNS, "source_id"),
            )
        }
        events = []
        for _, event_id, body in batch:
            record = loadable(body)
            for name, records in stored.items():
                record[name] = records[record[name]["id"]]
            try:
                events.append(_SCHEMA.load(record))
            except ValidationError:
                unrenderable.append(event_id)
        written += insert_rows(db, event_rows(events, changed_at), keep_rollups=False)
    return written, unrenderable
