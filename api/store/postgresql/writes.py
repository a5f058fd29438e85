"""The statements of a PostgreSQL write transaction (PostgresStore.writer): events
written, replaced and deleted through the API, with their audit entries, owners and
idempotent answers, and API keys. The rows come from SQLite's engine-neutral
rendering (api/store/sqlite/writes.py's event_rows: pure Python over validated
events, no connection), so a document, its digests (the ETag) and its CSV line are
byte for byte what SQLite's store writes.

Every statement runs after the transaction locked the change counter
(layout.lock_changes), so writers run these one at a time, and `Changes` numbers
what they write from the counter's value.
"""

import datetime
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from api.store import (
    Answer,
    AuditRecord,
    Author,
    CuratedLoad,
    IdempotencyKeyReused,
    IdempotentRequest,
    IdsTaken,
    StoredEvent,
    Unavailable,
)
from api.store.postgresql import layout, rollups
from api.store.postgresql.dialect import POSTGRESQL, Reading, search_document, to_pyformat
from api.store.sqlite import partners
from api.store.sqlite.audit import stamp
from api.store.sqlite.layout import EVENTS_WITH_DOCUMENTS
from api.store.sqlite.partners import IDEMPOTENCY_KEEP, IDEMPOTENCY_PURGE_BATCH
from api.store.sqlite.rollups import CHANGES
from api.store.sqlite.writes import (
    BATCH_SIZE,
    LOCATION_COLUMNS,
    SOURCE_COLUMNS,
    EventRow,
    EventRows,
    SharedChanges,
    event_rows,
    finish_curated,
    moved_shared_records,
    plan_curated,
    reloaded_copy,
)
from schemas.fields import TIMESTAMP_FORMAT


def run(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
    """Execute a statement written with `?` parameters."""
    return conn.execute(to_pyformat(sql), list(params))


def run_many(conn: psycopg.Connection[Any], sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if rows:
        with conn.cursor() as cursor:
            cursor.executemany(to_pyformat(sql), rows)


@dataclass
class Changes:
    """The change numbers of one write transaction: `highest` is the counter's value
    when the transaction locked it, then the last number taken."""

    highest: int
    taken: int = 0

    def take(self, count: int) -> int:
        """The first of `count` new numbers."""
        first = self.highest + 1
        self.highest += count
        self.taken += count
        return first


# How long a write waits for the change counter before it is called busy.
WRITE_LOCK_WAIT_MS = 5000


@contextmanager
def write_transaction(conn: psycopg.Connection[Any]) -> Iterator[Changes]:
    """One write transaction on `conn`: the change counter locked first, the write
    budget lifted (a write is not a costly read) and the wait for the lock bounded
    (WRITE_LOCK_WAIT_MS, then lock_not_available: Busy), the counter advanced before
    the commit. Every write takes its seqs in one of these (PostgresStore.writer,
    each slice of a bulk load)."""
    with conn.transaction():
        # SET LOCAL takes no snapshot: the counter's lock is still the first
        # statement to read anything (layout.lock_changes).
        conn.execute("SET LOCAL statement_timeout = 0")
        conn.execute(f"SET LOCAL lock_timeout = {WRITE_LOCK_WAIT_MS}")
        changes = Changes(layout.lock_changes(conn))
        # After the lock, which `migrate` takes too: an instance of another release
        # still running once the database was migrated writes nothing into a layout
        # it does not know (its /readyz says the same, for the balancer).
        row = conn.execute("SELECT version FROM schema_version WHERE singleton = 1").fetchone()
        version = None if row is None else int(row[0])
        if version != layout.SCHEMA_VERSION:
            database = layout.database_name(conn)
            if version is not None and version > layout.SCHEMA_VERSION:
                raise layout.NewerSchema(database, version)
            raise Unavailable(
                f"{database} is at schema version {version}, not this release's "
                f"({layout.SCHEMA_VERSION}): run `python -m api migrate`; nothing was written."
            )
        yield changes
        if changes.taken:
            layout.advance_changes(conn, changes.highest)


# Statements.

_EVENT_COLUMNS = (*EventRow._fields, "seq", "first_seq")
_UPSERT_EVENT = POSTGRESQL.upsert("events", _EVENT_COLUMNS, "id", keep=("first_seq",))
_UPSERT_LOCATION = POSTGRESQL.upsert("locations", LOCATION_COLUMNS, "id")
_UPSERT_SOURCE = POSTGRESQL.upsert("sources", SOURCE_COLUMNS, "id")
_UPSERT_ACTOR = POSTGRESQL.upsert("actors", ("name", "kind"), "name")
_UPSERT_DOCUMENT = POSTGRESQL.upsert(
    "event_documents", ("row_id", "body", "digest", "content_digest", "csv"), "row_id"
)
# The event's date and id come from its row just written (layout, "Search").
_UPSERT_SEARCH = (
    "INSERT INTO event_search (row_id, date, id, words) "
    "SELECT row_id, date, id, CAST(? AS tsvector) FROM events WHERE row_id = ? "
    "ON CONFLICT (row_id) DO UPDATE SET date = excluded.date, id = excluded.id, "
    "words = excluded.words"
)
_UPSERT_TOMBSTONE = POSTGRESQL.upsert("event_tombstones", ("id", "seq", "deleted_at", "body"), "id")


def stored_event(conn: psycopg.Connection[Any], event_id: str) -> StoredEvent | None:
    row = run(
        conn, f"SELECT d.body, d.digest FROM {EVENTS_WITH_DOCUMENTS} WHERE e.id = ?", [event_id]
    ).fetchone()
    return None if row is None else StoredEvent(row[0], bytes(row[1]))


def tombstone(conn: psycopg.Connection[Any], event_id: str) -> str | None:
    row = run(conn, "SELECT deleted_at FROM event_tombstones WHERE id = ?", [event_id]).fetchone()
    return None if row is None else str(row[0])


def event_documents(conn: psycopg.Connection[Any], ids: Sequence[str]) -> dict[str, str]:
    return dict(
        run(conn, f"SELECT e.id, d.body FROM {EVENTS_WITH_DOCUMENTS} WHERE e.id = ANY(?)", [ids])
    )


def taken_ids(conn: psycopg.Connection[Any], ids: Sequence[str]) -> list[str]:
    return [
        event_id
        for (event_id,) in run(
            conn,
            "SELECT id FROM events WHERE id = ANY(?) UNION SELECT id FROM event_tombstones "
            "WHERE id = ANY(?)",
            [list(ids), list(ids)],
        )
    ]


def fold_rollups(conn: psycopg.Connection[Any], removed: bool) -> None:
    """Fold the recorded changes into every rollup, in ROLLUPS' order and each in key
    order; rows left with no event go when something was subtracted.

    The 17-30 statements are sent in one pipeline (one round trip, not one each): a
    write holds the change counter until it commits, and under `make
    soak-postgresql` its transaction spent three quarters of that time waiting
    for its instance between statements (idle in transaction: each result waits for
    the GIL, held by the instance's read threads), while the other instance's
    writer waited for the lock."""
    with conn.pipeline():
        for table, statement in rollups.FOLDS:
            run(conn, statement)
            if removed:
                run(conn, f"DELETE FROM {table} WHERE events = 0")
        run(conn, f"DELETE FROM {CHANGES}")


def write_events(
    conn: psycopg.Connection[Any],
    changes: Changes,
    events: list[dict[str, Any]],
    changed_at: datetime.datetime,
    *,
    rerender: bool = False,
) -> int:
    """Upsert validated events with their places, sources, actors, munitions,
    reporters, documents and search rows, replacing what each had before, and keep
    the rollups current; an event whose content is unchanged is left as it is.
    Each event written takes the next change number. Returns how many were written.

    Partners' writes describe the places and sources as stored (the callers check
    it first: check_shared_records), so no other event's copy of them changes. The
    curated load may change them (`rerender`): then every other event copying one
    it changed is written again, as SQLite's insert_rows does (rerender_copies)."""
    rows: EventRows = event_rows(events, changed_at)
    ids = [row.id for row in rows.events]
    stored = {
        event_id: (bytes(content_digest), first_seq)
        for event_id, content_digest, first_seq in run(
            conn,
            f"SELECT e.id, d.content_digest, e.first_seq FROM {EVENTS_WITH_DOCUMENTS} "
            "WHERE e.id = ANY(?)",
            [ids],
        )
    }
    changed = {
        row.event_id
        for row in rows.documents
        if row.event_id not in stored or stored[row.event_id][0] != row.content_digest
    }
    if not changed:
        return 0
    if len(changed) < len(ids):
        rows = rows.only(changed)
        ids = [row.id for row in rows.events]
    replacing = [event_id for event_id in ids if event_id in stored]
    moved = moved_shared_records(Reading(conn), rows) if rerender else None
    if replacing:
        run(conn, rollups.SUBTRACT, [replacing] * 3)
    seq = changes.take(len(ids))
    events_rows = [
        (*row, seq + offset, stored[row.id][1] if row.id in stored else seq + offset)
        for offset, row in enumerate(rows.events)
    ]
    # Shared records and actors in key order, as every writer writes them.
    run_many(
        conn,
        _UPSERT_LOCATION,
        [[rows.locations[i][c] for c in LOCATION_COLUMNS] for i in sorted(rows.locations)],
    )
    run_many(
        conn,
        _UPSERT_SOURCE,
        [[rows.sources[i][c] for c in SOURCE_COLUMNS] for i in sorted(rows.sources)],
    )
    run_many(conn, _UPSERT_ACTOR, sorted(rows.actors.items()))
    run_many(conn, _UPSERT_EVENT, events_rows)
    run(conn, "DELETE FROM event_tombstones WHERE id = ANY(?)", [ids])
    if replacing:
        for table in ("event_actors", "munitions", "reporters"):
            run(conn, f"DELETE FROM {table} WHERE event_id = ANY(?)", [replacing])
    run_many(conn, "INSERT INTO event_actors VALUES (?, ?, ?, ?)", rows.event_actors)
    run_many(conn, "INSERT INTO munitions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows.munitions)
    run_many(conn, "INSERT INTO reporters VALUES (?, ?, ?, ?, ?)", rows.reporters)
    row_ids = dict(run(conn, "SELECT id, row_id FROM events WHERE id = ANY(?)", [ids]))
    run_many(
        conn,
        _UPSERT_DOCUMENT,
        [
            (row_ids[row.event_id], row.body, row.digest, row.content_digest, row.csv)
            for row in rows.documents
        ],
    )
    run_many(
        conn,
        _UPSERT_SEARCH,
        [(search_document(row.notes, row.place), row_ids[row.event_id]) for row in rows.documents],
    )
    run(conn, rollups.ADD, [ids] * 3)
    fold_rollups(conn, removed=bool(replacing))
    if moved is not None and (moved.places or moved.sources):
        rerender_copies(conn, changes, moved, written=set(ids))
    return len(ids)


def rerender_copies(
    conn: psycopg.Connection[Any], changes: Changes, moved: SharedChanges, written: set[str]
) -> None:
    """SQLite's _rerender_copies on PostgreSQL: write again every event that copies a
    place or source of `moved` (but those just `written`), loaded back with its place
    and source as stored now (reloaded_copy) and written as every event is, as of
    `moved.at`, BATCH_SIZE at a time in the caller's transaction."""
    copies = [
        event_id
        for (event_id,) in run(
            conn,
            "SELECT id FROM events WHERE location_id = ANY(?) "
            "UNION SELECT id FROM events WHERE source_id = ANY(?) ORDER BY id",
            [sorted(moved.places), sorted(moved.sources)],
        )
        if event_id not in written
    ]
    if not copies:
        return
    # Both the place and the source of each copy as stored now, as on SQLite.
    now = {
        name: {
            row[0]: dict(zip(columns, row, strict=True))
            for row in run(
                conn,
                f"SELECT {', '.join(columns)} FROM {table} WHERE id IN "
                f"(SELECT {column} FROM events WHERE id = ANY(?))",
                [copies],
            )
        }
        for name, table, columns, column in (
            ("location", "locations", LOCATION_COLUMNS, "location_id"),
            ("source", "sources", SOURCE_COLUMNS, "source_id"),
        )
    }
    changed_at = datetime.datetime.strptime(moved.at, TIMESTAMP_FORMAT).replace(tzinfo=datetime.UTC)
    for start in range(0, len(copies), BATCH_SIZE):
        batch = copies[start : start + BATCH_SIZE]
        documents = event_documents(conn, batch)
        events = [reloaded_copy(documents[event_id], now) for event_id in batch]
        write_events(conn, changes, events, changed_at)


def load_curated(
    conn: psycopg.Connection[Any],
    changes: Changes,
    events: list[dict[str, Any]],
    author: Author,
    at: datetime.datetime,
    restore: Sequence[str],
) -> CuratedLoad:
    """SQLite's write_curated on PostgreSQL: the same rules (plan_curated,
    finish_curated) around this engine's write."""
    reading = Reading(conn)
    plan = plan_curated(reading, events, restore)
    taken = changes.taken
    changed = write_events(conn, changes, plan.loaded, at, rerender=True)
    # As on SQLite: the numbers beyond the curated events' went to the re-rendered.
    rerendered = changes.taken - taken - changed
    load, entries = finish_curated(reading, plan, changed, rerendered)
    append_audit(conn, author, at, entries)
    return load


def delete_events(
    conn: psycopg.Connection[Any], changes: Changes, ids: Sequence[str], at: datetime.datetime
) -> int:
    """Replace events by tombstones keeping their last document, each taking the
    next change number (in id order); unknown ids are ignored."""
    found = run(
        conn,
        f"SELECT e.row_id, e.id, d.body FROM {EVENTS_WITH_DOCUMENTS} WHERE e.id = ANY(?) "
        "ORDER BY e.id",
        [list(ids)],
    ).fetchall()
    if not found:
        return 0
    seq = changes.take(len(found))
    run_many(
        conn,
        _UPSERT_TOMBSTONE,
        [(event_id, seq + i, stamp(at), body) for i, (_, event_id, body) in enumerate(found)],
    )
    row_ids = [row_id for row_id, _, _ in found]
    event_ids = [event_id for _, event_id, _ in found]
    run(conn, rollups.SUBTRACT, [event_ids] * 3)
    fold_rollups(conn, removed=True)
    for table in ("event_actors", "munitions", "reporters"):
        run(conn, f"DELETE FROM {table} WHERE event_id = ANY(?)", [event_ids])
    for table in ("event_search", "event_documents"):
        run(conn, f"DELETE FROM {table} WHERE row_id = ANY(?)", [row_ids])
    run(conn, "DELETE FROM events WHERE row_id = ANY(?)", [row_ids])
    return len(found)


# Audit.


def append_audit(
    conn: psycopg.Connection[Any],
    author: Author,
    at: datetime.datetime,
    entries: Sequence[AuditRecord],
) -> None:
    """One audit_log row per (action, event id, before, after, detail)."""
    run_many(
        conn,
        "INSERT INTO audit_log (at, key_id, key_name, action, event_id, before, after, "
        "request_id, client_address, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                stamp(at),
                author.key_id,
                author.key_name,
                action,
                event_id,
                before,
                after,
                author.request_id,
                author.client_address,
                None if detail is None else orjson.dumps(detail).decode(),
            )
            for action, event_id, before, after, detail in entries
        ],
    )


# Partners' writes.


def create_events(
    conn: psycopg.Connection[Any],
    changes: Changes,
    events: list[dict[str, Any]],
    author: Author,
    at: datetime.datetime,
    request: IdempotentRequest | None,
) -> tuple[Answer, bool]:
    """partners.create_events on PostgreSQL. The idempotency key's row is inserted
    before anything else is written (a placeholder answer, filled in at the end):
    of two first requests with one key, the second finds the first's row, and waits
    for its transaction (a unique key's insert waits for the one in flight) even
    where writers did not queue on the counter already."""
    purge_idempotent_requests(conn, at)
    if request is not None:
        replayed = _claim_idempotency_key(conn, author, request, at)
        if replayed is not None:
            return replayed, True
    ids = [event["id"] for event in events]
    twice = {event_id for event_id in ids if ids.count(event_id) > 1}
    taken = set(taken_ids(conn, ids)) | twice
    if taken:
        raise IdsTaken(sorted(taken))
    partners.check_shared_records(Reading(conn), events)
    write_events(conn, changes, events, at)
    documents = event_documents(conn, ids)
    run_many(
        conn,
        "INSERT INTO event_owners (event_id, key_id) VALUES (?, ?)",
        [(event_id, author.key_id) for event_id in ids],
    )
    append_audit(conn, author, at, [("create", i, None, documents[i], None) for i in ids])
    answer = Answer(201, b'{"data":[' + b",".join(documents[i].encode() for i in ids) + b"]}")
    if request is not None:
        run(
            conn,
            "UPDATE idempotent_requests SET status = ?, body = ? "
            "WHERE key_id = ? AND idempotency_key = ?",
            [answer.status, answer.body, author.key_id, request.key],
        )
    return answer, False


def _claim_idempotency_key(
    conn: psycopg.Connection[Any], author: Author, request: IdempotentRequest, at: datetime.datetime
) -> Answer | None:
    """Insert the key's row (status 0 until the answer is known) and return None; or
    the answer kept for it, if given less than IDEMPOTENCY_KEEP ago (an expired one
    is replaced). IdempotencyKeyReused if the key came with another body."""
    claim = (
        "INSERT INTO idempotent_requests "
        "(key_id, idempotency_key, request_digest, status, body, created_at) "
        "VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (key_id, idempotency_key) DO NOTHING"
    )
    params = [author.key_id, request.key, request.content_digest, b"", stamp(at)]
    if run(conn, claim, params).rowcount == 1:
        return None
    row = run(
        conn,
        "SELECT request_digest, status, body, created_at FROM idempotent_requests "
        "WHERE key_id = ? AND idempotency_key = ?",
        [author.key_id, request.key],
    ).fetchone()
    assert row is not None, "a row that conflicted is there (writers hold the counter)"
    digest, status, body, created_at = row
    if created_at < stamp(at - IDEMPOTENCY_KEEP):
        run(
            conn,
            "DELETE FROM idempotent_requests WHERE key_id = ? AND idempotency_key = ?",
            [author.key_id, request.key],
        )
        run(conn, claim, params)
        return None
    if bytes(digest) not in (request.content_digest, request.body_digest):
        raise IdempotencyKeyReused(request.key)
    return Answer(int(status), bytes(body))


def purge_idempotent_requests(conn: psycopg.Connection[Any], at: datetime.datetime) -> int:
    return run(
        conn,
        "DELETE FROM idempotent_requests WHERE (key_id, idempotency_key) IN (SELECT key_id, "
        "idempotency_key FROM idempotent_requests WHERE created_at < ? ORDER BY created_at "
        "LIMIT ?)",
        [stamp(at - IDEMPOTENCY_KEEP), IDEMPOTENCY_PURGE_BATCH],
    ).rowcount


def update_event(
    conn: psycopg.Connection[Any],
    changes: Changes,
    event: dict[str, Any],
    before: str,
    author: Author,
    at: datetime.datetime,
) -> str:
    partners.check_shared_records(Reading(conn), [event])
    if not write_events(conn, changes, [event], at):
        return before
    after = event_documents(conn, [event["id"]])[event["id"]]
    append_audit(conn, author, at, [("update", event["id"], before, after, None)])
    return after


def delete_event(
    conn: psycopg.Connection[Any],
    changes: Changes,
    event_id: str,
    before: str,
    author: Author,
    at: datetime.datetime,
) -> None:
    delete_events(conn, changes, [event_id], at)
    run(conn, "DELETE FROM event_owners WHERE event_id = ?", [event_id])
    append_audit(conn, author, at, [("delete", event_id, before, None, None)])
