"""A bulk load on PostgreSQL (the synthetic seed, PostgresStore.bulk_load): rows
COPY'd into temporary staging tables, then merged into events, event_documents, the
child tables, the shared places, sources and actors, the search rows and the rollups
by a few set-based statements per slice of events, each slice a write
transaction of its own (writes.write_transaction, which holds the change counter:
seqs stay unique and become visible in commit order).

What it writes is what SQLite's insert_rows writes for the same rows (the rows come
from the same event_rows): an event whose content is unchanged is skipped, every
other one takes the next seq in the order it was given, keeps its first_seq, loses
its tombstone and its previous child rows; a place or source the load changes is
changed for every other event that copies it (writes.rerender_copies).

Why slices, not one transaction as on SQLite: a reader's index scan visits every row
an uncommitted merge has inserted and finds it invisible, so a page whose sort puts
the load's rows first costs a heap visit per uncommitted row (measured: 300,000
uncommitted rows made the first page of /events take 0.6 s; 1,000,000 took reads past
their 1 s budget). A slice bounds that to its own rows. The price: a load that
fails midway leaves whole slices written (each consistent, seqs in order), and is
finished by running it again. Staging holds no lock at all, so partners' writes wait
only for the slice being merged. Nothing here takes more than row locks on the shared
tables (no DROP INDEX, no ALTER, no TRUNCATE, no LOCK TABLE); the indexes are
maintained row by row rather than rebuilt, which is the price of that.
"""

import time
from collections.abc import Callable, Collection, Iterable
from typing import Any

import psycopg

from api.store import BulkCounts, BulkWrites
from api.store.postgresql import rollups
from api.store.postgresql.dialect import search_document
from api.store.postgresql.layout import TEXT
from api.store.postgresql.writes import (
    Changes,
    fold_rollups,
    rerender_copies,
    write_transaction,
)
from api.store.sqlite.rollups import CHANGES, ROLLUPS
from api.store.sqlite.writes import (
    LOCATION_COLUMNS,
    SOURCE_COLUMNS,
    EventRow,
    EventRows,
    SharedChanges,
)

# How long a slice should hold the change counter: a partner's write waits for it
# at most WRITE_LOCK_WAIT_MS (5 s) before it is called busy. Each slice is sized from
# how long the one before took (a loaded machine merges several times slower), between
# bounds: enough events that each slice's fixed costs (the rollups it folds: a key
# of a month or a region is upserted once per slice) stay small, and few enough that
# a reader's index scan skips few uncommitted rows (300,000 of them cost a first page
# 0.6 s here; the largest slice, about 0.1 s). Measured with `python -m seed
# synthetic --events 50000` into a throwaway server with the curated events, on a
# quiet machine: one merge 20.7 s, slices of about 1 s 40.1 s, of about 2 s 31.8 s.
SLICE_SECONDS = 2.0
SLICE_EVENTS = (500, 2000, 50_000)  # the fewest, the first, the most
_INT, _FLOAT, _BYTES = "bigint", "double precision", "bytea"
# Each staged row carries `ord`, the order it was given in: seqs follow it, and of
# two rows of one event the later wins (as the later insert_rows would).
_EVENT_TYPES = {
    "latitude": _FLOAT,
    "longitude": _FLOAT,
    "weapons": _INT,
    **{
        f"{kind}_{bound}": _INT
        for kind in ("killed", "injured")
        for bound in ("best", "low", "high")
    },
}
_DOCUMENT_COLUMNS = ("body", "digest", "content_digest", "csv", "words")
_STAGED: dict[str, tuple[tuple[str, str], ...]] = {
    "bulk_events": (
        ("ord", _INT),
        *((column, _EVENT_TYPES.get(column, TEXT)) for column in EventRow._fields),
        ("body", TEXT),
        ("digest", _BYTES),
        ("content_digest", _BYTES),
        ("csv", TEXT),
        ("words", "text"),
    ),
    "bulk_locations": (
        ("ord", _INT),
        *((c, _FLOAT if c in ("latitude", "longitude") else TEXT) for c in LOCATION_COLUMNS),
    ),
    "bulk_sources": (("ord", _INT), *((c, TEXT) for c in SOURCE_COLUMNS)),
    "bulk_actors": (("ord", _INT), ("name", TEXT), ("kind", TEXT)),
    "bulk_event_actors": (
        ("ord", _INT),
        ("event_id", TEXT),
        ("position", _INT),
        ("actor_name", TEXT),
        ("role", TEXT),
    ),
    "bulk_munitions": (
        ("ord", _INT),
        ("event_id", TEXT),
        ("position", _INT),
        ("category", TEXT),
        ("model", TEXT),
        ("launched", _INT),
        ("intercepted", _INT),
        ("not_reached", _INT),
        ("hit", _INT),
        ("reported_by", TEXT),
    ),
    "bulk_reporters": (
        ("ord", _INT),
        ("event_id", TEXT),
        ("position", _INT),
        ("name", TEXT),
        ("kind", TEXT),
        ("title", TEXT),
    ),
}

# A CSV import's source rows, (digest, event id), recorded once the load is in.
_SOURCES_READ = ("bulk_import_sources", (("digest", _BYTES), ("event_id", TEXT)))


class PostgresBulk(BulkWrites):
    """The rows of a bulk load, staged by `add` (COPY, each batch committed on its
    own: the staging tables are this session's, and no lock is held) and merged by
    `finish` in slices of about SLICE_SECONDS each, each a write transaction of its
    own (writes.write_transaction). `conn` is in autocommit mode (the pool's)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.given = 0
        self.updated_at = ""
        for table, columns in (*_STAGED.items(), _SOURCES_READ):
            # Temporary: this session's alone, and creating one locks nothing a
            # reader needs. Dropped by close(), or with the session.
            definition = ", ".join(f"{name} {kind}" for name, kind in columns)
            conn.execute(f"CREATE TEMP TABLE {table} ({definition})")
        self.sources_read = 0

    def add(self, rows: EventRows) -> None:
        if not rows.events:
            return
        first = self.given
        self.given += len(rows.events)
        self.updated_at = max(self.updated_at, rows.events[0].updated_at)
        ords = {row.id: first + offset for offset, row in enumerate(rows.events)}
        staged: dict[str, Any] = {
            "bulk_events": (
                (
                    ords[row.id],
                    *row,
                    doc.body,
                    doc.digest,
                    doc.content_digest,
                    doc.csv,
                    search_document(doc.notes, doc.place),
                )
                for row, doc in zip(rows.events, rows.documents, strict=True)
            ),
            "bulk_locations": (
                (first, *(place[c] for c in LOCATION_COLUMNS)) for place in rows.locations.values()
            ),
            "bulk_sources": (
                (first, *(source[c] for c in SOURCE_COLUMNS)) for source in rows.sources.values()
            ),
            "bulk_actors": ((first, name, kind) for name, kind in rows.actors.items()),
            "bulk_event_actors": ((ords[r[0]], *r) for r in rows.event_actors),
            "bulk_munitions": ((ords[r[0]], *r) for r in rows.munitions),
            "bulk_reporters": ((ords[r[0]], *r) for r in rows.reporters),
        }
        for table, values in staged.items():
            names = ", ".join(name for name, _ in _STAGED[table])
            with self.conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)

    def unchanged_sources(self, digests: Collection[bytes]) -> dict[bytes, str]:
        """As SQLite's: an event still holding the seq recorded with a digest has had
        no write since (every write takes a new seq). Read outside the slices, as the
        rows are mapped: an event a partner writes after this is written again by the
        import only if its row changed, as if the partner had written after it."""
        found = self.conn.execute(
            "SELECT s.digest, s.event_id FROM import_sources s JOIN events e ON e.seq = s.seq "
            "WHERE s.digest = ANY(%s)",
            [list(digests)],
        )
        return {bytes(digest): event_id for digest, event_id in found}

    def remember_sources(self, sources: Iterable[tuple[bytes, str]]) -> None:
        table, columns = _SOURCES_READ
        names = ", ".join(name for name, _ in columns)
        with self.conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for source in sources:
                copy.write_row(source)
                self.sources_read += 1

    def finish(self, audit: Callable[[BulkCounts], None]) -> BulkCounts:
        """Merge what was staged, slice by slice in the order given, calling
        `audit` with what was written in the last slice's transaction (Store.bulk_load,
        when its block ends); what was written.

        Each event is merged in the slice of its last staged version (the later of
        two rows of one event wins, as the later insert_rows would), so the slices
        together write what one merge of everything would. The places, sources and
        actors the load describes are merged in the first slice, since its events
        refer to them; the events of the first slice are numbered before the other
        events that copy a place or source the load changed (rerender_copies). A
        slice commits before the next starts: readers' index scans skip at most one
        slice's uncommitted rows, and partners' writes wait at most one slice for
        the change counter."""
        conn = self.conn
        # The last staged version of each event, found by id; a slice's rows, by
        # ord: without these each slice would scan every staged row of each table,
        # and a load of N events would cost N x N / slice.
        conn.execute("CREATE INDEX ON bulk_events (id, ord)")
        for table in ("bulk_events", *(f"bulk_{child}" for child in _CHILDREN)):
            conn.execute(f"CREATE INDEX ON {table} (ord)")
        for table in _STAGED:
            conn.execute(f"ANALYZE {table}")
        fewest, size, most = SLICE_EVENTS
        new = written = taken = start = 0
        first = True
        while first or start < self.given:
            last = start + size >= self.given
            began = time.monotonic()
            with write_transaction(conn) as changes:
                if first:
                    _merge_shared(conn)
                    moved = _moved(conn, self.updated_at)
                    _upsert_shared(conn)
                created, changed = self._merge_slice(changes, start, start + size)
                new, written = new + created, written + changed
                if first and (moved.places or moved.sources):
                    loaded = conn.execute("SELECT DISTINCT id FROM bulk_events").fetchall()
                    rerender_copies(conn, changes, moved, {event_id for (event_id,) in loaded})
                taken += changes.taken
                if last:
                    audit(BulkCounts(new, written - new, taken - written))
                    highest = changes.highest
            took = max(time.monotonic() - began, 0.001)
            start, first = start + size, False
            size = max(fewest, min(most, int(size * min(2.0, SLICE_SECONDS / took))))
        if self.sources_read:
            self._remember(highest)
        if written:
            # The planner's statistics for what the load wrote (as the SQLite seed
            # gathers them), so that the first reads after a large load plan for the
            # tables as they are. ANALYZE and VACUUM take SHARE UPDATE EXCLUSIVE, which
            # readers and writers do not wait on.
            for table in _ANALYZED:
                conn.execute(f"ANALYZE {table}")
            # The staging tables are dropped before the VACUUMs (why: below).
            self.close()
            # Every slice recorded its events' contributions in stats_changes and
            # deleted them: 62 MB of dead rows at 100,000 events, which every write's
            # folds then scanned (30 ms a one-event write against 4.6 ms) until
            # autovacuum came by, up to a minute later. VACUUM gives the emptied pages
            # back.
            conn.execute(f"VACUUM {CHANGES}")
            # The rollups are read from their covering indexes alone (index-only
            # scans), which the planner chooses only for pages the visibility map
            # marks all-visible, as VACUUM does. After ANALYZE alone, /locations
            # filtered by type read stats_months_places whole: 25 ms against 3.5 ms at
            # 1,000,000 events, until autovacuum came by. Vacuuming every rollup took
            # 2.6 s there. The order is the one that marked them in trials: with the
            # staging tables still held by this session, or with the rollups vacuumed
            # before stats_changes, no rollup page was marked all-visible. Another
            # transaction running meanwhile (autovacuum's ANALYZE of the fresh tables,
            # a long read) can still leave the newest rows unmarked, for autovacuum.
            for rollup in ROLLUPS:
                conn.execute(f"VACUUM (ANALYZE) {rollup.table}")
        return BulkCounts(new, written - new, taken - written)

    def _merge_slice(self, changes: Changes, start: int, end: int) -> tuple[int, int]:
        """Write the events whose last staged version has an ord in [start, end),
        unless their content is stored; how many of them were new, and written."""
        conn = self.conn
        changed = conn.execute(_CHANGED, [start, end]).rowcount
        if not changed:
            return 0, 0
        first_seq = changes.take(changed)
        # Stored events are replaced; of the others, those deleted before come back.
        (stored, created) = conn.execute(_STORED_AND_CREATED).fetchone() or (0, 0)
        replaced = stored > 0
        if replaced:
            conn.execute(_SUBTRACT_REPLACED)
        conn.execute(_UPSERT_EVENTS, [first_seq - 1, first_seq - 1])
        conn.execute("DELETE FROM event_tombstones WHERE id IN (SELECT id FROM bulk_changed)")
        for table, columns in _CHILDREN.items():
            if replaced:
                conn.execute(
                    f"DELETE FROM {table} WHERE event_id IN "
                    "(SELECT id FROM bulk_changed WHERE old_first_seq IS NOT NULL)"
                )
            conn.execute(
                f"INSERT INTO {table} ({columns}) SELECT {_prefixed('b', columns)} "
                f"FROM bulk_{table} b JOIN bulk_changed c ON c.id = b.event_id "
                "AND c.ord = b.ord ORDER BY b.event_id, b.position"
            )
        conn.execute(_UPSERT_DOCUMENTS)
        conn.execute(_UPSERT_SEARCH)
        conn.execute(_ADD_CHANGED)
        fold_rollups(conn, removed=replaced)
        return created, changed

    def _remember(self, highest: int) -> None:
        """Record the source rows read (remember_sources) with their events' seqs, once
        every slice is in: in a transaction of its own, as import_sources is read by
        imports alone and a partner's write need not wait for it. An event written
        since the last slice (a seq past `highest`) is not recorded: its row is mapped
        again by the next import, as it would be had it been recorded."""
        table, _ = _SOURCES_READ
        with self.conn.transaction():
            self.conn.execute(
                f"DELETE FROM import_sources WHERE event_id IN (SELECT event_id FROM {table})"
            )
            self.conn.execute(
                "INSERT INTO import_sources (digest, event_id, seq) "
                f"SELECT s.digest, s.event_id, e.seq FROM {table} s "
                "JOIN events e ON e.id = s.event_id WHERE e.seq <= %s ORDER BY s.digest "
                "ON CONFLICT (digest) DO UPDATE SET event_id = excluded.event_id, "
                "seq = excluded.seq",
                [highest],
            )

    def close(self) -> None:
        """Drop the staging tables (finish does, before its VACUUMs; again here, for a
        load that failed): the connection goes back to the pool."""
        for table in (*_STAGED, _SOURCES_READ[0]):
            self.conn.execute(f"DROP TABLE IF EXISTS {table}")


def _prefixed(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


# The last staged version of each place, source and actor.
def _merge_shared(conn: psycopg.Connection[Any]) -> None:
    for table, key in (("locations", "id"), ("sources", "id"), ("actors", "name")):
        conn.execute(
            f"CREATE TEMP TABLE last_{table} ON COMMIT DROP AS SELECT DISTINCT ON ({key}) * "
            f"FROM bulk_{table} ORDER BY {key}, ord DESC"
        )


def _moved(conn: psycopg.Connection[Any], at: str) -> SharedChanges:
    """The stored places and sources the load describes with other values (as
    SQLite's moved_shared_records), before they are written."""
    moved = SharedChanges(at=at)
    for table, columns, ids in (
        ("locations", LOCATION_COLUMNS, moved.places),
        ("sources", SOURCE_COLUMNS, moved.sources),
    ):
        values = ", ".join(columns[1:])
        ids.update(
            record_id
            for (record_id,) in conn.execute(
                f"SELECT b.id FROM last_{table} b JOIN {table} s ON s.id = b.id "
                f"WHERE ({_prefixed('b', values)}) IS DISTINCT FROM ({_prefixed('s', values)})"
            )
        )
    return moved


def _upsert(table: str, columns: tuple[str, ...], key: str) -> str:
    """Insert the staged records, or update those stored with other values (in key
    order, as every writer writes them)."""
    names = ", ".join(columns)
    others = [c for c in columns if c != key]
    listed = ", ".join(others)
    changed = f"({_prefixed(table, listed)}) IS DISTINCT FROM ({_prefixed('excluded', listed)})"
    updates = ", ".join(f"{c} = excluded.{c}" for c in others)
    return (
        f"INSERT INTO {table} ({names}) SELECT {names} FROM last_{table} ORDER BY {key} "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates} WHERE {changed}"
    )


def _upsert_shared(conn: psycopg.Connection[Any]) -> None:
    conn.execute(_upsert("locations", LOCATION_COLUMNS, "id"))
    conn.execute(_upsert("sources", SOURCE_COLUMNS, "id"))
    conn.execute(_upsert("actors", ("name", "kind"), "name"))


# The events to write: the last staged version of each, unless its content is the
# stored one; numbered in the order given (n), with what is kept of the stored one.
_CHANGED = """CREATE TEMP TABLE bulk_changed ON COMMIT DROP AS
SELECT b.*, s.first_seq AS old_first_seq, row_number() OVER (ORDER BY b.ord) AS n
FROM (SELECT * FROM bulk_events b WHERE b.ord >= %s AND b.ord < %s AND NOT EXISTS
      (SELECT 1 FROM bulk_events l WHERE l.id = b.id AND l.ord > b.ord)) b
LEFT JOIN (SELECT e.id, e.first_seq, d.content_digest FROM events e
           JOIN event_documents d ON d.row_id = e.row_id) s ON s.id = b.id
WHERE s.id IS NULL OR s.content_digest <> b.content_digest"""

_STORED_AND_CREATED = (
    "SELECT count(*) FILTER (WHERE old_first_seq IS NOT NULL), count(*) FILTER "
    "(WHERE old_first_seq IS NULL AND NOT EXISTS "
    "(SELECT 1 FROM event_tombstones t WHERE t.id = c.id)) FROM bulk_changed c"
)
_EVENT_COLUMNS = ", ".join(EventRow._fields)
_UPSERT_EVENTS = (
    f"INSERT INTO events ({_EVENT_COLUMNS}, seq, first_seq) "
    f"SELECT {_EVENT_COLUMNS}, %s + n, coalesce(old_first_seq, %s + n) FROM bulk_changed "
    "ORDER BY n ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*EventRow._fields[1:], "seq"))
)
_ANALYZED = (
    "events", "event_documents", "event_search", "event_actors", "munitions", "reporters",
    "locations", "sources", "actors",
)  # fmt: skip
_CHILDREN = {
    "event_actors": "event_id, position, actor_name, role",
    "munitions": "event_id, position, category, model, launched, intercepted, not_reached, "
    "hit, reported_by",
    "reporters": "event_id, position, name, kind, title",
}
_UPSERT_DOCUMENTS = (
    "INSERT INTO event_documents (row_id, body, digest, content_digest, csv) "
    "SELECT e.row_id, c.body, c.digest, c.content_digest, c.csv FROM bulk_changed c "
    "JOIN events e ON e.id = c.id ORDER BY e.row_id ON CONFLICT (row_id) DO UPDATE SET "
    "body = excluded.body, digest = excluded.digest, "
    "content_digest = excluded.content_digest, csv = excluded.csv"
)
_UPSERT_SEARCH = (
    "INSERT INTO event_search (row_id, date, id, words) "
    "SELECT e.row_id, e.date, e.id, CAST(c.words AS tsvector) "
    "FROM bulk_changed c JOIN events e ON e.id = c.id ORDER BY e.row_id "
    "ON CONFLICT (row_id) DO UPDATE SET date = excluded.date, id = excluded.id, "
    "words = excluded.words"
)
# The rollups' statements, over the events of the load rather than an array of ids.
_IDS = "e.id = ANY(?)"
assert rollups.ADD.count(_IDS) == 3, "the rollups' statements name the events as expected"
_ADD_CHANGED = rollups.ADD.replace(_IDS, "e.id IN (SELECT id FROM bulk_changed)")
_SUBTRACT_REPLACED = rollups.SUBTRACT.replace(
    _IDS, "e.id IN (SELECT id FROM bulk_changed WHERE old_first_seq IS NOT NULL)"
)
