"""PostgreSQL's dialect (api/store/dialect.py): lower() under "C" for names, PostGIS
for boxes and radii, a tsquery over the tsvector `event_search.words` for search; and
`to_pyformat`, the one conversion of Salvo's `?` parameters to psycopg's.

**Parameters.** The filter registry, the dialects and the shared SQL write positional
`?` parameters; psycopg takes `%s` (and reads a bare `%` as the start of one). A
statement goes through `to_pyformat` once, where it is executed: `execute` here (the
tests' statements and this module's own), and the PostgresStore's cursors (the next
slice), in the one place they execute a statement, so no other code writes `%s`; it
is cached per statement text. It is a plain replacement outside quoted literals,
quoted identifiers and comments, which is enough because no request text is ever
spliced into Salvo's SQL (every value is a parameter); tests/test_postgresql_dialect.py
proves that literals and identifiers holding `?`, `%` and quotes come through
unchanged. PostgreSQL's operators spelled with `?` (jsonb's `?`, `?|`, `?&`) cannot
be written in shared SQL: use their functions.

**Case.** SQLite's NOCASE folds the 26 ASCII letters and nothing else. PostgreSQL's
lower() under the "C" collation does the same, so `lower(column COLLATE "C") =
lower(? COLLATE "C")` matches exactly the rows NOCASE does, whatever the database's
own collation (under ICU or a libc locale, lower() folds `Київ` too), and it is
answered from the layout's lower() indexes (its text columns are "C": layout.TEXT).
Not citext: one more extension on the partner's server; its folding follows the
database's LC_CTYPE, so two servers could disagree, with each other and with
SQLite; and it would make the keys of the columns it types case-insensitive
(actors named `Russia` and `russia` are two rows on SQLite).

**Search.** Salvo's grammar (api/store/search.py) says what a word is, for the notes
and for the query alike: search_document builds the tsvector from the words Python
finds, folded as FTS5's unicode61 tokeniser folds them, and to_tsquery_text writes
the query over the same words, each one quoted, with `:*` for a prefix, `<->` for a
phrase, `|` for OR, `!` for an exclusion. Both reach PostgreSQL as parameters cast
to tsvector and tsquery, and neither goes through a text search parser, not even
to_tsquery's: that parser splits `S-300` into `s` and the number `-300`, keeps
`Strilecha-Lyptsi` as one more word beside its parts (a phrase around it then misses
by a position), and drops `½` (to_tsquery of the quoted `½` is an empty query);
websearch_to_tsquery also drops prefixes. FTS5 finds them all, and so do the lexemes
cast here, since the document holds exactly the words the query names.
"""

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import psycopg

from api.store import filters
from api.store.dialect import Clause, Dialect
from api.store.filters import Scope
from api.store.search import WORD, AnyOf, Phrase, Search, Term

# A parameter with the case of its ASCII letters folded (NOCASE's folding).
_FOLDED = 'lower(CAST(? AS text) COLLATE "C")'


class PostgreSQLDialect(Dialect):
    # Every write advances the change counter (layout.lock_changes); the history id
    # tells a restored database, whose counter may come back to a number it had
    # with other events, once `renew-history` ran (docs/operations.md).
    events_version = (
        "(SELECT c.highest_seq || ':' || h.id FROM change_counter c CROSS JOIN change_history h)"
    )
    grouping_sets = True

    def text_equal(self, column: str) -> str:
        return f'lower({column} COLLATE "C") = {_FOLDED}'

    def text_in(self, column: str, count: int) -> str:
        return f'lower({column} COLLATE "C") IN ({", ".join([_FOLDED] * count)})'

    def text_like(self, column: str) -> str:
        # Not ILIKE: it folds every letter by the database's collation, where SQLite
        # folds ASCII only.
        return f"lower({column} COLLATE \"C\") LIKE {_FOLDED} ESCAPE '\\'"

    def places_in_box(self, bbox: tuple[float, float, float, float]) -> Clause:
        return _places_in_box(bbox)

    def document_bytes(self, column: str) -> str:
        return f"convert_to({column}, 'UTF8')"

    def tuples(self, conn: Any, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        # In binary: a document (bytea) comes as its bytes, where as text the server
        # writes it in hex and psycopg decodes it. A page of 100 documents at 1M
        # events: 810 -> 545 µs, the server's CPU 100 µs less and psycopg's 190.
        rows: list[tuple[Any, ...]] = execute(conn, sql, params, binary=True).fetchall()
        return rows

    def places_near(self, lat: float, lon: float, radius_km: float) -> Clause:
        return _places_near(lat, lon, radius_km)

    def search(self, scope: Scope, q: Search) -> Clause:
        return _search(scope, q)

    def search_capped(self, conn: Any, q: Search) -> bool:
        return _search_capped(conn, q)

    def count_true(self, condition: str) -> str:
        # A boolean has no sum; count(*) counts the rows where it is true.
        return f"count(*) FILTER (WHERE {condition})"

    def integer_sum(self, expression: str) -> str:
        # sum() of a bigint is numeric (psycopg's Decimal): cast back, as a rollup's
        # column is a bigint and its sums stay within one.
        return f"CAST(sum({expression}) AS bigint)"

    def period_start(self, interval: str, date: str) -> str:
        if interval == "week":
            # date_trunc's week is the ISO week, which starts on Monday.
            return f"to_char(date_trunc('week', CAST({date} AS date)), 'YYYY-MM-DD')"
        if interval == "month":
            return f"substr({date}, 1, 8) || '01'"
        if interval == "year":
            return f"substr({date}, 1, 5) || '01-01'"
        return date


POSTGRESQL = PostgreSQLDialect()


# Parameters.


@functools.lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """The statement with each `?` parameter as psycopg's `%s`, and every `%` doubled
    (psycopg reads a bare one as a parameter, inside quotes too): to be executed with
    a sequence of parameters, possibly empty. Quoted literals ('...', '' for a
    quote), quoted identifiers ("...") and comments (-- to the end of the line,
    /* ... */) are kept as they are, their `?` included. Raises ValueError for a
    quote or comment left open, and for a dollar-quoted or E'' string, whose ends
    this does not look for."""
    out: list[str] = []
    end: str | None = None  # what closes the quote or comment we are in
    i = 0
    while i < len(sql):
        char, pair = sql[i], sql[i : i + 2]
        if char == "%":
            out.append("%%")
        elif end is not None:
            if sql.startswith(end, i):
                out.append(end)
                i += len(end)
                end = None  # a doubled quote closes and opens again: the same text
                continue
            out.append(char)
        elif pair in ("--", "/*"):
            end = "\n" if pair == "--" else "*/"
            out.append(pair)
            i += 2
            continue
        elif char in "'\"":
            if char == "'" and i > 0 and sql[i - 1] in "eE" and _starts_word(sql, i - 1):
                raise ValueError("E'' strings (backslash escapes) are not written in shared SQL")
            end = char
            out.append(char)
        elif char == "$" and i + 1 < len(sql) and (sql[i + 1] == "$" or sql[i + 1].isalpha()):
            raise ValueError("dollar quotes are not written in shared SQL")
        elif char == "?":
            out.append("%s")
        else:
            out.append(char)
        i += 1
    if end is not None and end != "\n":
        raise ValueError(f"{end!r} missing: a quote or comment left open in {sql!r}")
    return "".join(out)


def _starts_word(sql: str, i: int) -> bool:
    return i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")


def execute(
    conn: "psycopg.Connection[Any] | Reading",
    sql: str,
    params: Sequence[Any] = (),
    prepare: bool | None = None,
    binary: bool = False,
) -> psycopg.Cursor[Any]:
    """Execute a statement written with `?` parameters (to_pyformat); `prepare` as
    psycopg's (False: planned for its values at each execution), `binary` its results
    in PostgreSQL's binary format."""
    if isinstance(conn, Reading):
        conn = conn.conn
    return conn.execute(to_pyformat(sql), list(params), prepare=prepare, binary=binary)


class Reading:
    """A connection for one read of the shared SQL that runs statements on a
    connection-like object (the /stats planner, api/store/sqlite/stats.py): its
    `execute` takes `?` statements, it names its dialect, and it keeps the memo
    of a search's most recent matches for the read (_most_recent), as SQLite's
    ReadConnection does. The dialect's own functions take it or a bare connection."""

    dialect = POSTGRESQL

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.memo: dict[Any, Any] = {}

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return execute(self.conn, sql, params)


# Places.


def _places_in_box(bbox: tuple[float, float, float, float]) -> Clause:
    """SQL selecting locations.id inside a box (west, south, east, north), edges
    included, as SQLite's R*Tree query: the GiST index on the points' geometry finds
    the candidates (its boxes are rounded outwards, so it never misses one), the
    stored latitude and longitude decide."""
    west, south, east, north = bbox
    select = (
        "SELECT id FROM locations WHERE coordinates::geometry && "
        "ST_MakeEnvelope(?, ?, ?, ?, 4326) "
        "AND latitude BETWEEN ? AND ? AND longitude BETWEEN ? AND ?"
    )

    def side(west: float, east: float) -> list[Any]:
        return [west, south, east, north, south, north, west, east]

    if west <= east:
        return select, side(west, east)
    # RFC 7946 section 5.2: a box whose west edge is east of its east edge crosses
    # the antimeridian; it is the union of the boxes on either side.
    return f"{select} UNION ALL {select}", [*side(west, 180.0), *side(-180.0, east)]


def _places_near(lat: float, lon: float, radius_km: float) -> Clause:
    """SQL selecting locations.id within radius_km of a point, great-circle: the
    distance on PostGIS's sphere (use_spheroid false; its radius is the mean
    6,371,008.8 m, SQLite's distance_km's), through the GiST index of the points."""
    return (
        "SELECT id FROM locations WHERE ST_DWithin(coordinates, "
        "ST_SetSRID(ST_MakePoint(?, ?), 4326)::geography, ?, false)",
        [lon, lat, radius_km * 1000],
    )


# Search: the document.

# PostgreSQL's limits for a lexeme (2,047 bytes) and its positions (16,383).
_LEXEME_BYTES = 2046
_LAST_POSITION = 16383


# The combining marks FTS5's unicode61 tokeniser takes for diacritics (SQLite's
# sqlite3Fts5UnicodeIsdiacritic): part of a word, and removed from it (`e` followed by
# U+0301 is `e`). Other marks separate words, as they do for the grammar's pattern.
_FTS5_DIACRITICS = re.compile(
    "[\u0300-\u0304\u0306-\u030c\u030f\u0311\u031b\u0323-\u0328\u032d\u032e\u0330\u0331]"
)


def words(text: str) -> list[str]:
    """The words of a text as search.py's grammar finds them (runs of letters and
    digits), with FTS5's diacritic marks taken out first, each folded as FTS5's
    unicode61 tokeniser folds it (fold)."""
    return [fold(word) for word in WORD.findall(_FTS5_DIACRITICS.sub("", text))]


def fold(word: str) -> str:
    """A word as FTS5's unicode61 tokeniser (remove_diacritics 1) indexes it: each
    character case-folded on its own where its folding is one character (a final
    sigma is a sigma, `ẞ` is `ß`, `ﬁ` stays), else lowercased; and a letter that is an ASCII
    letter with one diacritic loses it (`ó` is `o`, `Ł` stays `ł`, `ǖ` keeps its two).
    Other scripts keep theirs (`й`, `ї`, Greek accents). tests/test_postgresql_dialect.py
    compares it with FTS5 over every Latin, Greek and Cyrillic letter."""
    folded = []
    for char in word:
        simple = char.casefold()
        if len(simple) != 1:
            simple = char.lower()
        for lower in simple:
            if unicodedata.combining(lower):
                continue  # `İ` lowers to `i` and a combining dot
            decomposed = unicodedata.normalize("NFD", lower)
            if (
                len(decomposed) == 2
                and decomposed[0].isascii()
                and decomposed[0].isalpha()
                and unicodedata.combining(decomposed[1])
            ):
                lower = decomposed[0]
            folded.append(lower)
    return "".join(folded)


def _lexeme(word: str) -> str:
    """A word quoted as a lexeme of tsvector's and tsquery's input: in single quotes,
    a quote or backslash escaped (the grammar's words hold neither)."""
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def search_document(notes: str, place: str) -> str:
    """The tsvector of an event's words (`event_search.words`, as text to cast:
    `CAST(? AS tsvector)`), what SQLite's events_fts row holds: the words of the
    notes, then those of the place (its name and region, as writes.py joins them).
    The place's words start two positions after the last of the notes, so that no
    phrase runs from one into the other (FTS5 matches a phrase within one column). A
    word longer than a lexeme may be (2,046 bytes) is cut there: a search is 200
    characters at most, so the cut word is still found by every prefix a search can
    hold."""
    positions: dict[str, list[int]] = {}
    position = 0
    for text in (notes, place):
        for word in words(text):
            position = min(position + 1, _LAST_POSITION)
            lexeme = word.encode()[:_LEXEME_BYTES].decode(errors="ignore")
            positions.setdefault(lexeme, []).append(position)
        position += 1
    return " ".join(
        f"{_lexeme(lexeme)}:{','.join(map(str, found))}" for lexeme, found in positions.items()
    )


# Search: the query.


def to_tsquery_text(search: Search) -> str | None:
    """The tsquery (as text, to cast: `CAST(? AS tsquery)`) an event's words match
    when the search finds it; None for a search that finds no event."""
    required = " & ".join(_term(term) for term in search.required)
    excluded = " | ".join(_phrase(phrase) for phrase in search.excluded)
    if required and excluded:
        return f"({required}) & !({excluded})"
    if required:
        return required
    if excluded:
        return f"!({excluded})"
    return None


def _term(term: Term) -> str:
    if isinstance(term, AnyOf):
        return "(" + " | ".join(_phrase(phrase) for phrase in term.phrases) + ")"
    return _phrase(term)


def _phrase(phrase: Phrase) -> str:
    lexemes = [_lexeme(fold(word)) for word in phrase.words]
    if phrase.prefix:
        lexemes[-1] += ":*"
    joined = " <-> ".join(lexemes)
    return f"({joined})" if len(lexemes) > 1 else joined


# Events whose words match a tsquery given as text.
_MATCHING = (
    "EXISTS (SELECT 1 FROM event_search s WHERE s.row_id = e.row_id "
    "AND s.words @@ CAST(? AS tsquery))"
)


def _search(scope: Scope, q: Search) -> Clause:
    """The condition on events `e` that keeps those a search finds. PostgreSQL's
    planner weighs the GIN index against walking the page's sort index (it keeps
    statistics of the lexemes), which SQLite's dialect decides by counting; a total
    (`scope.paged` false) is cut to the SEARCH_TOTALS_CAP most recent matches."""
    query = to_tsquery_text(q)
    if query is None:
        return "false", []  # no word to search for: no event has it
    if not scope.paged and _search_capped(scope.conn, q):
        # A semi-join with the matches, not `e.row_id = ANY(?)`: with the array a
        # filter, the planner answers a series' min(date), max(date) by walking the
        # date index from its oldest end, testing each event against the 5,000 ids
        # (2.5 s at 100,000 events; the join, 31 ms).
        return "e.row_id IN (SELECT unnest(?))", [_most_recent(scope.conn, query)]
    return _MATCHING, [query]


def _search_capped(conn: psycopg.Connection[Any], q: Search) -> bool:
    """Whether a search matches more events than its totals sum (SEARCH_TOTALS_CAP),
    found once per read where the connection keeps a memo (_most_recent): a series
    asks it of each statement it builds (four times for `q` by month)."""
    query = to_tsquery_text(q)
    if query is None:
        return False
    found: dict[Any, Any] = getattr(conn, "memo", {})
    key = ("capped", query)
    if key not in found:
        (matches,) = execute(
            conn,
            "SELECT count(*) FROM (SELECT 1 FROM event_search s "
            "WHERE s.words @@ CAST(? AS tsquery) LIMIT ?) AS found",
            [query, filters.SEARCH_TOTALS_CAP + 1],
        ).fetchone() or (0,)
        found[key] = bool(matches > filters.SEARCH_TOTALS_CAP)
    return bool(found[key])


def _most_recent(conn: psycopg.Connection[Any], query: str) -> list[int]:
    """The row_id of the SEARCH_TOTALS_CAP most recent events a search keeps (by date,
    then id), read once per request where the connection keeps a memo (as SQLite's
    ReadConnection does), since each statement of the totals would repeat it."""
    found: dict[Any, Any] = getattr(conn, "memo", {})
    if query not in found:
        found[query] = _newest_matches(conn, query)
    return list(found[query])


# The smallest window of the most recent events a search's matches are looked for
# in, in caps; and how many more matches than the cap a window is sized to hold.
_LEAST_WINDOW = 2
_MARGIN = 1.25


def _newest_matches(conn: psycopg.Connection[Any], query: str) -> list[int]:
    """The SEARCH_TOTALS_CAP most recent matches of a search that has more, from
    event_search alone (it keeps each event's date and id: layout, "Search"), looked
    for among the most recent events first: a window of them, from the date on which
    the window's oldest falls (stats_days' counts of events per day say which) to the
    newest, sized to hold a quarter more matches than the cap at the share of events
    the planner expects to match (its statistics of the lexemes). Within a window, the
    planner intersects the GIN index's matches with event_search_date's range
    (BitmapAnd), or walks that index newest first when most events match (an
    exclusion); either way it reads the rows of the window's matches alone. A window
    holding fewer than the cap's matches is widened at the share that did match (to
    twice its size at least), until one holds enough, or the window is every event.

    Measured at 1,000,000 events (README, "On PostgreSQL"), for a term in 12% of
    them: walking events_date and looking up each event's words, as this did first,
    450-500 ms (46,000 events probed, their pages read at random in two tables);
    every match from the GIN index with a top-N sort, 200 ms (every page of
    event_search, since 12% of the events hold a match on each); within a window of
    62,000 events, 31-42 ms."""
    cap = filters.SEARCH_TOTALS_CAP
    days: list[tuple[str, int]] = execute(
        conn,
        "SELECT date, CAST(sum(events) AS bigint) FROM stats_days WHERE category = '' "
        "GROUP BY date ORDER BY date DESC",
    ).fetchall()
    ((plan,),) = execute(
        conn,
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM event_search s WHERE s.words @@ CAST(? AS tsquery)",
        [query],
        prepare=False,
    ).fetchall()
    expected = max(float(plan[0]["Plan"]["Plan Rows"]), 1.0)
    events = sum(count for _, count in days)
    window = max(_LEAST_WINDOW * cap, int(_MARGIN * cap * events / expected))
    while True:
        since = _window_start(days, window)
        bounded = "" if since is None else "AND s.date >= ? "
        rows = execute(
            conn,
            f"SELECT s.row_id FROM event_search s WHERE s.words @@ CAST(? AS tsquery) {bounded}"
            "ORDER BY s.date DESC, s.id DESC LIMIT ?",
            [query, *([] if since is None else [since]), cap],
            # Never prepared: which plan wins depends on the words and the window,
            # which a prepared statement's generic plan does not know (it walked
            # event_search_date for 'kharkiv' within the 62,000 most recent events,
            # 232 ms, where planned for them the planner intersects the indexes, 49 ms).
            prepare=False,
        ).fetchall()
        if len(rows) == cap or since is None:
            # Every event on or after `since` comes before every other in this
            # order: the window's most recent matches are the search's.
            return [row_id for (row_id,) in rows]
        window = max(2 * window, int(_MARGIN * cap * window / max(len(rows), 1)))


def _window_start(days: list[tuple[str, int]], window: int) -> str | None:
    """The date on which the `window`-th most recent event falls, given the events
    per day, newest first; None when the window holds every event."""
    newer = 0
    for date, events in days:
        newer += events
        if newer >= window:
            return date
    return None
