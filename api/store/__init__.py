"""The store: the one interface through which the web layer and the operator's tools
reach Salvo's data, and the errors it raises. (The seed's loaders, which bulk-load
an engine its own way, write through that engine's modules: docs/design.md,
"Layers".)

This file is the whole contract. `Store` lists what a reader, a writer and an
operator can do; an engine implements it in a folder of its own (SQLite, the
embedded default: api/store/sqlite/). Nothing here or there imports Flask: the web
layer (api/) parses requests, calls a store, and maps its errors to problems in
one place (api/db.py), so the seed's import workers and the command-line tools
start without the web stack.

The single writer. A store runs one write transaction at a time, and every write
takes the next numbers of one change sequence (`seq`): values are unique (a unique
index says so) and become visible in seq order, so that a mirror that saves the
highest seq it has seen (the /changes token) never misses a change. SQLite holds
this by its one write lock (BEGIN IMMEDIATE) and seq = highest + 1 read inside the
transaction; an engine with concurrent writers must serialise them on one counter
taken at the start of each write transaction. docs/design.md, "The single writer".
"""

import abc
import dataclasses
import datetime
import hashlib
import os
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from api.store.series import Group, Series

if TYPE_CHECKING:
    from api.store.search import Search

# What reads return.


class StoredEvent(NamedTuple):
    """An event's stored JSON document and its SHA-1 digest (the ETag)."""

    body: str
    digest: bytes


def loadable(document: str) -> dict[str, Any]:
    """A stored document as EventSchema loads it: without its output-only fields."""
    event = orjson.loads(document)
    for output_only in ("acled", "updated_at"):
        event.pop(output_only)
    return event


class Change(NamedTuple):
    """One entry of the change feed: an event at its latest write (with its document,
    `created` when that write created it) or a deletion (no document)."""

    seq: int
    id: str
    changed_at: str
    created: bool | None
    body: bytes | None


class FeedPosition(NamedTuple):
    """Where the change feed stands: the id of the database's change history, the
    highest sequence number up to which tokens without a history id are trusted,
    and the highest sequence number taken (0 for none)."""

    history: str
    old_tokens_until: int
    highest_seq: int


# What writes take and give.


class Author(NamedTuple):
    """Who makes a change, as the audit log names them: an API key, with the request's
    id and client address; or a command run on the server (no key, no address)."""

    key_id: str | None
    key_name: str | None
    request_id: str | None
    client_address: str | None


def command_author() -> Author:
    """A command run on the server (seed, import, keys, restore): no key and no
    address; its entries share one random run id in place of a request id."""
    return Author(None, None, f"run-{secrets.token_hex(12)}", None)


# An audit entry a command writes (Writer.append_audit): action, event id, the
# document before and after, and a detail.
AuditRecord = tuple[str, str | None, str | None, str | None, dict[str, Any] | None]


@dataclasses.dataclass
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


class StoredKey(NamedTuple):
    """An API key as stored: never the key, only a salted hash of its secret."""

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


class IdempotentRequest(NamedTuple):
    """A POST sent with an Idempotency-Key: the key, the content digest of its
    parsed body, and the SHA-256 of its bytes as sent (`body_digest`), which answers
    kept before content digests matched."""

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


class DatabaseSummary(NamedTuple):
    """What a backup or restore copied: its events and the highest change seq."""

    events: int
    highest_seq: int


# The errors. Each says what went wrong in `detail` (a sentence for a person) and,
# where a program needs it, in fields of its own.


class StoreError(Exception):
    """Something the store could not do."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Busy(StoreError):
    """Another writer holds the store; nothing was written. Retry after a moment."""

    retry_after_s = 1


class Full(StoreError):
    """The store's disk is full; nothing was written."""


class Damaged(StoreError):
    """The store's data is damaged; the instance is not ready until it reads cleanly."""


class Unavailable(StoreError):
    """The store cannot serve: missing, of another layout, or failing."""


class TooCostly(StoreError):
    """A read needs more than the query budget and was stopped. `parameter` names the
    request parameter to narrow when one alone made it costly (a search), else None."""

    def __init__(self, detail: str, budget_s: float, parameter: str | None = None) -> None:
        super().__init__(detail)
        self.budget_s, self.parameter = budget_s, parameter


class InvalidParameters(StoreError):
    """Parameters the store cannot answer for as given (a foreign cursor, a series
    longer than one answer): per parameter, its `name` and the `reason`."""

    def __init__(self, invalid: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{p['name']}: {p['reason']}" for p in invalid))
        self.invalid = invalid


class NoSuchEvent(StoreError):
    """No event ever had this id."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"No event has id {event_id!r}.")
        self.event_id = event_id


class EventDeleted(StoreError):
    """The event was deleted (a tombstone says when)."""

    def __init__(self, event_id: str, deleted_at: str) -> None:
        super().__init__(f"Event {event_id!r} was deleted at {deleted_at}.")
        self.event_id, self.deleted_at = event_id, deleted_at


class Conflict(StoreError):
    """A write that would contradict what is stored; nothing was written."""


class IdsTaken(Conflict):
    """A POST named ids that exist (or existed) already, or one id twice."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(", ".join(ids))
        self.ids = ids


class SharedRecordsDiffer(Conflict):
    """A write describes a place or source that exists (or comes twice in the
    batch) with other values: places and sources are shared by id, so writing it
    would change every event that names it. `records` says the same for programs:
    per conflict, the record (`location`, `source`), its id, the fields that differ
    and what they differ from (`stored`, or `batch` for another event of the write)."""

    def __init__(self, differences: list[str], records: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(differences))
        self.differences = differences
        self.records = records


class IdempotencyKeyReused(Conflict):
    """An Idempotency-Key came back with another request body than its first."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class NotTheOwner(Conflict):
    """A write key tried to change an event that another key created, or a curated
    one (owner None)."""

    def __init__(self, event_id: str, owner: str | None) -> None:
        super().__init__(event_id)
        self.event_id, self.owner = event_id, owner


class NotRestorable(StoreError):
    """A file given to restore is not a Salvo database this version can serve."""


# The interface.


class EventPages(abc.ABC):
    """The events matching a query, in its sort order, a keyset page at a time."""

    @abc.abstractmethod
    def page(self, cursor: str | None, limit: int) -> Any:
        """One page (its events as columns, and the keys before and after it)."""

    @abc.abstractmethod
    def total(self) -> tuple[int, bool]:
        """How many events match, and whether that count is exact (else a bound). Read
        within the same query budget as the pages: one request, one budget."""


# /events totals kept while the events are unchanged (KeptTotals); past this many
# sets of filters the keeping starts over.
TOTALS_KEPT = 256


class KeptTotals:
    """/events totals (EventPages.total) kept while the events are unchanged: every
    page of a listing has the same total, which is read once, then taken from here
    while the version of the events a read sees is the one it was counted at. An
    engine names its version: SQLite's PRAGMA data_version (per connection),
    PostgreSQL's change counter and change history (read with each page).

    Safe to share between threads without a lock: the version and its totals are
    one tuple, replaced whole, so a total counted at another version is never
    found under this one (a total kept into a replaced dict is merely lost)."""

    def __init__(self) -> None:
        self._kept: tuple[object, dict[str, tuple[int, bool]]] = (None, {})

    def get(self, version: object, key: str) -> tuple[int, bool] | None:
        """The total of the filters `key` names at `version`, if kept."""
        kept_version, totals = self._kept
        if version is None or version != kept_version:
            return None
        return totals.get(key)

    def keep(self, version: object, key: str, total: tuple[int, bool]) -> None:
        """Keep a total counted at `version`, forgetting those of any other version."""
        kept_version, totals = self._kept
        if version != kept_version or len(totals) >= TOTALS_KEPT:
            totals = {}
            self._kept = (version, totals)
        totals[key] = total


class BulkCounts(NamedTuple):
    """What a bulk load wrote: events it created, events it wrote again (their content
    changed, or they had been deleted), and other events it re-rendered, as they copy
    a place or source the load changed. An event given whose content is stored is
    none of these."""

    new: int
    updated: int
    rerendered: int


class BulkWrites(abc.ABC):
    """A bulk load in progress (Store.bulk_load): batches of rendered event rows
    (api/store/sqlite/writes.py's EventRows, from event_rows), written as
    insert_rows writes them, with the indexes and rollups brought up to date once
    the last batch is in. Each engine's does it its own way: SQLite drops and
    rebuilds its indexes; PostgreSQL stages the rows (COPY) and merges them set-based,
    never locking readers out."""

    @abc.abstractmethod
    def add(self, rows: Any) -> None:
        """Write (or stage) one batch of rows, in order after those added before."""

    # A CSV import's source rows (seed/imports.py), known by their digests: a row an
    # earlier import wrote, whose event has had no write since, is skipped unread.

    @abc.abstractmethod
    def unchanged_sources(self, digests: Collection[bytes]) -> dict[bytes, str]:
        """Of these source-row digests, those an import recorded whose event has had no
        write since (neither an edit nor a deletion), with the event's id."""

    @abc.abstractmethod
    def remember_sources(self, sources: Iterable[tuple[bytes, str]]) -> None:
        """Record source rows, each (digest, event id), with their events' seq once the
        load is written, in place of the rows recorded for those events before."""


class Writer(abc.ABC):
    """The operations of one write transaction: committed when the `Store.writer()`
    block ends, rolled back (nothing written) if it raises."""

    @abc.abstractmethod
    def event(self, event_id: str) -> StoredEvent:
        """The event as stored now; NoSuchEvent or EventDeleted if there is none."""

    @abc.abstractmethod
    def check_owner(self, event_id: str, key_id: str, admin: bool) -> None:
        """NotTheOwner unless this key may change the event."""

    @abc.abstractmethod
    def create_events(
        self,
        events: list[dict[str, Any]],
        author: Author,
        at: datetime.datetime,
        idempotent: IdempotentRequest | None,
    ) -> tuple[Answer, bool]:
        """Write new events (all or none): the 201 answer, and whether it is a replay
        of an earlier answer to the same idempotent request. IdsTaken,
        SharedRecordsDiffer, IdempotencyKeyReused."""

    @abc.abstractmethod
    def update_event(
        self, event: dict[str, Any], before: str, author: Author, at: datetime.datetime
    ) -> str:
        """Replace an event (validated, merged) and return its new stored document."""

    @abc.abstractmethod
    def delete_event(
        self, event_id: str, before: str, author: Author, at: datetime.datetime
    ) -> None:
        """Delete an event, leaving a tombstone in the change feed."""

    @abc.abstractmethod
    def load_curated(
        self,
        events: list[dict[str, Any]],
        author: Author,
        at: datetime.datetime,
        restore: Collection[str] = (),
    ) -> CuratedLoad:
        """Load the curated events (validated) without undoing partners' writes: an
        event deleted through the API stays deleted unless its id is in `restore`,
        one edited through the API stays as edited unless its curated record changed
        since the last load; re-loading the same records changes nothing. The rules
        are api/store/sqlite/writes.py's write_curated (plan_curated,
        finish_curated); every event written is audited as `author`, and the load."""

    @abc.abstractmethod
    def append_audit(
        self,
        author: Author,
        at: datetime.datetime,
        entries: list[AuditRecord],
    ) -> None:
        """Audit entries (action, event id, before, after, detail) for a command's
        write, such as one for a whole bulk load."""

    @abc.abstractmethod
    def renew_history(self) -> tuple[str, FeedPosition]:
        """Begin a new change history in this transaction: a new random id, and no
        token without an id trusted any more (old_tokens_until 0). The id of the
        history it ends, and the feed's position in the new one."""


class Store(abc.ABC):
    """Salvo's data on one engine. Reads never hold a transaction between
    statements (each sees every write committed before it) and stop at the query
    budget (TooCostly); writes go through `writer()`, one at a time."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release every connection the store holds; it opens new ones if used again."""

    # Readers.

    @abc.abstractmethod
    def event_pages(
        self, args: dict[str, Any], *, coordinates: bool = False, csv: bool = False
    ) -> EventPages:
        """The events matching the /events arguments, read a page at a time."""

    @abc.abstractmethod
    def event_stream(
        self, args: dict[str, Any], *, csv: bool
    ) -> tuple[Iterator[Any], Callable[[], None]]:
        """Every event matching the arguments (stored documents, or CSV lines), read
        through a connection of its own a bounded page at a time, and the function
        that closes it (call it when the stream ends or is abandoned)."""

    @abc.abstractmethod
    def event(self, event_id: str) -> StoredEvent:
        """One event; NoSuchEvent or EventDeleted."""

    @abc.abstractmethod
    def changes(self, after: int, limit: int) -> tuple[list[Change], bool]:
        """The changes after a seq, in seq order, and whether more follow."""

    @abc.abstractmethod
    def feed_position(self) -> FeedPosition:
        """Where the change feed stands."""

    @abc.abstractmethod
    def stats_grouped(self, args: dict[str, Any]) -> list[tuple[Group, dict[str, Any]]]:
        """/stats totals per group (or one total), as the API gives them."""

    @abc.abstractmethod
    def stats_series(
        self,
        args: dict[str, Any],
        after: tuple[str | None, str] | None,
        limit: int,
        max_rows: int | None,
    ) -> Series[dict[str, Any]]:
        """/stats totals per period (and group), a page of periods at a time, as the
        API gives them."""

    @abc.abstractmethod
    def search_capped(self, q: "Search") -> bool:
        """Whether a search matches more events than its totals sum (a documented cap)."""

    @abc.abstractmethod
    def locations(self, args: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
        """A page of places (with their event counts) and the key after it."""

    @abc.abstractmethod
    def location(self, location_id: str) -> dict[str, Any] | None:
        """One place, or None."""

    @abc.abstractmethod
    def sources(self, args: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
        """A page of sources and the key after it."""

    @abc.abstractmethod
    def source(self, source_id: str) -> dict[str, Any] | None:
        """One source, or None."""

    @abc.abstractmethod
    def summary(self) -> dict[str, Any]:
        """What the dataset holds: events, their date range, sources, last change."""

    @abc.abstractmethod
    def live_key(self, key_id: str) -> StoredKey | None:
        """An API key that is not revoked, or None."""

    # Read-your-writes across a replica (docs/design.md, "Reads from a replica").

    def position(self) -> int | None:
        """Where the primary database's log stands now, past every commit made before
        this call: what an answer to a write carries so that the writer's next reads
        see it (`after`). None for a store whose reads see every commit anyway (one
        database, no replica): nothing is sent, nothing need be sent back."""
        return None

    def after(self, position: int | None) -> "Store":
        """This store with its reads seeing at least every commit up to `position`
        (a `position()` of this store's primary, from any instance). A store without
        a replica reads where it writes: itself."""
        return self

    @abc.abstractmethod
    def readiness(self) -> dict[str, str]:
        """What /readyz reports when the store can serve; Unavailable or Damaged
        naming what is wrong otherwise."""

    # Writers.

    @abc.abstractmethod
    def writer(self, trace: Callable[[str], None] | None = None) -> AbstractContextManager[Writer]:
        """One write transaction. `trace`, if given, sees every statement (tests)."""

    @abc.abstractmethod
    def bulk_load(
        self,
        author: Author,
        at: datetime.datetime,
        audit: Callable[[BulkCounts], list[AuditRecord]],
    ) -> AbstractContextManager[BulkWrites]:
        """A bulk load (the synthetic seed, a CSV import): rows given to it are written
        when the block ends without raising, with the entries `audit` makes of what was
        written appended in the transaction of the last of them; nothing is written if
        the block raises.

        SQLite writes it in one transaction. PostgreSQL stages every row first, taking
        no lock, then merges the staged rows in slices of events, in the order given,
        each slice a write transaction of its own, because readers' index scans visit
        every uncommitted row a merge has inserted: a load merged whole would push
        reads past their budget (docs/design.md, "Bulk loads on PostgreSQL"). A load
        that fails there leaves whole slices written, every seq in order; running it
        again writes the rest (an event whose content is stored is skipped)."""

    # Operators (python -m api): keys, backups, restores, recovery.

    @abc.abstractmethod
    def create_key(self, name: str, scope: str) -> str:
        """A new API key, audited as a command's; the key itself is not kept."""

    @abc.abstractmethod
    def revoke_key(self, key_id: str) -> bool:
        """Revoke a live key, audited; False if there is none with this id."""

    @abc.abstractmethod
    def key_listings(self) -> list[KeyListing]:
        """Every key, live or revoked, oldest first."""

    @abc.abstractmethod
    def back_up(self, target: str, *, replace: bool = False) -> DatabaseSummary:
        """A consistent copy of the whole store at target, while it serves."""

    @abc.abstractmethod
    def restore(self, source: str) -> DatabaseSummary:
        """Replace the store's content with a backup's, keeping the audit log; a new
        change history begins (mirrors resync). NotRestorable if it is not one."""

    def renew_history(self) -> FeedPosition:
        """Begin a new change history after a restore made outside Salvo (pg_restore, a
        point-in-time recovery, a file copied back), as `restore` does for its own:
        partners' tokens from before are refused from then on, so that none resumes
        at a seq this database reuses or never had. One write transaction, queued
        behind the writes in flight, audited as a command's `renew-history`. The
        feed's position in the new history. Unavailable, naming what to run, for a
        database this release does not serve (no layout, another version)."""
        self.readiness()
        with self.writer() as writer:
            previous, renewed = writer.renew_history()
            detail = {
                "previous_history": previous,
                "history": renewed.history,
                "highest_seq": renewed.highest_seq,
            }
            writer.append_audit(
                command_author(),
                datetime.datetime.now(datetime.UTC),
                [("renew-history", None, None, None, detail)],
            )
        return renewed

    @abc.abstractmethod
    def migrate(self) -> str:
        """Upgrade the store to this release's schema in place, all or nothing,
        keeping every event, partner write, tombstone, key, audit entry, idempotent
        answer and the change feed; what was done, as `python -m api migrate` says it.
        Unavailable (naming why) for a store of a later release or another layout."""

    @abc.abstractmethod
    def recover(self) -> str | None:
        """Finish or undo what an interrupted operator's write left; a sentence
        saying what was done, None if nothing was needed."""


# The schemes of a PostgreSQL database setting.
POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


def database_file(database: str) -> str:
    """The SQLite file a database setting ($SALVO_DATABASE, --db) names: a path, or
    `sqlite:///path`. Unavailable for any other scheme, never a file named after it."""
    path = database.removeprefix("sqlite:///")
    if "://" in path:
        raise Unavailable(
            f"Salvo cannot open {database.split('://')[0]}:// databases; give a file path, "
            "sqlite:///path or a postgresql:// URL."
        )
    return path


def replica_refusal(database: str, replica: str | None) -> str | None:
    """Why a replica setting ($SALVO_DATABASE_REPLICA) cannot serve beside this
    database setting, or None: a replica is a PostgreSQL hot standby of a PostgreSQL
    primary, and SQLite has neither."""
    if not replica:
        return None
    if not replica.startswith(POSTGRESQL_SCHEMES):
        return (
            "SALVO_DATABASE_REPLICA must be a postgresql:// URL of a hot standby of "
            "SALVO_DATABASE's server."
        )
    if not database.startswith(POSTGRESQL_SCHEMES):
        return (
            "SALVO_DATABASE_REPLICA names a PostgreSQL standby, but SALVO_DATABASE is a "
            "SQLite file: a replica needs a postgresql:// primary. Unset "
            "SALVO_DATABASE_REPLICA, or serve from PostgreSQL."
        )
    return None


# How a pooler in front of PostgreSQL may pool Salvo's connections (database_pooling).
POOLINGS = ("session", "transaction")


def database_pooling() -> str:
    """How the connections to SALVO_DATABASE's server are pooled in front of it:
    $SALVO_DATABASE_POOLING, else session (PostgreSQL itself, or a pooler's session
    mode, which changes nothing for Salvo)."""
    return os.environ.get("SALVO_DATABASE_POOLING") or "session"


def pooling_refusal(database: str, pooling: str | None = None) -> str | None:
    """Why a pooling setting ($SALVO_DATABASE_POOLING) cannot serve, or None."""
    pooling = pooling or database_pooling()
    if pooling not in POOLINGS:
        return (
            f"SALVO_DATABASE_POOLING must be {' or '.join(POOLINGS)} (how the pooler in "
            f"front of PostgreSQL pools connections), not {pooling!r}."
        )
    if pooling == "transaction" and not database.startswith(POSTGRESQL_SCHEMES):
        return (
            "SALVO_DATABASE_POOLING=transaction is for a pooler in front of PostgreSQL, "
            "but SALVO_DATABASE is a SQLite file: unset it, or serve from PostgreSQL."
        )
    return None


# A position as the API sends it: PostgreSQL's text form of a write-ahead log
# location (pg_lsn), two hexadecimal halves of a 64-bit offset.
POSITION_PATTERN = r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$"


def position_text(position: int) -> str:
    """A position as sent in answers (`16/B374D848`)."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def parse_position(text: str) -> int:
    """A position sent back by a client; ValueError unless it is one."""
    if re.fullmatch(POSITION_PATTERN, text) is None:
        raise ValueError(text)
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def open_store(database: str, *, budget_s: float = 1.0, replica: str | None = None) -> Store:
    """The store a database setting names: a path or `sqlite:///path` is SQLite, a
    `postgresql://` (or `postgres://`) URL is PostgreSQL, reading from the hot
    standby `replica` names if given, and reached through a pooler in transaction
    mode if $SALVO_DATABASE_POOLING says so (every command and the app alike: it is
    a property of the URL's port). Unavailable for a replica or pooling beside SQLite."""
    pooling = database_pooling()
    refusal = replica_refusal(database, replica) or pooling_refusal(database, pooling)
    if refusal is not None:
        raise Unavailable(refusal)
    if database.startswith(POSTGRESQL_SCHEMES):
        from api.store.postgresql.store import PostgresStore

        return PostgresStore(
            database,
            budget_s=budget_s,
            replica=replica or None,
            transaction_pooling=pooling == "transaction",
        )
    from api.store.sqlite.store import SQLiteStore

    return SQLiteStore(database_file(database), budget_s=budget_s)
