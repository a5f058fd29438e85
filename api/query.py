"""The query layer: the one place that builds SQL for reads.

Filters form a registry, after Datasette's filters.py: each query parameter
maps to one function returning a parameterised SQL clause. Sort and group
names map to SQL expressions through allow-lists; nothing from the request is
ever spliced into SQL text.
"""

import datetime
import math
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from api.db import EARTH_RADIUS_KM
from api.pagination import decode_cursor
from api.problems import invalid_parameter
from api.storage import WEAPON_BITS
from schemas.fields import TIMESTAMP_FORMAT

Clause = tuple[str, list[Any]]


@dataclass(frozen=True)
class Scope:
    """What a filter clause is built for: the connection (some filters look at the
    data to choose their form) and whether the query reads one ordered page, where
    testing rows one by one along the sort index beats collecting every match."""

    conn: sqlite3.Connection
    paged: bool


FilterBuilder = Callable[[Scope, Any], Clause]
EVENT_FILTERS: dict[str, FilterBuilder] = {}


def event_filter(param: str) -> Callable[[FilterBuilder], FilterBuilder]:
    """Register the SQL clause for one filter parameter of /events and /stats."""

    def register(build: FilterBuilder) -> FilterBuilder:
        EVENT_FILTERS[param] = build
        return build

    return register


def _marks(values: list[Any]) -> str:
    return ", ".join("?" for _ in values)


def _places_in_box(bbox: tuple[float, float, float, float]) -> Clause:
    """SQL selecting locations.id inside a box, through the R*Tree of places."""
    min_lon, min_lat, max_lon, max_lat = bbox
    select = (
        "SELECT l.id FROM locations_rtree r JOIN locations l ON l.row_id = r.id "
        "WHERE r.min_lat >= ? AND r.max_lat <= ? AND r.min_lon >= ? AND r.max_lon <= ?"
    )
    if min_lon <= max_lon:
        return select, [min_lat, max_lat, min_lon, max_lon]
    # RFC 7946 section 5.2: a box whose west edge is east of its east edge crosses
    # the antimeridian; it is the union of the boxes on either side.
    return (
        f"{select} UNION ALL {select}",
        [min_lat, max_lat, min_lon, 180.0, min_lat, max_lat, -180.0, max_lon],
    )


def _places_near(lat: float, lon: float, radius_km: float) -> Clause:
    """SQL selecting locations.id within radius_km of a point: the R*Tree narrows to
    the circle's bounding box, the great-circle distance decides."""
    dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    min_lat, max_lat = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    cos_lat = min(math.cos(math.radians(lat - dlat)), math.cos(math.radians(lat + dlat)))
    if max_lat == 90.0 or min_lat == -90.0 or cos_lat <= 0 or dlat / cos_lat >= 180:
        box = (-180.0, min_lat, 180.0, max_lat)
    else:
        dlon = dlat / cos_lat
        west, east = lon - dlon, lon + dlon
        box = (
            west + 360 if west < -180 else west,
            min_lat,
            east - 360 if east > 180 else east,
            max_lat,
        )
    candidates, params = _places_in_box(box)
    return (
        f"SELECT id FROM locations WHERE id IN ({candidates}) "
        "AND distance_km(latitude, longitude, ?, ?) <= ?",
        [*params, lat, lon, radius_km],
    )


@event_filter("event_type")
def _event_type(scope: Scope, values: list[str]) -> Clause:
    return f"e.event_type IN ({_marks(values)})", list(values)


@event_filter("date_from")
def _date_from(scope: Scope, value: datetime.date) -> Clause:
    return "e.date >= ?", [value.isoformat()]


@event_filter("date_to")
def _date_to(scope: Scope, value: datetime.date) -> Clause:
    return "e.date <= ?", [value.isoformat()]


@event_filter("country")
def _country(scope: Scope, value: str) -> Clause:
    return "e.country_code = ?", [value.upper()]


@event_filter("admin1")
def _admin1(scope: Scope, value: str) -> Clause:
    return "e.admin1 = ? COLLATE NOCASE", [value]


@event_filter("location")
def _location(scope: Scope, value: str) -> Clause:
    return "e.location_id IN (SELECT id FROM locations WHERE name = ? COLLATE NOCASE)", [value]


@event_filter("bbox")
def _bbox(scope: Scope, value: tuple[float, float, float, float]) -> Clause:
    places, params = _places_in_box(value)
    return f"e.location_id IN ({places})", params


@event_filter("near")
def _near(scope: Scope, value: tuple[float, float, float]) -> Clause:
    places, params = _places_near(*value)
    return f"e.location_id IN ({places})", params


@event_filter("actor")
def _actor(scope: Scope, value: str) -> Clause:
    pattern = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    names = "SELECT name FROM actors WHERE name LIKE ? ESCAPE '\\'"
    if scope.paged:
        # Measured at 1M events: probing each row's actors along the sort index
        # fills a page in under 3 ms for common and uncommon actors alike, where
        # collecting every matching event first took up to 450 ms.
        return (
            "EXISTS (SELECT 1 FROM event_actors a WHERE a.event_id = e.id "
            f"AND a.actor_name IN ({names}))",
            [pattern],
        )
    return f"e.id IN (SELECT event_id FROM event_actors WHERE actor_name IN ({names}))", [pattern]


@event_filter("weapon")
def _weapon(scope: Scope, values: list[str]) -> Clause:
    return "(e.weapons & ?) != 0", [sum(WEAPON_BITS[value] for value in values)]


# min_killed / min_injured are never negative, so the sort expressions (which
# rank an unreported figure as -1) select the same rows and use the same index.
@event_filter("updated_since")
def _updated_since(scope: Scope, value: datetime.datetime) -> Clause:
    return "e.updated_at >= ?", [value.strftime(TIMESTAMP_FORMAT)]


@event_filter("min_killed")
def _min_killed(scope: Scope, value: int) -> Clause:
    return "coalesce(e.killed_best, -1) >= ?", [value]


@event_filter("min_injured")
def _min_injured(scope: Scope, value: int) -> Clause:
    return "coalesce(e.injured_best, -1) >= ?", [value]


# A page filtered by a common term fills after testing a few rows along the
# sort index; one filtered by a rare term is faster to collect and sort.
# Counting matches up to this bound (a few ms at 1M events) decides which.
FTS_COMMON_TERM_MATCHES = 20_000


@event_filter("q")
def _q(scope: Scope, value: str) -> Clause:
    # FTS5 reports a malformed query only when it runs; running the count alone
    # attributes the error to `q` rather than to the whole statement.
    try:
        (matches,) = scope.conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM events_fts WHERE events_fts MATCH ? LIMIT ?)",
            [value, FTS_COMMON_TERM_MATCHES],
        ).fetchone()
    except sqlite3.OperationalError as error:
        raise invalid_parameter("q", f"Not a valid full-text query ({error}).") from None
    if scope.paged and matches >= FTS_COMMON_TERM_MATCHES:
        return (
            "EXISTS (SELECT 1 FROM events_fts f WHERE f.rowid = e.row_id AND events_fts MATCH ?)",
            [value],
        )
    return "e.row_id IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)", [value]


def _where(scope: Scope, args: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """The WHERE conditions and parameters for the filters present in args."""
    conditions: list[str] = []
    params: list[Any] = []
    for name, build in EVENT_FILTERS.items():
        if name in args:
            sql, values = build(scope, args[name])
            conditions.append(sql)
            params.extend(values)
    return conditions, params


def _sql_where(conditions: list[str]) -> str:
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""


# Sort name -> (indexed SQL expression, Python type of its value in a cursor).
EVENT_SORT_KEYS: dict[str, tuple[str, type]] = {
    "date": ("e.date", str),
    "killed": ("coalesce(e.killed_best, -1)", int),
    "injured": ("coalesce(e.injured_best, -1)", int),
}


class EventPages:
    """The events matching args, in args['sort'] order, read a keyset page at a time.

    The filters are turned into SQL once, on construction, so that a bad filter
    (an FTS syntax error) is reported before any page is read or streamed.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        args: dict[str, Any],
        *,
        document: str = "body",
        coordinates: bool = False,
    ) -> None:
        """`document` is the stored rendering to read: `body` (the JSON document, as
        UTF-8 bytes that responses embed as they are) or `csv`."""
        self.conn = conn
        # Only GeoJSON needs the point; leaving it out keeps a page's walk inside the
        # indexes and the documents table.
        point = "e.longitude, e.latitude, " if coordinates else ""
        # CAST hands the document over as bytes: encoding 100 strings measured 11 µs.
        body = "CAST(d.body AS BLOB) AS body, d.digest"
        self.columns = point + {"body": body, "csv": "d.csv"}[document]
        self.sort = args["sort"]
        self.expression, self.value_type = EVENT_SORT_KEYS[self.sort.lstrip("-")]
        self.conditions, self.params = _where(Scope(conn, paged=True), args)

    def sql(self, after: tuple[Any, ...] | None, limit: int) -> tuple[str, list[Any]]:
        """Up to `limit` events after the (sort value, id) key `after`."""
        descending = self.sort.startswith("-")
        conditions, params = list(self.conditions), list(self.params)
        if after is not None:
            conditions.append(f"({self.expression}, e.id) {'<' if descending else '>'} (?, ?)")
            params.extend(after)
        direction = "DESC" if descending else "ASC"
        sql = (
            f"SELECT {self.expression} AS sort_value, e.id, {self.columns} "
            "FROM events e JOIN event_documents d ON d.row_id = e.row_id "
            f"{_sql_where(conditions)} ORDER BY sort_value {direction}, e.id {direction} LIMIT ?"
        )
        return sql, [*params, limit]

    def page(
        self, cursor: str | None, limit: int
    ) -> tuple[list[tuple[Any, ...]], tuple[Any, ...] | None]:
        """Rows after a client's cursor, and the key of the next page, or None on the
        last page. A row is (sort value, id, [longitude, latitude,] body, digest), or
        (sort value, id, csv line)."""
        after = decode_cursor(cursor, self.sort, (self.value_type, str)) if cursor else None
        rows = self._rows(after, limit + 1)
        if len(rows) <= limit:
            return rows, None
        return rows[:limit], rows[limit - 1][:2]

    def all(self, page_size: int = 1000) -> Iterator[tuple[Any, ...]]:
        """Every matching row, page by page, so that memory stays flat."""
        after = None
        while True:
            rows = self._rows(after, page_size)
            yield from rows
            if len(rows) < page_size:
                return
            after = rows[-1][:2]

    def _rows(self, after: tuple[Any, ...] | None, limit: int) -> list[tuple[Any, ...]]:
        # Plain tuples rather than sqlite3.Row, which finds a column by comparing names:
        # reading a page's bodies and digests by name measured ~20 µs.
        cursor = self.conn.cursor()
        cursor.row_factory = None
        return cursor.execute(*self.sql(after, limit)).fetchall()


def changes(conn: sqlite3.Connection, after: int, limit: int) -> list[sqlite3.Row]:
    """Up to `limit` changes after sequence number `after`, in order: every event at
    its latest write (with its document) and every tombstone."""
    return conn.execute(
        "SELECT e.seq, e.id, e.updated_at AS changed_at, e.seq = e.first_seq AS created, "
        "d.body FROM events e JOIN event_documents d ON d.row_id = e.row_id WHERE e.seq > ? "
        "UNION ALL "
        "SELECT seq, id, deleted_at, NULL, NULL FROM event_tombstones WHERE seq > ? "
        "ORDER BY 1 LIMIT ?",
        [after, after, limit],
    ).fetchall()


def tombstone(conn: sqlite3.Connection, event_id: str) -> sqlite3.Row | None:
    """When an event was deleted, or None if it never was."""
    return conn.execute(
        "SELECT deleted_at FROM event_tombstones WHERE id = ?", [event_id]
    ).fetchone()


def get_event(conn: sqlite3.Connection, event_id: str) -> sqlite3.Row | None:
    """The stored JSON document of one event and its digest, or None."""
    return conn.execute(
        "SELECT d.body, d.digest FROM events e JOIN event_documents d ON d.row_id = e.row_id "
        "WHERE e.id = ?",
        [event_id],
    ).fetchone()


def _location_conditions(args: dict[str, Any]) -> Clause:
    conditions, params = [], []
    if "country" in args:
        conditions.append("l.country_code = ?")
        params.append(args["country"].upper())
    if "admin1" in args:
        conditions.append("l.admin1 = ? COLLATE NOCASE")
        params.append(args["admin1"])
    if "precision" in args:
        conditions.append("l.precision = ?")
        params.append(args["precision"])
    if "bbox" in args:
        sql, values = _places_in_box(args["bbox"])
        conditions.append(f"l.id IN ({sql})")
        params.extend(values)
    return " AND ".join(conditions), params


_LOCATIONS = (
    "SELECT l.*, (SELECT count(*) FROM events WHERE location_id = l.id) AS event_count "
    "FROM locations l"
)
_SOURCES = (
    "SELECT s.*, (SELECT count(*) FROM events WHERE source_id = s.id) AS event_count FROM sources s"
)


def list_locations(
    conn: sqlite3.Connection, args: dict[str, Any]
) -> tuple[list[dict[str, Any]], tuple[str] | None]:
    """One page of places (by id) with their event counts, and the key to continue after."""
    condition, params = _location_conditions(args)
    return _page_by_id(conn, _LOCATIONS, [condition] if condition else [], params, args, "l.id")


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


# group_by -> (SQL key expression, SQL expression of the period the key names).
# Coarser-than-the-grouping events keep their own period rather than being
# counted on the first day of it.
_GROUP_KEYS: dict[str | None, tuple[str, str]] = {
    None: ("NULL", "NULL"),
    "event_type": ("e.event_type", "NULL"),
    "admin1": (
        "(SELECT admin1 FROM locations WHERE id = e.location_id)",
        "NULL",
    ),
    "day": (
        "CASE e.date_precision WHEN 'day' THEN e.date WHEN 'month' THEN substr(e.date, 1, 7) "
        "ELSE substr(e.date, 1, 4) END",
        "e.date_precision",
    ),
    # SQLite before 3.46 has no ISO week format: weeks are folded from days in Python.
    "week": (
        "CASE e.date_precision WHEN 'day' THEN e.date WHEN 'month' THEN substr(e.date, 1, 7) "
        "ELSE substr(e.date, 1, 4) END",
        "e.date_precision",
    ),
    "month": (
        "CASE e.date_precision WHEN 'year' THEN substr(e.date, 1, 4) ELSE substr(e.date, 1, 7) END",
        "CASE e.date_precision WHEN 'year' THEN 'year' ELSE 'month' END",
    ),
}

_CASUALTY_SUMS = ", ".join(
    f"coalesce(sum(e.{kind}_best), 0) AS {kind}_best, "
    f"coalesce(sum(coalesce(e.{kind}_low, 0)), 0) AS {kind}_low, "
    f"coalesce(sum(e.{kind}_high), 0) AS {kind}_high, "
    f"count(e.{kind}_best) AS {kind}_reporting, "
    f"coalesce(sum(e.{kind}_best IS NOT NULL AND e.{kind}_high IS NULL), 0) AS {kind}_no_high, "
    f"coalesce(sum(e.{kind}_qualifier = 'at_least'), 0) AS {kind}_lower_bounds, "
    f"coalesce(sum(e.{kind}_qualifier != 'exact'), 0) AS {kind}_inexact"
    for kind in ("killed", "injured")
)


def stats_statements(
    conn: sqlite3.Connection, args: dict[str, Any]
) -> tuple[tuple[str, list[Any]], tuple[str, list[Any]]]:
    """The two aggregates behind /stats, as (SQL, parameters): events and casualties
    per group, and munitions per group and category."""
    key_sql, precision_sql = _GROUP_KEYS[args.get("group_by")]
    conditions, params = _where(Scope(conn, paged=False), args)
    where = _sql_where(conditions)
    events = (
        f"SELECT {key_sql} AS key, {precision_sql} AS precision, count(*) AS events, "
        f"{_CASUALTY_SUMS} FROM events e {where} GROUP BY 1, 2"
    )
    munitions = (
        f"SELECT {key_sql} AS key, {precision_sql} AS precision, m.category, "
        "coalesce(sum(m.launched), 0) AS launched, "
        "coalesce(sum(m.intercepted), 0) AS intercepted, "
        "coalesce(sum(CASE WHEN m.intercepted IS NOT NULL THEN m.launched END), 0) "
        "AS paired_launched, "
        "coalesce(sum(CASE WHEN m.launched IS NOT NULL THEN m.intercepted END), 0) "
        "AS paired_intercepted, "
        "count(DISTINCT m.event_id) AS events "
        f"FROM munitions m JOIN events e ON e.id = m.event_id {where} GROUP BY 1, 2, 3"
    )
    return (events, params), (munitions, params)


def event_stats(conn: sqlite3.Connection, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Totals of events, munitions and casualties over the filtered events, per group."""
    group_by = args.get("group_by")
    events, munitions = stats_statements(conn, args)
    groups: dict[tuple[Any, Any], dict[str, Any]] = {}
    for row in conn.execute(*events):
        group = _group(groups, group_by, row["key"], row["precision"])
        for name in row.keys()[2:]:
            group[name] += row[name]
    for row in conn.execute(*munitions):
        group = _group(groups, group_by, row["key"], row["precision"])
        totals = group["munitions"].setdefault(
            row["category"],
            dict.fromkeys(
                ("launched", "intercepted", "paired_launched", "paired_intercepted", "events"), 0
            ),
        )
        for name in totals:
            totals[name] += row[name]
    if group_by is None and not groups:
        _group(groups, None, None, None)
    return [_render_group(group) for _, group in sorted(groups.items(), key=_chronological)]


def _group(
    groups: dict[tuple[Any, Any], dict[str, Any]], group_by: str | None, key: Any, precision: Any
) -> dict[str, Any]:
    if group_by == "week" and precision == "day":
        year, week, _ = datetime.date.fromisoformat(key).isocalendar()
        key, precision = f"{year}-W{week:02d}", "week"
    if (key, precision) not in groups:
        groups[(key, precision)] = {
            "key": key,
            "precision": precision,
            "events": 0,
            "munitions": {},
            **{
                f"{kind}_{part}": 0
                for kind in ("killed", "injured")
                for part in (
                    "best",
                    "low",
                    "high",
                    "reporting",
                    "no_high",
                    "lower_bounds",
                    "inexact",
                )
            },
        }
    return groups[(key, precision)]


def _chronological(item: tuple[tuple[Any, Any], dict[str, Any]]) -> tuple[str, str]:
    # Periods sort by the day they start, so '2024-05' (a month) sorts before
    # '2024-W22' and '2024-05-30'; other keys sort by name, null first.
    (key, precision), _ = item
    if precision == "week":
        year, week = key.split("-W")
        start = datetime.date.fromisocalendar(int(year), int(week), 1).isoformat()
    elif precision in ("month", "year"):
        start = f"{key}-01" if precision == "month" else f"{key}-01-01"
    else:
        start = key or ""
    return start, key or ""


def _render_group(group: dict[str, Any]) -> dict[str, Any]:
    munitions = []
    for category, totals in sorted(group["munitions"].items()):
        paired = totals["paired_launched"]
        munitions.append(
            {
                "category": category,
                "launched": totals["launched"],
                "intercepted": totals["intercepted"],
                "interception_rate": (
                    round(totals["paired_intercepted"] / paired, 4) if paired else None
                ),
                "events": totals["events"],
            }
        )
    rendered = {
        "key": group["key"],
        "precision": group["precision"],
        "events": group["events"],
        "munitions": munitions,
    }
    for kind in ("killed", "injured"):
        qualifier = "exact"
        if group[f"{kind}_lower_bounds"]:
            qualifier = "at_least"
        elif group[f"{kind}_inexact"]:
            qualifier = "approximately"
        rendered[kind] = {
            "best": group[f"{kind}_best"],
            "low": group[f"{kind}_low"],
            "high": None if group[f"{kind}_no_high"] else group[f"{kind}_high"],
            "qualifier": qualifier,
            "events_reporting": group[f"{kind}_reporting"],
        }
    return rendered
