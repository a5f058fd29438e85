"""SQLite's dialect (api/store/dialect.py): FTS5 for search, the R*Tree of places
and a great-circle function for boxes and radii, NOCASE for names."""

import math
import sqlite3
from dataclasses import dataclass
from typing import Any

from api.store import filters
from api.store.dialect import Clause, Dialect
from api.store.filters import Scope
from api.store.search import AnyOf, Phrase, Search, Term
from api.store.sqlite.connections import EARTH_RADIUS_KM


class SQLiteDialect(Dialect):
    def text_equal(self, column: str) -> str:
        return f"{column} = ? COLLATE NOCASE"

    def text_in(self, column: str, count: int) -> str:
        return f"{column} COLLATE NOCASE IN ({', '.join(['?'] * count)})"

    def text_like(self, column: str) -> str:
        # SQLite's LIKE ignores the case of ASCII letters, as NOCASE does.
        return f"{column} LIKE ? ESCAPE '\\'"

    def places_in_box(self, bbox: tuple[float, float, float, float]) -> Clause:
        return _places_in_box(bbox)

    def places_near(self, lat: float, lon: float, radius_km: float) -> Clause:
        return _places_near(lat, lon, radius_km)

    def search(self, scope: Scope, q: Search) -> Clause:
        return _search(scope, q)

    def search_capped(self, conn: Any, q: Search) -> bool:
        return _search_capped(conn, q)

    def count_true(self, condition: str) -> str:
        # A comparison is 1 or 0 (NULL for a NULL operand, which sum() skips).
        return f"coalesce(sum({condition}), 0)"

    def integer_sum(self, expression: str) -> str:
        return f"sum({expression})"

    def document_bytes(self, column: str) -> str:
        # CAST hands the document over as bytes: encoding 100 strings measured 11 µs.
        return f"CAST({column} AS BLOB)"

    def tuples(self, conn: Any, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        # Plain tuples rather than sqlite3.Row, which finds a column by comparing names.
        cursor = conn.cursor()
        cursor.row_factory = None
        rows: list[tuple[Any, ...]] = cursor.execute(sql, params).fetchall()
        return rows

    def period_start(self, interval: str, date: str) -> str:
        if interval == "week":
            # SQLite before 3.46 has no ISO week format: back to the week's Monday.
            return f"date({date}, printf('-%d days', (strftime('%w', {date}) + 6) % 7))"
        if interval == "month":
            return f"substr({date}, 1, 8) || '01'"
        if interval == "year":
            return f"substr({date}, 1, 5) || '01-01'"
        return date


SQLITE = SQLiteDialect()


# FTS5: every word is written inside double quotes (a quote doubled), which FTS5
# reads as a string whatever it holds; the operators between them are Salvo's.


@dataclass(frozen=True)
class Fts5Query:
    """An FTS5 MATCH expression, and whether the search is the events it does NOT
    match (a search of exclusions only)."""

    expression: str
    negated: bool = False


def to_fts5(search: Search) -> Fts5Query | None:
    """The FTS5 query of a search; None for a search that finds no event."""
    required = " AND ".join(_fts5_term(term) for term in search.required)
    excluded = " OR ".join(_fts5_phrase(phrase) for phrase in search.excluded)
    if required and excluded:
        return Fts5Query(f"({required}) NOT ({excluded})")
    if required:
        return Fts5Query(required)
    if excluded:
        return Fts5Query(excluded, negated=True)
    return None


def _fts5_term(term: Term) -> str:
    if isinstance(term, AnyOf):
        return "(" + " OR ".join(_fts5_phrase(phrase) for phrase in term.phrases) + ")"
    return _fts5_phrase(term)


def _fts5_phrase(phrase: Phrase) -> str:
    quoted = '"' + " ".join(phrase.words).replace('"', '""') + '"'
    return quoted + " *" if phrase.prefix else quoted


# A page filtered by a common term fills after testing a few rows along the
# sort index; one filtered by a rare term is faster to collect and sort.
# Counting matches up to this bound (a few ms at 1M events) decides which.
FTS_COMMON_TERM_MATCHES = 20_000


def _search(scope: Scope, q: Search) -> Clause:
    query = to_fts5(q)
    if query is None:
        return "0", []  # no word to search for: no event has it
    keeps, params = _searched(query)
    if not scope.paged:
        if _search_capped(scope.conn, q):
            return "e.row_id IN (SELECT value FROM json_each(?))", [_most_recent(scope.conn, query)]
        return keeps, params
    if query.negated:
        return keeps, params
    # A prefix term (word*) is expanded to every indexed word it begins at each
    # evaluation, so probing row by row repeats that: at 100,000 events `a*` took
    # 4.2 s a page probed and 0.08 s collected once (8 OR'd one-letter prefixes,
    # 6.9 s against 0.19 s).
    if _fts5_matches(scope.conn, query, FTS_COMMON_TERM_MATCHES) and not q.has_prefix:
        return (
            "EXISTS (SELECT 1 FROM events_fts f WHERE f.rowid = e.row_id AND events_fts MATCH ?)",
            params,
        )
    return keeps, params


def _search_capped(conn: sqlite3.Connection, q: Search) -> bool:
    """Whether a search matches more events than its totals sum (SEARCH_TOTALS_CAP)."""
    query = to_fts5(q)
    if query is None:
        return False
    if not query.negated:
        return _fts5_matches(conn, query, filters.SEARCH_TOTALS_CAP + 1)
    keeps, params = _searched(query)
    (kept,) = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM events e WHERE {keeps} LIMIT ?)",
        [*params, filters.SEARCH_TOTALS_CAP + 1],
    ).fetchone()
    return bool(kept > filters.SEARCH_TOTALS_CAP)


def _searched(query: Fts5Query) -> Clause:
    """The condition on events `e` that keeps those a compiled search finds."""
    matching = "SELECT rowid FROM events_fts WHERE events_fts MATCH ?"
    return f"e.row_id {'NOT IN' if query.negated else 'IN'} ({matching})", [query.expression]


def _most_recent(conn: sqlite3.Connection, query: Fts5Query) -> str:
    """The row_id of the SEARCH_TOTALS_CAP most recent events a search keeps, as a
    JSON array, read once per request: finding them builds the list of every match
    (the cost of the cap), which each statement of the totals would repeat."""
    # Kept for the read the connection serves now (ReadConnection.memo); a plain
    # connection keeps none.
    found: dict[Any, Any] = getattr(conn, "memo", {})
    if query not in found:
        keeps, params = _searched(query)
        (found[query],) = conn.execute(
            "SELECT json_group_array(row_id) FROM (SELECT e.row_id FROM events e "
            f"INDEXED BY events_date WHERE {keeps} ORDER BY e.date DESC, e.id DESC LIMIT ?)",
            [*params, filters.SEARCH_TOTALS_CAP],
        ).fetchone()
    return found[query]


def _fts5_matches(conn: sqlite3.Connection, query: Fts5Query, at_least: int) -> bool:
    """Whether FTS5 finds at least this many rows for a query (counted up to it)."""
    (matches,) = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM events_fts WHERE events_fts MATCH ? LIMIT ?)",
        [query.expression, at_least],
    ).fetchone()
    return bool(matches >= at_least)


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
