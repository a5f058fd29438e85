"""PostgreSQL's dialect (api/store/postgresql/dialect.py) selects the same rows as
SQLite's (api/store/sqlite/dialect.py) on the same hand-written places and events,
written with SQL into both engines: boxes (across the antimeridian too), radii,
case-insensitive names, and search (words, phrases, prefixes, OR, exclusions, S-300,
Kharkiv's, Strilecha-Lyptsi), through the filter registry as /events and /locations
build their conditions; and `to_pyformat` turns `?` into psycopg's `%s` without
touching a literal. PostgreSQL is a real server (tests/postgres.py)."""

import sqlite3
import unicodedata
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from api.store import filters
from api.store.dialect import Dialect
from api.store.filters import EVENTS, LOCATIONS, Scope, filters_of
from api.store.postgresql.dialect import (
    POSTGRESQL,
    execute,
    search_document,
    to_pyformat,
    to_tsquery_text,
    words,
)
from api.store.postgresql.migrations import migrate
from api.store.search import parse
from api.store.sqlite.connections import distance_km
from api.store.sqlite.dialect import SQLITE
from api.store.sqlite.layout import create_tables

# id, name, admin1, country code, latitude, longitude.
PLACES = [
    ("kharkiv", "Kharkiv", "Kharkiv Oblast", "UA", 49.9935, 36.2304),
    ("kharkiv-uk", "Харків", "Kharkiv Oblast", "UA", 49.9901, 36.2299),
    ("strilecha", "Strilecha", "Kharkiv Oblast", "UA", 50.3132, 36.5289),
    ("lyptsi", "Lyptsi", "Kharkiv Oblast", "UA", 50.2003, 36.4317),
    ("vovchansk", "vovchansk", "Kharkiv Oblast", "UA", 50.2908, 36.9414),
    ("odesa", "Odesa", "Odesa Oblast", "UA", 46.4825, 30.7233),
    ("kyiv", "Київ", "Kyiv City", "UA", 50.4501, 30.5234),
    ("dnipro", "Dnipró", "Dnipropetrovsk Oblast", "UA", 48.4647, 35.0462),
    # Either side of the antimeridian, in Fiji.
    ("taveuni", "Taveuni", "Northern", "FJ", -16.85, 179.97),
    ("lakeba", "Lakeba", "Eastern", "FJ", -18.2, -178.8),
]

# Full-width letters: other letters than ASCII's, to FTS5 as here.
FULL_WIDTH = "".join(chr(ord(letter) + 0xFEE0) for letter in "Artillery")

# id, place, date, notes.
EVENTS_ = [
    ("e01", "kharkiv", "2024-05-01",
     "Russian forces struck Kharkiv with an S-300 missile; Kharkiv's mayor reported damage."),
    ("e02", "strilecha", "2024-05-02", "Shelling of Strilecha-Lyptsi area near the border."),
    ("e03", "odesa", "2024-05-03", "Storm Shadow launched; the port of Odesa was hit by a drone."),
    ("e04", "kyiv", "2024-05-04", "Drones intercepted over the capital; S 300 fragments found."),
    ("e05", "taveuni", "2024-05-05", "A storm over the islands cast a shadow on the harvest."),
    ("e06", "dnipro", "2024-05-06", "Strilecha and Lyptsi villages evacuated to Dnipró."),
    ("e07", "kharkiv", "2024-05-07", "Kharkivska oblast strike reported by the governor."),
    # The notes end with Strilecha and the place begins with Lyptsi: no phrase of
    # the two, as FTS5 matches a phrase within one column.
    ("e08", "lyptsi", "2024-05-08", "Artillery fire reported near Strilecha"),
    ("e09", "lakeba", "2024-05-09", "½ of the town without power after a STORM."),
    ("e10", "vovchansk", "2024-05-10", "Guided bombs on Vovchansk; no Storm Shadow involved."),
    ("e11", "kharkiv-uk", "2024-05-11", "Kharkiv's metro used as shelter; sirens for hours."),
    ("e12", "kharkiv", "2024-05-11", f"{FULL_WIDTH} (full-width) and naïve café ǅemal \u13a0."),
]  # fmt: skip


def _place_text(place_id: str) -> str:
    """The place column of SQLite's events_fts, as writes.py joins it."""
    _, name, admin1, *_ = next(p for p in PLACES if p[0] == place_id)
    return f"{name} {admin1}"


def _insert(conn: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """Insert rows with `?` parameters into either engine."""
    for row in rows:
        if isinstance(conn, sqlite3.Connection):
            conn.execute(sql, row)
        else:
            execute(conn, sql, row)


def _fill(conn: Any) -> None:
    """The same places and events in either engine, written with SQL."""
    _insert(
        conn,
        "INSERT INTO sources (id, title, published) VALUES (?, ?, ?)",
        [("src", "A source", "2024-05-01")],
    )
    _insert(
        conn,
        "INSERT INTO locations (row_id, id, name, admin1, country, country_code, latitude, "
        "longitude, precision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'city')",
        [(i + 1, id_, name, admin1, code, code, lat, lon)
         for i, (id_, name, admin1, code, lat, lon) in enumerate(PLACES)],
    )  # fmt: skip
    places = {p[0]: p for p in PLACES}
    _insert(
        conn,
        "INSERT INTO events (row_id, id, event_type, date, date_precision, location_id, "
        "country_code, admin1, latitude, longitude, source_id, weapons, seq, first_seq, "
        "updated_at) VALUES (?, ?, 'missile_strike', ?, 'day', ?, ?, ?, ?, ?, 'src', 0, ?, ?, "
        "'2024-06-01T00:00:00Z')",
        [(i + 1, id_, date, place, places[place][3], places[place][2], places[place][4],
          places[place][5], i + 1, i + 1)
         for i, (id_, place, date, _) in enumerate(EVENTS_)],
    )  # fmt: skip
    if isinstance(conn, sqlite3.Connection):
        _insert(
            conn,
            "INSERT INTO locations_rtree (id, min_lon, max_lon, min_lat, max_lat) "
            "VALUES (?, ?, ?, ?, ?)",
            [(i + 1, lon, lon, lat, lat) for i, (*_, lat, lon) in enumerate(PLACES)],
        )
        _insert(
            conn,
            "INSERT INTO events_fts (rowid, notes, place) VALUES (?, ?, ?)",
            [(i + 1, notes, _place_text(place)) for i, (_, place, _, notes) in enumerate(EVENTS_)],
        )
    else:
        _insert(
            conn,
            "INSERT INTO event_search (row_id, date, id, words) "
            "VALUES (?, ?, ?, CAST(? AS tsvector))",
            [(i + 1, date, id_, search_document(notes, _place_text(place)))
             for i, (id_, place, date, notes) in enumerate(EVENTS_)],
        )  # fmt: skip


@pytest.fixture(scope="module")
def sqlite() -> Iterator[sqlite3.Connection]:
    db = sqlite_utils.Database(memory=True)
    create_tables(db)
    db.conn.create_function("distance_km", 4, distance_km, deterministic=True)
    _fill(db.conn)
    yield db.conn
    db.close()


@pytest.fixture(scope="module")
def pg(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    """The session's database, migrated, with the rows in a transaction that is rolled
    back at the end: the database is left as migrate made it."""
    with psycopg.connect(postgres_url) as conn:
        migrate(conn)
        _fill(conn)
        yield conn
        conn.rollback()


class Engines:
    """Both engines with the same rows: the same SQL, with its dialect's clause."""

    def __init__(self, sqlite: sqlite3.Connection, pg: psycopg.Connection[Any]) -> None:
        self.sqlite, self.pg = sqlite, pg

    def ids(self, dialect: Dialect, sql: str, params: list[Any]) -> list[str]:
        if dialect is SQLITE:
            return [row[0] for row in self.sqlite.execute(sql, params)]
        # A savepoint: a failing statement does not end the module's transaction.
        with self.pg.transaction():
            return [row[0] for row in execute(self.pg, sql, params)]

    def conn(self, dialect: Dialect) -> Any:
        return self.sqlite if dialect is SQLITE else self.pg

    def events(self, args: dict[str, Any], paged: bool = True) -> tuple[list[str], list[str]]:
        """The ids of the events the filter registry keeps for these arguments, on
        SQLite and on PostgreSQL."""
        found = []
        for dialect in (SQLITE, POSTGRESQL):
            scope = Scope.events(dialect, self.conn(dialect), paged)
            condition, params = filters.where(scope, filters_of(EVENTS), args)
            found.append(
                self.ids(dialect, f"SELECT e.id FROM events e WHERE {condition} ORDER BY 1", params)
            )
        return found[0], found[1]

    def places(self, args: dict[str, Any]) -> tuple[list[str], list[str]]:
        found = []
        for dialect in (SQLITE, POSTGRESQL):
            scope = Scope.locations(dialect, self.conn(dialect))
            condition, params = filters.where(scope, filters_of(LOCATIONS), args)
            found.append(
                self.ids(
                    dialect, f"SELECT l.id FROM locations l WHERE {condition} ORDER BY 1", params
                )
            )
        return found[0], found[1]


@pytest.fixture(scope="module")
def engines(sqlite: sqlite3.Connection, pg: psycopg.Connection[Any]) -> Engines:
    return Engines(sqlite, pg)


def _events_at(*places: str) -> list[str]:
    return sorted(id_ for id_, place, _, _ in EVENTS_ if place in places)


# Places.

BOXES = {
    # west, south, east, north: what it holds
    (36.1, 49.9, 36.3, 50.1): ["kharkiv", "kharkiv-uk"],
    (36.3, 50.1, 37.0, 50.4): ["lyptsi", "strilecha", "vovchansk"],
    (22.0, 44.0, 40.0, 53.0): sorted(p[0] for p in PLACES if p[3] == "UA"),
    # Across the antimeridian: the union of both sides.
    (179.0, -19.0, -178.0, -16.0): ["lakeba", "taveuni"],
    (170.0, -17.0, -170.0, -16.0): ["taveuni"],
    (179.99, -19.0, -179.0, -16.0): [],
    # Not across: west < east, the long way round.
    (-179.0, -19.0, 179.0, -16.0): ["lakeba"],
    (-180.0, -90.0, 180.0, 90.0): sorted(p[0] for p in PLACES),
}


@pytest.mark.parametrize("bbox", BOXES, ids=str)
def test_a_box_holds_the_same_places_as_on_sqlite_across_the_antimeridian_too(
    engines: Engines, bbox: tuple[float, float, float, float]
) -> None:
    on_sqlite, on_postgresql = engines.places({"bbox": bbox})
    assert on_postgresql == on_sqlite == BOXES[bbox]
    on_sqlite, on_postgresql = engines.events({"bbox": bbox})
    assert on_postgresql == on_sqlite == _events_at(*BOXES[bbox])


NEAR = {
    # lat, lon, radius_km: the places within it
    (49.9935, 36.2304, 5.0): ["kharkiv", "kharkiv-uk"],
    (49.9935, 36.2304, 50.0): ["kharkiv", "kharkiv-uk", "lyptsi", "strilecha"],
    (49.9935, 36.2304, 300.0): ["dnipro", "kharkiv", "kharkiv-uk", "lyptsi", "strilecha",
                                "vovchansk"],
    # Around a point beside the antimeridian, from either side of it.
    (-17.0, 179.9, 100.0): ["taveuni"],
    (-17.0, 179.9, 250.0): ["lakeba", "taveuni"],
    (-17.5, -179.9, 150.0): ["lakeba", "taveuni"],
    (0.0, 0.0, 1000.0): [],
}  # fmt: skip


@pytest.mark.parametrize("near", NEAR, ids=str)
def test_a_radius_holds_the_same_places_as_on_sqlite(
    engines: Engines, near: tuple[float, float, float]
) -> None:
    lat, lon, radius_km = near
    on_sqlite, on_postgresql = engines.events({"near": (lat, lon), "radius_km": radius_km})
    assert on_postgresql == on_sqlite == _events_at(*NEAR[near])


# Names.

NAMES = {
    # The location filter matches every spelling the gazetteer knows, ignoring the case
    # of ASCII letters only, as NOCASE does: Харків is not харків on either engine.
    ("location", "kharkiv"): _events_at("kharkiv"),
    ("location", "KHARKOV"): _events_at("kharkiv"),
    ("location", "VOVCHANSK"): _events_at("vovchansk"),
    # The gazetteer's spellings are lower case: київ is not the stored Київ.
    ("location", "київ"): [],
    ("location", "kyiv"): [],
    ("location", "dnipró"): _events_at("dnipro"),
    ("location", "DNIPRÓ"): [],
    ("admin1", "kharkiv oblast"): _events_at("kharkiv", "kharkiv-uk", "strilecha", "lyptsi",
                                             "vovchansk"),
    ("admin1", "NORTHERN"): _events_at("taveuni"),
    ("admin1", "Eastern"): _events_at("lakeba"),
}  # fmt: skip


@pytest.mark.parametrize("name", NAMES, ids=str)
def test_names_match_ignoring_ascii_case_as_on_sqlite(
    engines: Engines, name: tuple[str, str]
) -> None:
    on_sqlite, on_postgresql = engines.events(dict([name]))
    assert on_postgresql == on_sqlite == NAMES[name]


@pytest.mark.parametrize(
    ("stored", "given", "equal"),
    [
        ("Kharkiv", "KHARKIV", True),
        ("Dnipró", "dnipró", True),
        ("Dnipró", "DNIPRÓ", False),  # NOCASE folds A-Z only
        ("Київ", "КИЇВ", False),
        ("Київ", "Київ", True),
    ],
)
def test_text_equal_and_text_in_fold_the_case_of_ascii_letters_only_as_nocase_does(
    engines: Engines, stored: str, given: str, equal: bool
) -> None:
    for dialect in (SQLITE, POSTGRESQL):
        for condition, params in (
            (dialect.text_equal("x"), [given]),
            (dialect.text_in("x", 2), ["other", given]),
        ):
            sql = f"SELECT x FROM (SELECT CAST(? AS text) AS x) AS t WHERE {condition}"
            assert engines.ids(dialect, sql, [stored, *params]) == ([stored] if equal else [])


# Search.

# Every event in Kharkiv Oblast has `kharkiv` in its place.
_KHARKIV = ["e01", "e02", "e07", "e08", "e10", "e11", "e12"]

SEARCHES = {
    "kharkiv": _KHARKIV,
    "KHARKIV": _KHARKIV,
    '"kharkiv oblast"': _KHARKIV,
    "storm shadow": ["e03", "e05", "e10"],
    '"storm shadow"': ["e03", "e10"],
    "kharkivs": [],
    "kharkivs*": ["e07"],
    "khark*": _KHARKIV,
    '"storm sha"*': ["e03", "e10"],
    '"shadow sto"*': [],
    "kharkiv OR odesa": sorted([*_KHARKIV, "e03"]),
    "strike kharkiv OR odesa": ["e07"],
    "storm -shadow": ["e09"],
    "-kharkiv": ["e03", "e04", "e05", "e06", "e09"],
    "NOT kharkiv": ["e03", "e04", "e05", "e06", "e09"],
    "-kharkiv -oblast": ["e04", "e05", "e09"],
    'drone -"storm shadow"': [],
    "kharkiv AND reported": ["e01", "e07", "e08"],
    "S-300": ["e01", "e04"],
    "s-300*": ["e01", "e04"],
    "Kharkiv's": ["e01", "e11"],
    "Strilecha-Lyptsi": ["e02"],
    '"strilecha lyptsi"': ["e02"],
    "strilecha lyptsi": ["e02", "e06", "e08"],
    "dnipro": ["e06"],
    "DNIPRÓ": ["e06"],
    "½": ["e09"],
    "naive cafe": ["e12"],
    "artillery": ["e08"],
    FULL_WIDTH.lower(): ["e12"],
    "ǆemal": ["e12"],
    '"Київ Kyiv"': ["e04"],
    'kyiv OR "storm shadow" -drone': ["e04", "e10"],
    "-": [],
    "'); DROP TABLE events; --": [],
    "a:* | b & !c <-> d": [],
}


@pytest.mark.parametrize("text", SEARCHES)
def test_a_search_finds_the_same_events_as_fts5(engines: Engines, text: str) -> None:
    for paged in (True, False):
        on_sqlite, on_postgresql = engines.events({"q": parse(text)}, paged=paged)
        assert on_postgresql == on_sqlite == SEARCHES[text], text


def test_a_search_keeps_to_its_most_recent_matches_for_totals_as_on_sqlite(
    engines: Engines, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filters, "SEARCH_TOTALS_CAP", 2)
    for text, capped in (("kharkiv*", True), ('"storm shadow"', False), ("-storm", True)):
        q = parse(text)
        assert POSTGRESQL.search_capped(engines.pg, q) is SQLITE.search_capped(engines.sqlite, q)
        assert SQLITE.search_capped(engines.sqlite, q) is capped, text
        on_sqlite, on_postgresql = engines.events({"q": q}, paged=False)
        assert on_postgresql == on_sqlite, text
        if capped:
            assert len(on_postgresql) == 2


def test_a_search_compiles_to_quoted_lexemes_with_prefixes_phrases_or_and_exclusions() -> None:
    assert to_tsquery_text(parse("Kharkiv")) == "'kharkiv'"
    assert to_tsquery_text(parse("kharkiv*")) == "'kharkiv':*"
    assert to_tsquery_text(parse('"storm sha"*')) == "('storm' <-> 'sha':*)"
    assert to_tsquery_text(parse("S-300")) == "('s' <-> '300')"
    assert (
        to_tsquery_text(parse('strike kharkiv OR odesa -drone -"storm shadow"'))
        == "('strike' & ('kharkiv' | 'odesa')) & !('drone' | ('storm' <-> 'shadow'))"
    )
    assert to_tsquery_text(parse("-kharkiv")) == "!('kharkiv')"
    assert to_tsquery_text(parse("!!")) is None
    # Operators of tsquery's syntax typed into q are no operators: only words remain.
    assert to_tsquery_text(parse("a:* | b & !c <-> d")) == "'a' & 'b' & 'c' & 'd'"


def test_the_search_document_numbers_words_as_fts5_reads_them(pg: psycopg.Connection[Any]) -> None:
    document = search_document("Strilecha-Lyptsi hit; S-300", "Lyptsi Kharkiv Oblast")
    # The place starts two positions after the notes: a phrase cannot run across.
    assert document == "'strilecha':1 'lyptsi':2,7 'hit':3 's':4 '300':5 'kharkiv':8 'oblast':9"
    with pg.transaction():
        vector = execute(pg, "SELECT CAST(CAST(? AS tsvector) AS text)", [document]).fetchone()
    assert vector == ("'300':5 'hit':3 'kharkiv':8 'lyptsi':2,7 'oblast':9 's':4 'strilecha':1",)
    # A word longer than a lexeme may be is cut, still found by its prefixes.
    long = "x" * 3000
    assert search_document(long, "") == f"'{'x' * 2046}':1"


# Letters SQLite's unicode61 tables (older than Unicode 7) do not fold yet.
_NEWER_THAN_FTS5 = {"\u037f", "\u0528", "\u052a", "\u052c", "\u052e"}


def test_words_are_split_and_folded_as_fts5_does_for_latin_greek_and_cyrillic(
    sqlite: sqlite3.Connection,
) -> None:
    """Every assigned character of the Latin, Greek and Cyrillic blocks, with the
    combining marks and the punctuation between them, between two letters: the same
    words (lowercase, Latin diacritics gone, other scripts' kept) as FTS5 indexes."""
    blocks = [*range(0x20, 0x250), *range(0x300, 0x530), *range(0x1E00, 0x2000)]
    chars = [chr(c) for c in blocks if unicodedata.category(chr(c)) != "Cn"]
    texts = [f"q{char}q" for char in chars]
    sqlite.execute("CREATE VIRTUAL TABLE temp.texts USING fts5(text)")
    sqlite.execute("CREATE VIRTUAL TABLE temp.terms USING fts5vocab(temp, texts, 'instance')")
    try:
        sqlite.executemany("INSERT INTO temp.texts (rowid, text) VALUES (?, ?)", enumerate(texts))
        indexed: dict[int, list[str]] = {}
        for term, row in sqlite.execute("SELECT term, doc FROM temp.terms ORDER BY doc, offset"):
            indexed.setdefault(row, []).append(term)
    finally:
        sqlite.execute("DROP TABLE temp.terms")
        sqlite.execute("DROP TABLE temp.texts")
    differing = {char for i, char in enumerate(chars) if words(texts[i]) != indexed.get(i, [])}
    assert differing <= _NEWER_THAN_FTS5
    assert len(chars) > 1500


# Indexes.


@pytest.mark.parametrize(
    ("clause", "index"),
    [
        (POSTGRESQL.places_in_box((36.1, 49.9, 36.3, 50.1)), "locations_box"),
        (POSTGRESQL.places_near(49.99, 36.23, 5), "locations_coordinates"),
        (("SELECT id FROM locations WHERE " + POSTGRESQL.text_equal("name"), ["Kharkiv"]),
         "locations_name"),
        (("SELECT id FROM locations WHERE " + POSTGRESQL.text_in("admin1", 2), ["a", "b"]),
         "locations_admin1"),
        (("SELECT e.id FROM events e WHERE "
          + POSTGRESQL.search(Scope.events(POSTGRESQL, None, True), parse("storm"))[0],
          [to_tsquery_text(parse("storm"))]), "event_search_words"),
    ],
    ids=["box", "near", "name", "admin1", "search"],
)  # fmt: skip
def test_each_clause_can_be_answered_from_its_index(
    engines: Engines, clause: tuple[str, list[Any]], index: str
) -> None:
    sql, params = clause
    with engines.pg.transaction():
        execute(engines.pg, "SET LOCAL enable_seqscan = off")
        plan = "\n".join(row[0] for row in execute(engines.pg, f"EXPLAIN {sql}", params))
    assert index in plan, plan


# Parameters.


def test_question_marks_become_parameters_outside_quotes_and_comments_only() -> None:
    assert to_pyformat("SELECT ? FROM t WHERE a = ? AND b IN (?, ?)") == (
        "SELECT %s FROM t WHERE a = %s AND b IN (%s, %s)"
    )
    assert to_pyformat("SELECT '?', 'it''s ?', \"odd?name\", ? -- why?\n, ? /* ? */") == (
        "SELECT '?', 'it''s ?', \"odd?name\", %s -- why?\n, %s /* ? */"
    )
    # psycopg reads a bare % as a parameter, inside a literal too.
    assert to_pyformat("SELECT 7 % 2, '100%' WHERE x LIKE ?") == (
        "SELECT 7 %% 2, '100%%' WHERE x LIKE %s"
    )
    for unsupported in ("SELECT 'open", "SELECT $$a$$", "SELECT E'\\''", "SELECT /* open"):
        with pytest.raises(ValueError):
            to_pyformat(unsupported)


_NASTY = st.text(
    alphabet=st.sampled_from(list("?%'\"-/*\\$;:() \nabcЖ½"))
    | st.characters(codec="utf-8", exclude_characters="\x00"),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(literal=_NASTY, identifier=_NASTY.filter(lambda s: 0 < len(s.encode()) < 60), value=_NASTY)
def test_literals_and_identifiers_come_through_unchanged_and_parameters_bind(
    engines: Engines, literal: str, identifier: str, value: str
) -> None:
    quoted = "'" + literal.replace("'", "''") + "'"
    name = '"' + identifier.replace('"', '""') + '"'
    sql = f"SELECT {quoted} AS {name}, CAST(? AS text), {quoted} || ? AS also"
    with engines.pg.transaction():
        cursor = execute(engines.pg, sql, [value, "?%s"])
        row = cursor.fetchone()
        assert cursor.description is not None
        assert cursor.description[0].name == identifier
    assert row == (literal, value, literal + "?%s")


# Around year ends, leap days and ISO weeks that start in the previous year.
PERIOD_DATES = [
    "2020-02-29", "2020-12-31", "2021-01-01", "2021-01-03", "2021-01-04", "2022-01-02",
    "2024-05-26", "2024-05-27", "2024-12-30", "2026-12-04",
]  # fmt: skip


@pytest.mark.parametrize("interval", ["day", "week", "month", "year"])
def test_period_starts_are_the_same_days_as_on_sqlite(
    sqlite: sqlite3.Connection, pg: psycopg.Connection[Any], interval: str
) -> None:
    # The date as a parameter wherever the period's SQL reads it.
    on_sqlite, on_postgresql = [], []
    for day in PERIOD_DATES:
        sql = f"SELECT {SQLITE.period_start(interval, '?')}"
        on_sqlite.append(sqlite.execute(sql, [day] * sql.count("?")).fetchone()[0])
        sql = f"SELECT {POSTGRESQL.period_start(interval, 'CAST(? AS text)')}"
        row = execute(pg, sql, [day] * sql.count("?")).fetchone()
        on_postgresql.append(None if row is None else row[0])
    assert on_postgresql == on_sqlite
    if interval == "week":
        mondays = ["2020-02-24", "2020-12-28", "2020-12-28", "2020-12-28", "2021-01-04"]
        assert on_sqlite[:5] == mondays
