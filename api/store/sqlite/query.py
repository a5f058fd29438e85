"""The query layer: the SQL of every read. Filters come from the one registry in
api/store/filters.py; sort and group names map to SQL expressions through allow-lists;
nothing from the request is ever spliced into SQL text.
"""

import copy
import datetime
import functools
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import orjson

from api.store import Change, FeedPosition, StoredEvent, filters
from api.store.cursors import decode_cursor, decode_page_cursor, items_within_bound
from api.store.dialect import Executes
from api.store.filters import LOCATIONS, Scope
from api.store.sqlite import stats
from api.store.sqlite.dialect import SQLITE
from api.store.sqlite.layout import EVENTS_WITH_DOCUMENTS, HIGHEST_SEQ, OutdatedLayout

_EVENT_FILTERS = filters.filters_of(filters.EVENTS)
_LOCATION_FILTERS = filters.filters_of(LOCATIONS)
# Filters of events that are not filters of places: given to /locations, they choose
# the events counted rather than the places.
_EVENT_ONLY_FILTERS = tuple(f for f in _EVENT_FILTERS if LOCATIONS not in f.resources)


def _sql_where(conditions: list[str]) -> str:
    conditions = [c for c in conditions if c]
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""


# Sort name -> (indexed SQL expression, Python type of its value in a cursor).
EVENT_SORT_KEYS: dict[str, tuple[str, type]] = {
    "date": ("e.date", str),
    "killed": ("coalesce(e.killed_best, -1)", int),
    "injured": ("coalesce(e.injured_best, -1)", int),
}


class EventColumns(NamedTuple):
    """Events read for a page or an export, column by column (empty when none): their
    keyset position, their stored JSON documents (UTF-8 bytes that responses embed as
    they are) or CSV lines, the documents' digests, and for GeoJSON their points.

    Columns rather than a named tuple per row: transposing a page is one C call,
    where building 100 row objects measured ~30 µs, a tenth of serving the page."""

    sort_values: tuple[Any, ...] = ()
    ids: tuple[str, ...] = ()
    documents: tuple[Any, ...] = ()
    digests: tuple[bytes, ...] = ()
    longitudes: tuple[float, ...] = ()
    latitudes: tuple[float, ...] = ()

    @classmethod
    def of(cls, rows: list[tuple[Any, ...]]) -> "EventColumns":
        return cls(*zip(*rows, strict=True))


class EventPages:
    """The events matching args, in args['sort'] order, read a keyset page at a time.

    The filters are turned into SQL once, on construction, so that a bad filter
    (an FTS syntax error) is reported before any page is read or streamed.
    """

    def __init__(
        self,
        conn: Executes,
        args: dict[str, Any],
        *,
        csv: bool = False,
        coordinates: bool = False,
    ) -> None:
        """The documents read are the JSON ones with their digests, and the points when
        `coordinates`; or the CSV lines when `csv`. `conn` is a SQLite connection or
        another engine's (stats.dialect_of)."""
        self.conn = conn
        self.dialect = stats.dialect_of(conn)
        if csv:
            self.columns = "d.csv"
        else:
            # Only GeoJSON needs the point; leaving it out keeps a page's walk inside
            # the indexes and the documents table.
            point = ", e.longitude, e.latitude" if coordinates else ""
            self.columns = f"{self.dialect.document_bytes('d.body')} AS body, d.digest{point}"
        self.sort = args["sort"]
        self.expression, self.value_type = EVENT_SORT_KEYS[self.sort.lstrip("-")]
        self.condition, self.params = filters.where(
            Scope.events(self.dialect, conn, paged=True), _EVENT_FILTERS, args
        )

    def on(self, conn: Executes) -> "EventPages":
        """These pages, read on another connection of the same engine (PostgreSQL reads
        each page on a connection its pool lends for that page)."""
        pages = copy.copy(self)
        pages.conn = conn
        return pages

    def sql(
        self,
        after: tuple[Any, ...] | None,
        limit: int,
        backwards: bool = False,
        versioned: bool = False,
    ) -> tuple[str, list[Any]]:
        """Up to `limit` events after the (sort value, id) key `after`; `backwards`,
        those before it, nearest first. `versioned` (a page's statement): with the
        dialect's events_version as a last column, where it has one."""
        descending = self.sort.startswith("-") != backwards
        conditions, params = [self.condition], list(self.params)
        if after is not None:
            conditions.append(f"({self.expression}, e.id) {'<' if descending else '>'} (?, ?)")
            params.extend(after)
        direction = "DESC" if descending else "ASC"
        columns = self.columns
        if versioned and self.dialect.events_version is not None:
            columns += f", {self.dialect.events_version} AS events_version"
        sql = (
            f"SELECT {self.expression} AS sort_value, e.id, {columns} "
            f"FROM {EVENTS_WITH_DOCUMENTS} "
            f"{_sql_where(conditions)} ORDER BY sort_value {direction}, e.id {direction} LIMIT ?"
        )
        return sql, [*params, limit]

    def page(self, cursor: str | None, limit: int) -> "Page":
        """The events after a client's `next` cursor (or before its `prev` one), up
        to `limit` of them and as many as fit MAX_PAGE_BYTES, with the keys the
        next and previous pages continue from (None on the last and first pages)."""
        if not cursor:
            after, backwards = None, False
        else:
            after, backwards = decode_page_cursor(cursor, self.sort, (self.value_type, str))
        statement = self.sql(after, limit + 1, backwards, versioned=True)
        rows = self.dialect.tuples(self.conn, *statement)
        version = None
        if self.dialect.events_version is not None and rows:
            version = rows[0][-1]
            rows = [row[:-1] for row in rows]
        if backwards:
            # Read nearest first: the page is the nearest rows that fit, in order.
            served = items_within_bound(len(row[2]) for row in rows[:limit])
            page = EventColumns.of(rows[:served][::-1])
            later = _key(page, -1) if page.ids else None
            return Page(page, later, _key(page, 0) if served < len(rows) else None, version)
        served = items_within_bound(len(row[2]) for row in rows[:limit])
        page = EventColumns.of(rows[:served])
        later = _key(page, -1) if served < len(rows) else None
        # A page reached through a cursor has events before it (unless deleted since).
        earlier = _key(page, 0) if after is not None and page.ids else None
        return Page(page, later, earlier, version)

    def all(
        self,
        page_size: int = 1000,
        lend: Callable[[Callable[["EventPages"], EventColumns]], EventColumns] | None = None,
    ) -> Iterator[EventColumns]:
        """Every matching event, a page at a time, so that memory stays flat. With
        `lend`, each page is read by lend(read), which runs `read` on these pages
        bound to a connection lent for that page alone (PostgreSQL's: a client taking
        an export slowly then holds no connection between pages)."""
        after = None
        while True:
            read = functools.partial(EventPages._page_after, after=after, size=page_size)
            page = read(self) if lend is None else lend(read)
            yield page
            if len(page.ids) < page_size:
                return
            after = (page.sort_values[-1], page.ids[-1])

    def _page_after(self, after: tuple[Any, ...] | None, size: int) -> EventColumns:
        return EventColumns.of(self._rows(after, size))

    def _rows(
        self, after: tuple[Any, ...] | None, limit: int, backwards: bool = False
    ) -> list[tuple[Any, ...]]:
        return self.dialect.tuples(self.conn, *self.sql(after, limit, backwards))


class Page(NamedTuple):
    """A page of events and the keys the pages after and before it continue from;
    and the version of the events it was read at, where the dialect reads one
    (events_version; None on an empty page)."""

    events: EventColumns
    next_key: tuple[Any, ...] | None
    prev_key: tuple[Any, ...] | None
    version: Any = None


def _key(page: EventColumns, index: int) -> tuple[Any, ...]:
    return page.sort_values[index], page.ids[index]


def changes(conn: Executes, after: int, limit: int) -> tuple[list[Change], bool]:
    """Up to `limit` changes after sequence number `after`, in order and as many as
    fit MAX_PAGE_BYTES: every event at its latest write (with its document) and every
    tombstone; and whether more follow. `conn` is a SQLite connection or another
    engine's (stats.dialect_of)."""
    dialect = stats.dialect_of(conn)
    # Each side is cut to its first limit + 1 seqs (through its seq index) before the
    # join and the union: the page can hold no more of either. PostgreSQL plans the
    # uncut union over a join as a whole: a first sync's page (after 0) joined every
    # event to its document and sorted them, 134-180 ms at 100,000 events (up to
    # 0.9 s under `make soak-postgresql`), where the cut page takes 1 ms.
    rows = dialect.tuples(
        conn,
        "SELECT e.seq, e.id, e.updated_at AS changed_at, e.seq = e.first_seq AS created, "
        f"{dialect.document_bytes('d.body')} FROM {EVENTS_WITH_DOCUMENTS} WHERE e.seq IN "
        "(SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT ?) "
        "UNION ALL "
        "SELECT seq, id, deleted_at, NULL, NULL FROM event_tombstones WHERE seq IN "
        "(SELECT seq FROM event_tombstones WHERE seq > ? ORDER BY seq LIMIT ?) "
        "ORDER BY 1 LIMIT ?",
        [after, limit + 1, after, limit + 1, limit + 1],
    )
    served = items_within_bound(len(row[4] or b"") for row in rows[:limit])
    return [Change(*row) for row in rows[:served]], served < len(rows)


# Read in one statement, so that the three values belong to one snapshot.
FEED_POSITION = (
    f"SELECT id, old_tokens_until, {HIGHEST_SEQ} FROM change_history WHERE singleton = 1"
)


def feed_position(conn: sqlite3.Connection, path: str) -> FeedPosition:
    """The change feed's position in the database at path (named in errors).
    Raises OutdatedLayout if the database predates change histories (`python -m api
    init` adds one)."""
    try:
        row = conn.execute(FEED_POSITION).fetchone()
    except sqlite3.OperationalError as error:
        if "no such table: change_history" not in str(error):
            raise
        raise OutdatedLayout(path, ["change_history"], []) from error
    return FeedPosition(*row)


def tombstone(conn: sqlite3.Connection, event_id: str) -> str | None:
    """When an event was deleted, or None if it never was."""
    row = conn.execute(
        "SELECT deleted_at FROM event_tombstones WHERE id = ?", [event_id]
    ).fetchone()
    return None if row is None else str(row[0])


def get_event(conn: sqlite3.Connection, event_id: str) -> StoredEvent | None:
    """The stored document of one event, or None."""
    row = conn.execute(
        f"SELECT d.body, d.digest FROM {EVENTS_WITH_DOCUMENTS} WHERE e.id = ?", [event_id]
    ).fetchone()
    return None if row is None else StoredEvent(row[0], row[1])


# Event counts come from the all-time rollups (api/store/sqlite/rollups.py): a few rows a place or
# source, where counting its events walked thousands of index entries (31-90 ms a
# page of places at 1,000,000 events).
_LOCATIONS = (
    "SELECT l.*, (SELECT coalesce(sum(events), 0) FROM stats_totals "
    "WHERE location_id = l.id AND category = '') AS event_count FROM locations l"
)
_SOURCES = (
    "SELECT s.*, (SELECT coalesce(sum(events), 0) FROM stats_sources "
    "WHERE source_id = s.id AND category = '') AS event_count FROM sources s"
)


def list_locations(
    conn: sqlite3.Connection, args: dict[str, Any]
) -> tuple[list[dict[str, Any]], tuple[str] | None]:
    """One page of places (by id) with their event counts, and the key to continue
    after. With a filter of events (a type, dates, a weapon...), the places with a
    matching event, each with how many: a map's aggregation of a filtered view."""
    condition, params = filters.where(Scope.locations(SQLITE, conn), _LOCATION_FILTERS, args)
    if not any(name in args for f in _EVENT_ONLY_FILTERS for name in f.params):
        return _page_by_id(conn, _LOCATIONS, [condition], params, args, "l.id")
    counts = stats.events_by_place(
        conn, {name: args[name] for f in _EVENT_FILTERS for name in f.params if name in args}
    )
    rows, next_key = _page_by_id(
        conn,
        "SELECT l.* FROM locations l",
        [condition, "l.id IN (SELECT value FROM json_each(?))"],
        [*params, orjson.dumps(list(counts)).decode()],
        args,
        "l.id",
    )
    return [{**row, "event_count": counts[row["id"]]} for row in rows], next_key


def list_sources(
    conn: sqlite3.Connection, args: dict[str, Any]
) -> tuple[list[dict[str, Any]], tuple[str] | None]:
    """One page of sources (by id) with their event counts, and the key to continue after."""
    rows, next_key = _page_by_id(conn, _SOURCES, [], [], args, "s.id")
    return [_source(row) for row in rows], next_key


def get_location(conn: sqlite3.Connection, location_id: str) -> dict[str, Any] | None:
    row = conn.execute(f"{_LOCATIONS} WHERE l.id = ?", [location_id]).fetchone()
    return dict(row) if row else None


def get_source(conn: sqlite3.Connection, source_id: str) -> dict[str, Any] | None:
    row = conn.execute(f"{_SOURCES} WHERE s.id = ?", [source_id]).fetchone()
    return _source(dict(row)) if row else None


def _source(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "published": datetime.date.fromisoformat(row["published"])}


def _page_by_id(
    conn: sqlite3.Connection,
    select: str,
    conditions: list[str],
    params: list[Any],
    args: dict[str, Any],
    id_column: str,
) -> tuple[list[dict[str, Any]], tuple[str] | None]:
    if "cursor" in args:
        (after,) = decode_cursor(args["cursor"], "id", (str,))
        conditions = [*conditions, f"{id_column} > ?"]
        params = [*params, after]
    limit = args["limit"]
    rows = conn.execute(
        f"{select} {_sql_where(conditions)} ORDER BY {id_column} LIMIT ?", [*params, limit + 1]
    ).fetchall()
    page = [dict(row) for row in rows[:limit]]
    return page, ((page[-1]["id"],) if len(rows) > limit else None)
