"""Every statement that writes events: their rows and stored documents, bulk loads,
the copies of shared places and sources, deletions and what imports remember."""

import datetime
import hashlib
import os
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import Any, NamedTuple

import orjson
import sqlite_utils
from marshmallow import ValidationError

from api.store import Author, BulkCounts, BulkWrites, CuratedLoad, loadable
from api.store.dialect import Executes
from api.store.sqlite import rollups
from api.store.sqlite.audit import AuditEntry, append_audit
from api.store.sqlite.dialect import SQLITE
from api.store.sqlite.layout import (
    EVENTS_WITH_DOCUMENTS,
    INDEXES,
    create_indexes,
    next_seq,
    placeholders,
)
from schemas.csv import csv_line
from schemas.event import EventSchema, event_document
from schemas.fields import TIMESTAMP_FORMAT, flatten_messages
from schemas.vocabulary import WEAPON_BITS

# Events per batch of rows written at once, by the seed and the synthetic generator.
BATCH_SIZE = 2000

# The writer itself reads these (next_seq), so a bulk load keeps them.
_WRITE_PATH_INDEXES = {"events_seq", "event_tombstones_seq"}


class BulkLoad:
    """A bulk load in progress (bulk_load): the writes given it (insert_rows' `bulk`)
    leave the rollups and the copies of shared records to its end, where `moved`
    holds the places and sources they changed so far."""

    def __init__(self) -> None:
        self.moved = SharedChanges()


@contextmanager
def bulk_load(db: sqlite_utils.Database) -> Iterator[BulkLoad]:
    """For a bulk load: drop the secondary indexes the writer does not read, and
    leave the rollups alone, then build both once the rows are in. Sorting a million
    keys once is several times cheaper than a million random index inserts, and one
    GROUP BY over the events cheaper than a million rollup updates. Run inside the
    load's transaction, so a failure keeps the indexes and rollups as they were.
    Give the BulkLoad it yields to every insert_rows of the load."""
    for name in INDEXES.keys() - _WRITE_PATH_INDEXES:
        db.execute(f"DROP INDEX IF EXISTS {name}")
    # The default 2 MB page cache, measured against 256 MiB, which made the index and
    # rollup builds of 100,000 ACLED rows 20-28% cheaper but a 1M-event synthetic load
    # slower (163.2 s against 146.8 s, back to back).
    load = BulkLoad()
    yield load
    # The copies of the places and sources the load changed, found with one scan of
    # the events and written before the indexes are back (see insert_rows).
    if load.moved.places or load.moved.sources:
        _rerender_copies(db, load.moved, bulk=load)
    # The sorts that build indexes and rollups may use every core: the load's
    # workers are done by now (measured at 1M events: 31.5 s -> 26.9 s).
    (threads,) = db.execute("PRAGMA threads").fetchone()
    db.execute(f"PRAGMA threads = {os.cpu_count() or 1}")
    try:
        create_indexes(db)
        rollups.rebuild(db.conn)
    finally:
        db.execute(f"PRAGMA threads = {int(threads)}")


class SQLiteBulk(BulkWrites):
    """A bulk load as the store hands it out (Writer.bulk_load, bulk_writes): each
    batch through insert_rows within bulk_load."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        loading: BulkLoad,
        remember: Callable[[Iterable[tuple[bytes, str]]], None],
    ) -> None:
        self.db, self.loading, self.remember = db, loading, remember
        self.first_seq = next_seq(db.conn)
        self.written = self.restored = 0

    def add(self, rows: "EventRows") -> None:
        # An event deleted before is written again (as none is stored, always), with
        # a new first_seq: it is updated, not new.
        ids = [row.id for row in rows.events]
        (restored,) = self.db.execute(
            f"SELECT count(*) FROM event_tombstones WHERE id IN ({placeholders(ids)})", ids
        ).fetchone()
        self.restored += restored
        self.written += insert_rows(self.db, rows, bulk=self.loading)

    def unchanged_sources(self, digests: Collection[bytes]) -> dict[bytes, str]:
        return unchanged_sources(self.db.conn, digests)

    def remember_sources(self, sources: Iterable[tuple[bytes, str]]) -> None:
        self.remember(sources)

    def counts(self) -> BulkCounts:
        """What the load wrote; once bulk_load has ended, as the copies of the places
        and sources it changed are re-rendered there. Every event written took a seq,
        and a new or restored one's first_seq is its seq."""
        (created,) = self.db.execute(
            "SELECT count(*) FROM events WHERE first_seq >= ?", [self.first_seq]
        ).fetchone()
        new = created - self.restored
        taken = next_seq(self.db.conn) - self.first_seq
        return BulkCounts(new, self.written - new, taken - self.written)


@contextmanager
def bulk_writes(db: sqlite_utils.Database) -> Iterator[SQLiteBulk]:
    """A SQLiteBulk in the caller's transaction; bulk_load's end builds the indexes
    and rollups again when the block ends, and the source rows given are recorded
    then (remembering_sources)."""
    with remembering_sources(db.conn) as remember, bulk_load(db) as loading:
        yield SQLiteBulk(db, loading, remember)


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


# first_seq is the sequence number an event was created at: an update keeps it.
_EVENT_COLUMNS = (*EventRow._fields, "seq", "first_seq")
_UPSERT_EVENT = SQLITE.upsert("events", _EVENT_COLUMNS, "id", keep=("first_seq",))
LOCATION_COLUMNS = (
    "id", "name", "admin1", "country", "country_code", "latitude", "longitude", "precision",
)  # fmt: skip
_UPSERT_LOCATION = SQLITE.upsert("locations", LOCATION_COLUMNS, "id")
SOURCE_COLUMNS = ("id", "title", "publisher", "url", "published", "reference")
_UPSERT_SOURCE = SQLITE.upsert("sources", SOURCE_COLUMNS, "id")
_UPSERT_ACTOR = SQLITE.upsert("actors", ("name", "kind"), "name")
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
    becomes the curators' again. The caller owns the transaction.

    The rules are plan_curated's and finish_curated's, which PostgreSQL's writer
    calls too (api/store/postgresql/writes.py's load_curated); only the write
    between them is this engine's."""
    changed_at = changed_at or datetime.datetime.now(datetime.UTC)
    conn = db.conn
    plan = plan_curated(conn, events, restore)
    first_seq = next_seq(conn)
    changed = write_events(db, plan.loaded, changed_at)
    # Each event written takes one number: those beyond the curated events' went to
    # the events re-rendered with a place or source the curated events changed.
    rerendered = next_seq(conn) - first_seq - changed
    load, entries = finish_curated(conn, plan, changed, rerendered)
    append_audit(conn, author, changed_at, entries)
    return load


@dataclass
class CuratedPlan:
    """What a curated load found before writing (plan_curated): each record's digest,
    the stored documents of its events, the events it keeps as partners left them,
    and the events it writes (`loaded`)."""

    events: list[dict[str, Any]]
    digests: dict[str, bytes]
    stored: dict[str, str]
    kept_deleted: set[str]
    kept_edited: set[str]
    loaded: list[dict[str, Any]]


def plan_curated(
    conn: Executes, events: list[dict[str, Any]], restore: Iterable[str]
) -> CuratedPlan:
    """The rules of write_curated, read from either engine (`conn`: Executes, `?`
    parameters): which events partners deleted or edited, and so are kept. The
    curated events are a few hundred at most, so the ids go as IN lists."""
    digests = {event["id"]: record_digest(event) for event in events}
    ids = list(digests)
    marks = placeholders(ids)
    remembered = {
        event_id: bytes(digest)
        for event_id, digest in conn.execute(
            f"SELECT event_id, record_digest FROM curated_loads WHERE event_id IN ({marks})", ids
        )
    }
    deleted = {
        event_id
        for (event_id,) in conn.execute(
            f"SELECT id FROM event_tombstones WHERE id IN ({marks})", ids
        )
    } - set(restore)
    stored = dict(
        conn.execute(
            f"SELECT e.id, d.body FROM {EVENTS_WITH_DOCUMENTS} WHERE e.id IN ({marks})", ids
        )
    )
    # The stored document is an API write when it is the document the event's last
    # audited write left, but for the place and source it copies, which a change to
    # them re-rendered since (unaudited); a later seed write would have replaced it.
    # Only entries made with an API key count: the seed audits its own writes too.
    edited = {
        event_id
        for event_id, after in conn.execute(
            "SELECT a.event_id, a.after FROM audit_log a WHERE a.seq IN (SELECT max(seq) "
            f"FROM audit_log WHERE key_id IS NOT NULL AND event_id IN ({marks}) "
            "GROUP BY event_id)",
            ids,
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
    return CuratedPlan(events, digests, stored, kept_deleted, kept_edited, loaded)


def finish_curated(
    conn: Executes, plan: CuratedPlan, changed: int, rerendered: int
) -> tuple[CuratedLoad, list[AuditEntry]]:
    """After the curated events are written (`changed` of them, and `rerendered`
    others copying a place or source they changed), on either engine: remember each
    record's digest, make the events written the curators' again, and say what the
    load did, with the audit entries to append."""
    for event_id, digest in plan.digests.items():
        conn.execute(
            "INSERT INTO curated_loads (event_id, record_digest) VALUES (?, ?) "
            "ON CONFLICT(event_id) DO UPDATE SET record_digest = excluded.record_digest",
            [event_id, digest],
        )
    loaded_ids = [event["id"] for event in plan.loaded]
    # PostgreSQL refuses an empty IN list: a load keeping every event reads nothing.
    now: dict[str, str] = (
        dict(
            conn.execute(
                f"SELECT e.id, d.body FROM {EVENTS_WITH_DOCUMENTS} "
                f"WHERE e.id IN ({placeholders(loaded_ids)})",
                loaded_ids,
            )
        )
        if loaded_ids
        else {}
    )
    # In the curated records' order, whatever order the engine returned them in.
    written = [i for i in loaded_ids if i in now and plan.stored.get(i) != now[i]]
    if written:
        conn.execute(
            f"DELETE FROM event_owners WHERE event_id IN ({placeholders(written)})", written
        )
    new = sum(1 for event in plan.loaded if event["id"] not in plan.stored)
    load = CuratedLoad(
        new=new,
        updated=changed - new,
        unchanged=len(plan.loaded) - changed,
        kept_edited=len(plan.kept_edited),
        kept_deleted=len(plan.kept_deleted),
        rerendered=rerendered,
    )
    entries = [
        AuditEntry("update" if i in plan.stored else "create", i, plan.stored.get(i), now[i])
        for i in written
    ]
    entries.append(AuditEntry("seed", detail={"curated_events": len(plan.events), **asdict(load)}))
    return load, entries


def _own_content(document: str) -> dict[str, Any]:
    """A stored document but for what writes of other events change in it: its
    updated_at, and the values of the place and source it copies (their ids stay)."""
    content = orjson.loads(document)
    del content["updated_at"]
    content["location"], content["source"] = content["location"]["id"], content["source"]["id"]
    return content


def insert_rows(
    db: sqlite_utils.Database,
    rows: EventRows,
    *,
    keep_rollups: bool = True,
    bulk: BulkLoad | None = None,
) -> int:
    """Write one batch of event rows, replacing the events' previous rows and skipping
    events whose content has not changed. Returns the number of events written.

    The rollups are kept current unless `keep_rollups` is false: then the caller
    subtracts and adds the events' contributions around the write; or the write is
    part of a `bulk` load, which rebuilds them at its end. A place or source the
    rows change is changed for every event that copies it (_rerender_copies): at
    once, or at the end of the bulk load."""
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
    maintain_rollups = keep_rollups and bulk is None
    ids_json = orjson.dumps(ids).decode()
    replaced = bool(stored.keys() & changed)
    if maintain_rollups and replaced:
        rollups.subtract(conn, ids_json)
    seq = next_seq(conn)
    events = []
    for offset, row in enumerate(rows.events):
        first_seq = stored[row.id].first_seq if row.id in stored else seq + offset
        events.append((*row, seq + offset, first_seq))

    moved = moved_shared_records(conn, rows)
    # Every table takes executemany with prepared statements, which measured twice
    # as fast as sqlite-utils' per-value conversion at 1M events, and reads no schema.
    conn.executemany(
        _UPSERT_LOCATION,
        [[place[column] for column in LOCATION_COLUMNS] for place in rows.locations.values()],
    )
    conn.executemany(
        _UPSERT_SOURCE,
        [[source[column] for column in SOURCE_COLUMNS] for source in rows.sources.values()],
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
        if bulk is not None:
            bulk.moved.update(moved)
        else:
            _rerender_copies(db, moved, written=set(ids))
    return len(ids)


@dataclass
class SharedChanges:
    """The places and sources (by id) a write changed, and when (its updated_at)."""

    places: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)
    at: str = ""

    def update(self, other: "SharedChanges") -> None:
        self.places |= other.places
        self.sources |= other.sources
        self.at = max(self.at, other.at)


def moved_shared_records(conn: Executes, rows: EventRows) -> SharedChanges:
    """The stored places and sources that these rows describe with other values:
    writing the rows changes them for every event that copies them. Read before the
    rows are written, on either engine (`conn`: Executes): one statement per table,
    as their columns have other types (no UNION on PostgreSQL)."""
    moved = SharedChanges(at=rows.events[0].updated_at)
    for table, columns, sent, ids in (
        ("locations", LOCATION_COLUMNS, rows.locations, moved.places),
        ("sources", SOURCE_COLUMNS, rows.sources, moved.sources),
    ):
        stored = conn.execute(
            f"SELECT {', '.join(columns)} FROM {table} WHERE id IN ({placeholders(sent)})",
            list(sent),
        )
        for record_id, *values in stored:
            if [sent[record_id][column] for column in columns[1:]] != values:
                ids.add(record_id)
    return moved


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
    db: sqlite_utils.Database,
    moved: SharedChanges,
    written: Collection[str] = (),
    bulk: BulkLoad | None = None,
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
            ("location", "locations", LOCATION_COLUMNS, "location_id"),
            ("source", "sources", SOURCE_COLUMNS, "source_id"),
        )
    }
    changed_at = datetime.datetime.strptime(moved.at, TIMESTAMP_FORMAT).replace(tzinfo=datetime.UTC)
    # The rollups lose every copy's contribution before and gain it back after, each
    # set-based, and fold only what did not cancel out: a copy's admin1 and country
    # move it, its place's name or point, or a source's title, do not (a bulk load
    # rebuilds the rollups at its end).
    keep_rollups = bulk is None
    if keep_rollups:
        rollups.subtract(conn, ids)
    for start in range(0, len(copies), BATCH_SIZE):
        events = []
        for document in event_documents(conn, copies[start : start + BATCH_SIZE]).values():
            events.append(reloaded_copy(document, now))
        insert_rows(db, event_rows(events, changed_at), keep_rollups=False)
    if keep_rollups:
        rollups.add(conn, ids)
        rollups.cancel_out(conn)
        rollups.apply(conn)


def reloaded_copy(document: str, now: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """A stored event copying a changed place or source, loaded back as a PATCH loads
    one (loadable, EventSchema.load) with its `location` and `source` as stored now
    (`now`, by record name and id), to be written again: on either engine.
    CopyInvalid if its document does not load as an event today."""
    record = loadable(document)
    for name, stored in now.items():
        record[name] = stored[record[name]["id"]]
    try:
        return dict(_SCHEMA.load(record))
    except ValidationError as error:
        raise CopyInvalid(record["id"], flatten_messages(error.messages)) from None


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
