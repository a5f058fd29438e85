"""`q`: Salvo's search grammar (api/store/search.py), its FTS5 compiler, and what the API
answers for it, against the seeded article data, an event written through the API
and any text hypothesis makes up. The API's answers are tested on both engines; the
FTS5 compiler's tests are SQLite's own (PostgreSQL's tsquery compiler is tested in
tests/test_postgresql_dialect.py)."""

import datetime
import re
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.store import filters
from api.store.search import (
    MAX_LENGTH,
    MAX_TERMS,
    AnyOf,
    Phrase,
    Search,
    SearchTooLarge,
    parse,
)
from api.store.sqlite.dialect import Fts5Query, to_fts5
from tests.engines import write_key
from tests.test_events_filters import ALL, FRANCE, KHARKIV_OBLAST, SL_BUILDUP, STORM_SHADOW, ids

_WORDS = re.compile(r"[^\W_]+")

# The grammar


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("storm shadow", Search((Phrase(("storm",)), Phrase(("shadow",))))),
        ('"storm shadow"', Search((Phrase(("storm", "shadow")),))),
        ("kharkiv*", Search((Phrase(("kharkiv",), prefix=True),))),
        ('"storm sha"*', Search((Phrase(("storm", "sha"), prefix=True),))),
        ("kharkiv OR odesa", Search((AnyOf((Phrase(("kharkiv",)), Phrase(("odesa",)))),))),
        # OR binds tighter than the implicit AND.
        (
            "strike kharkiv OR odesa OR lviv",
            Search(
                (
                    Phrase(("strike",)),
                    AnyOf((Phrase(("kharkiv",)), Phrase(("odesa",)), Phrase(("lviv",)))),
                )
            ),
        ),
        ("-kharkiv", Search((), (Phrase(("kharkiv",)),))),
        ('gas -"storm shadow"', Search((Phrase(("gas",)),), (Phrase(("storm", "shadow")),))),
        # FTS5's AND and NOT, which v1 documented, keep their meaning.
        ("gas AND kharkiv", Search((Phrase(("gas",)), Phrase(("kharkiv",))))),
        ("gas NOT kharkiv", Search((Phrase(("gas",)),), (Phrase(("kharkiv",)),))),
        # Anything else is words: punctuation inside a term makes it a phrase.
        ("S-300", Search((Phrase(("S", "300")),))),
        ("Kharkiv's", Search((Phrase(("Kharkiv", "s")),))),
        ("Strilecha-Lyptsi", Search((Phrase(("Strilecha", "Lyptsi")),))),
        ("rank:kharkiv", Search((Phrase(("rank", "kharkiv")),))),
        ("kharkiv.ua", Search((Phrase(("kharkiv", "ua")),))),
        ("*kharkiv", Search((Phrase(("kharkiv",)),))),
        ("kharkiv!*", Search((Phrase(("kharkiv",)),))),
        ('"storm shadow', Search((Phrase(("storm", "shadow")),))),
        ('storm"', Search((Phrase(("storm",)),))),
        (
            "NEAR(storm shadow, 5)",
            Search((Phrase(("NEAR", "storm")), Phrase(("shadow",)), Phrase(("5",)))),
        ),
        # An operator where it takes no term is the word.
        ("OR", Search((Phrase(("or",)),))),
        ("storm AND", Search((Phrase(("storm",)), Phrase(("and",))))),
        ("a OR -b", Search((Phrase(("a",)), Phrase(("or",))), (Phrase(("b",)),))),
        # Lower case is never an operator.
        ("this or that", Search((Phrase(("this",)), Phrase(("or",)), Phrase(("that",))))),
        # No letter or digit: no term.
        ("!!! -", Search()),
        ("\x00kharkiv", Search((Phrase(("kharkiv",)),))),
    ],
)  # fmt: skip
def test_the_grammar(text: str, tree: Search) -> None:
    assert parse(text) == tree


def test_the_limits_are_characters_and_words_and_operators() -> None:
    assert parse("k" * MAX_LENGTH)
    with pytest.raises(SearchTooLarge, match=f"At most {MAX_LENGTH} characters; this has 201."):
        parse("k" * (MAX_LENGTH + 1))
    # Eight prefix terms and seven ORs; a phrase's words count one by one.
    assert parse(" OR ".join(["kh*"] * 8) + " shadow")
    with pytest.raises(SearchTooLarge, match="this has 17"):
        parse(" OR ".join(["kh*"] * 9))
    with pytest.raises(SearchTooLarge, match="this has 17"):
        parse('"' + " ".join(["storm"] * (MAX_TERMS + 1)) + '"')
    with pytest.raises(SearchTooLarge, match="this has 17"):
        parse("S-300 " * 8 + "x")


# The FTS5 compiler (SQLite only: FTS5's query syntax)


@pytest.mark.parametrize(
    ("text", "fts5"),
    [
        ("storm shadow", Fts5Query('"storm" AND "shadow"')),
        ("S-300", Fts5Query('"S 300"')),
        ('"storm sha"*', Fts5Query('"storm sha" *')),
        ("strike kharkiv OR odesa", Fts5Query('"strike" AND ("kharkiv" OR "odesa")')),
        ("gas -kharkiv -odesa*", Fts5Query('("gas") NOT ("kharkiv" OR "odesa" *)')),
        ("-kharkiv", Fts5Query('"kharkiv"', negated=True)),
        ("NOT AND OR", Fts5Query('"not" AND "and" AND "or"')),
        ("...", None),
    ],
)
def test_every_word_reaches_fts5_quoted(text: str, fts5: Fts5Query | None) -> None:
    assert to_fts5(parse(text)) == fts5


_NOTES = {
    1: "An S-300 missile hit Kharkiv's northern district; a gas pipeline burned.",
    2: "Storm Shadow missiles struck a depot in Strilecha-Lyptsi.",
    3: "Drones over Odesa and Kharkiv Oblast.",
}


@pytest.fixture(scope="module")
def fts5() -> sqlite3.Connection:
    """An FTS5 table as api/store/sqlite/layout.py makes it, with three notes."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE events_fts USING fts5(notes, place)")
    conn.executemany(
        "INSERT INTO events_fts (rowid, notes, place) VALUES (?, ?, '')", _NOTES.items()
    )
    return conn


def matched(conn: sqlite3.Connection, text: str) -> set[int]:
    query = to_fts5(parse(text))
    if query is None:
        return set()
    rows = conn.execute(
        "SELECT rowid FROM events_fts WHERE events_fts MATCH ?", [query.expression]
    ).fetchall()
    found = {rowid for (rowid,) in rows}
    return set(_NOTES) - found if query.negated else found


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("S-300", {1}),
        ("s 300", {1}),  # the same words, not side by side required
        ("300-S", set()),  # a phrase keeps its order
        ("Kharkiv's", {1}),
        ("kharkiv", {1, 3}),
        ("Strilecha-Lyptsi", {2}),
        ('"storm shadow"', {2}),
        ("kharkiv -oblast", {1}),
        ("-kharkiv", {2}),
        ("odesa OR strilecha", {2, 3}),
        ("missile*", {1, 2}),
        ('"storm sha"*', {2}),
        ("missiles -*", {2}),
        ("!!!", set()),
    ],
)
def test_the_compiled_query_finds_what_the_grammar_says(
    fts5: sqlite3.Connection, text: str, rows: set[int]
) -> None:
    assert matched(fts5, text) == rows


@settings(max_examples=500, deadline=None)
@given(text=st.text(max_size=MAX_LENGTH))
def test_fts5_takes_whatever_the_compiler_writes(fts5: sqlite3.Connection, text: str) -> None:
    try:
        tree = parse(text)
    except SearchTooLarge:
        return
    # The tree holds words only: runs of letters and digits, nothing FTS5 could read
    # as syntax.
    terms = [*tree.required, *tree.excluded]
    phrases = [p for t in terms for p in (t.phrases if isinstance(t, AnyOf) else (t,))]
    assert all(_WORDS.fullmatch(word) for p in phrases for word in p.words)
    query = to_fts5(tree)
    if query is not None:
        # FTS5 raises on a syntax error; every compiled query runs.
        fts5.execute("SELECT rowid FROM events_fts WHERE events_fts MATCH ?", [query.expression])


# The API


def search(client: FlaskClient, q: str) -> set[str]:
    return ids(client, f"q={quote(q)}")


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("Strilecha-Lyptsi", {SL_BUILDUP}),
        ("strilecha", {SL_BUILDUP}),
        ('"storm shadow"', {STORM_SHADOW}),
        ("trainer*", {FRANCE}),
        ("Zelensky's", {FRANCE}),
        ("storm OR trainers", {STORM_SHADOW, FRANCE}),
        ("kharkiv -strikes -attacks", None),  # checked against its parts below
        ("!!!", set()),
    ],
)
def test_searches_of_the_seed(client: FlaskClient, q: str, expected: set[str] | None) -> None:
    if expected is not None:
        assert search(client, q) == expected
    else:
        without = search(client, "strikes") | search(client, "attacks")
        assert search(client, q) == search(client, "kharkiv") - without


def test_a_search_of_exclusions_alone_is_every_other_event(client: FlaskClient) -> None:
    kharkiv = search(client, "kharkiv")
    assert kharkiv and kharkiv < ALL
    assert search(client, "-kharkiv") == ALL - kharkiv
    assert search(client, "-kharkiv*") == ALL - search(client, "kharkiv*")


def test_a_place_name_is_searched_too(client: FlaskClient) -> None:
    # "Kharkiv Oblast" is the place of events whose notes say "Kharkiv region".
    assert search(client, "kharkiv") >= KHARKIV_OBLAST


@pytest.fixture
def written(fresh_database: str, open_app: Callable[..., Flask]) -> FlaskClient:
    """A copy of the seed with an event written through the API whose notes say
    what people type."""
    key = write_key(fresh_database, "Newsroom", "admin")
    client = open_app(fresh_database).test_client()
    event = client.get("/api/v1/events/ua-2024-05-30-kharkiv-missile-strike").get_json()
    for output_only in ("acled", "updated_at"):
        event.pop(output_only)
    event |= {
        "id": "ua-2024-06-01-s300-strike",
        "notes": "An S-300 missile hit Kharkiv's northern district overnight.",
    }
    response = client.post(
        "/api/v1/events", json={"events": [event]}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 201, response.get_json()
    return client


@pytest.mark.parametrize("q", ["S-300", "s-300", "Kharkiv's", "S-300 Kharkiv's", '"S-300 missile"'])
def test_what_people_type_finds_its_event(written: FlaskClient, q: str) -> None:
    assert search(written, q) == {"ua-2024-06-01-s300-strike"}


def refused_q(response: object) -> str:
    assert response.status_code == 400  # type: ignore[attr-defined]
    body = response.get_json()  # type: ignore[attr-defined]
    assert response.content_type == "application/problem+json"  # type: ignore[attr-defined]
    assert [p["name"] for p in body["invalid_params"]] == ["q"]
    reason: str = body["invalid_params"][0]["reason"]
    assert body["detail"] == f"q: {reason}"
    return reason


def test_the_limits_are_400s_naming_q(client: FlaskClient) -> None:
    get = client.get
    assert get("/api/v1/events?q=" + "k" * MAX_LENGTH).status_code == 200
    assert refused_q(get("/api/v1/events?q=" + "k" * (MAX_LENGTH + 1))) == (
        "At most 200 characters; this has 201."
    )
    assert refused_q(get("/api/v1/events?q=" + quote(" OR ".join(["kh*"] * 9)))) == (
        "At most 16 words and operators (OR, AND, NOT); this has 17."
    )
    assert refused_q(get("/api/v1/events?q=")) == (
        "Empty: give a word to search for, or leave q out."
    )
    # /stats and the exports take the same parameter.
    assert refused_q(get("/api/v1/stats?q=" + "k" * (MAX_LENGTH + 1)))
    assert refused_q(get("/api/v1/events?format=csv&q=" + "k" * (MAX_LENGTH + 1)))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    q=st.text(
        st.one_of(
            st.sampled_from("ab kh *\"():-+^.,{}'NEAR OR AND NOT\x00\té"),
            st.characters(exclude_categories=["Cs"]),
        ),
        min_size=1,
        max_size=MAX_LENGTH + 20,
    )
)
def test_any_text_is_a_search_or_a_limit(app: Flask, q: str) -> None:
    response = app.test_client().get(f"/api/v1/events?q={quote(q)}")
    # The limits, counted here apart from the parser: characters, and words
    # (runs of letters and digits: the operators are words too).
    within = len(q) <= MAX_LENGTH and len(_WORDS.findall(q)) <= MAX_TERMS
    if within:
        assert response.status_code == 200, (q, response.get_json())
    else:
        assert "At most" in refused_q(response)


# Totals of a search (/stats): its SEARCH_TOTALS_CAP most recent matches


@pytest.fixture
def synthetic(
    synthetic_database: str, open_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> FlaskClient:
    """20,000 synthetic events, with a cap the common words there pass."""
    monkeypatch.setattr(filters, "SEARCH_TOTALS_CAP", 300)
    return open_app(synthetic_database, QUERY_BUDGET_S=60.0).test_client()


def matching(client: FlaskClient, q: str) -> list[dict]:
    """Every event a search finds, most recent first (an export is never capped)."""
    response = client.get(f"/api/v1/events?format=ndjson&sort=-date&q={quote(q)}")
    assert response.status_code == 200
    return [orjson.loads(line) for line in response.get_data().splitlines()]


def stats(client: FlaskClient, query: str) -> dict:
    response = client.get(f"/api/v1/stats?{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def injured(events: list[dict]) -> int:
    return sum((e["casualties"]["injured"] or {}).get("best") or 0 for e in events)


@pytest.mark.parametrize("q", ["kharkiv", "-kharkiv"])
def test_a_common_search_sums_its_most_recent_matches(synthetic: FlaskClient, q: str) -> None:
    found = matching(synthetic, q)
    assert len(found) > 300
    body = stats(synthetic, f"q={quote(q)}")
    assert body["meta"]["search_capped"] is True
    (total,) = body["data"]
    assert total["events"] == 300
    assert total["injured"]["best"] == injured(found[:300])
    # Other filters narrow within those 300; a series sums the same ones.
    month = found[0]["date"][:7]
    narrowed = stats(synthetic, f"q={quote(q)}&date_from={month}-01")["data"][0]
    assert narrowed["events"] == sum(e["date"] >= f"{month}-01" for e in found[:300])
    series = stats(synthetic, f"q={quote(q)}&interval=month&limit=5000")
    assert sum(row["events"] for row in series["data"] + series["coarser"]) == 300


@pytest.mark.parametrize(
    ("q", "cap"),
    [
        ("zolochiv", 20),
        ("ukrainian", 1000),
        ('"russian forces"', 300),
        ("oblast", 50),
        # Two words always written together: the planner, which takes them for
        # independent, expects more matches than there are.
        ("russian OR forces", 300),
    ],
)
def test_the_most_recent_matches_are_found_however_common_the_search(
    synthetic: FlaskClient, monkeypatch: pytest.MonkeyPatch, q: str, cap: int
) -> None:
    # PostgreSQL looks for them among the most recent events first, in a window
    # sized by the share the planner expects, widened until it holds enough
    # (dialect._newest_matches): rare and common searches, phrases, misestimates,
    # and caps of every size, against the export's order.
    monkeypatch.setattr(filters, "SEARCH_TOTALS_CAP", cap)
    found = matching(synthetic, q)
    assert len(found) > cap
    places = synthetic.get(f"/api/v1/locations?q={quote(q)}&limit=1000").get_json()
    assert places["meta"]["search_capped"] is True
    counted = {place["id"]: place["event_count"] for place in places["data"]}
    assert counted == Counter(event["location"]["id"] for event in found[:cap])


def test_a_rarer_search_sums_every_match(synthetic: FlaskClient) -> None:
    found = matching(synthetic, "zolochiv")
    assert 0 < len(found) <= 300
    body = stats(synthetic, "q=zolochiv")
    assert body["meta"]["search_capped"] is False
    assert body["data"][0]["events"] == len(found)
    assert body["data"][0]["injured"]["best"] == injured(found)
    assert "search_capped" not in stats(synthetic, "")["meta"]


def test_the_cap_is_the_documented_one() -> None:
    assert filters.SEARCH_TOTALS_CAP == 5_000
    spec = Path(__file__).resolve().parent.parent.joinpath("openapi.yaml").read_text()
    assert "more than 5,000 events, of which the totals sum the 5,000 most recent" in " ".join(
        spec.split()
    )


def test_the_map_says_when_its_search_is_capped(synthetic: FlaskClient) -> None:
    """/locations counts the same capped matches as /stats, and says so the same way."""
    found = matching(synthetic, "kharkiv")
    body = synthetic.get("/api/v1/locations?q=kharkiv&limit=1000").get_json()
    assert body["meta"]["search_capped"] is True
    assert sum(place["event_count"] for place in body["data"]) == 300
    assert len(found) > 300
    rarer = synthetic.get("/api/v1/locations?q=zolochiv&format=geojson").get_json()
    assert rarer["meta"]["search_capped"] is False
    assert "search_capped" not in synthetic.get("/api/v1/locations").get_json()["meta"]


def test_a_write_that_moves_a_match_moves_it_among_the_most_recent(
    fresh_database: str, open_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The totals follow an event's date as a write changes it (on PostgreSQL,
    event_search keeps a copy of it, which orders the most recent matches)."""
    monkeypatch.setattr(filters, "SEARCH_TOTALS_CAP", 2)
    key = write_key(fresh_database, "Newsroom", "admin")
    client = open_app(fresh_database).test_client()
    found = matching(client, "kharkiv")
    assert len(found) > 2
    oldest, newest = found[-1], found[0]
    later = (datetime.date.fromisoformat(newest["date"]) + datetime.timedelta(days=1)).isoformat()
    assert stats(client, f"q=kharkiv&date_from={later}")["data"][0]["events"] == 0

    etag = client.get(f"/api/v1/events/{oldest['id']}").headers["ETag"]
    response = client.patch(
        f"/api/v1/events/{oldest['id']}",
        json={"date": later, "date_precision": "day"},
        headers={"Authorization": f"Bearer {key}", "If-Match": etag},
    )
    assert response.status_code == 200, response.get_json()

    assert stats(client, f"q=kharkiv&date_from={later}")["data"][0]["events"] == 1
    assert stats(client, "q=kharkiv")["data"][0]["events"] == 2
