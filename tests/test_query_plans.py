"""Every documented filter and sort of /api/v1/events is served by an index: the
query plan never scans the events table itself. SQLite only: SQLite's
query planner (EXPLAIN QUERY PLAN) on its layout."""

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from api.store.filters import EventListArgs
from api.store.sqlite.connections import connect_read_only
from api.store.sqlite.query import FEED_POSITION, EventPages
from schemas.query import EVENT_SORTS, CommaSeparatedList

FILTERS = {
    "event_type": "event_type=missile_strike",
    "event_types": "event_type=missile_strike,drone_strike",
    "date_from": "date_from=2024-01-01",
    "date_to": "date_to=2022-06-01",
    "country": "country=UA",
    "admin1": "admin1=Kharkiv%20Oblast",
    "location": "location=Vovchansk",
    "bbox": "bbox=35.5,49.5,37.5,50.5",
    "near": "near=49.99,36.23&radius_km=30",
    "precision": "precision=exact,city",
    "actor": "actor=russia",
    "weapon": "weapon=drone",
    "min_killed": "min_killed=10",
    "min_injured": "min_injured=5",
    "q": "q=infrastructure",
    "q_rare": "q=zolochiv",
    "updated_since": "updated_since=2026-11-25T00:00:00Z",
}


@pytest.fixture(scope="module")
def conn(synthetic_db: Path) -> Iterator[sqlite3.Connection]:
    connection = connect_read_only(str(synthetic_db))
    yield connection
    connection.close()


def plan(conn: sqlite3.Connection, query: str) -> list[str]:
    raw: dict[str, list[str]] = {}
    for name, value in parse_qsl(query):
        raw.setdefault(name, []).append(value)
    fields = EventListArgs().fields
    args = EventListArgs().load(
        {k: v if isinstance(fields[k], CommaSeparatedList) else v[0] for k, v in raw.items()}
    )
    sql, params = EventPages(conn, args).sql(None, 101)
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def assert_no_table_scan(steps: list[str]) -> None:
    for step in steps:
        assert not re.fullmatch(r"SCAN (e|events)", step), steps


def test_every_documented_filter_has_a_case() -> None:
    documented = set(EventListArgs().fields) - {"sort", "limit", "cursor", "format", "fields"}
    covered = {query.split("=")[0] for query in FILTERS.values()} | {"radius_km"}
    assert documented == covered


@pytest.mark.parametrize("query", FILTERS.values(), ids=FILTERS.keys())
@pytest.mark.parametrize("sort", ["-date", "date"])
def test_filters_never_scan_the_events_table(
    conn: sqlite3.Connection, query: str, sort: str
) -> None:
    assert_no_table_scan(plan(conn, f"{query}&sort={sort}"))


@pytest.mark.parametrize("sort", EVENT_SORTS)
def test_every_sort_walks_an_index_ending_in_id(conn: sqlite3.Connection, sort: str) -> None:
    steps = plan(conn, f"sort={sort}")
    assert re.fullmatch(r"SCAN e USING (COVERING )?INDEX events_(date|killed|injured)", steps[0])
    assert not any("TEMP B-TREE" in step for step in steps), steps


def test_a_deep_cursor_seeks_instead_of_skipping(conn: sqlite3.Connection) -> None:
    args = EventListArgs().load({"sort": "-date"})
    sql, params = EventPages(conn, args).sql(("2023-01-01", "syn-1-0010000"), 101)
    steps = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    assert re.fullmatch(
        r"SEARCH e USING (COVERING )?INDEX events_date \(\(date,id\)<\(\?,\?\)\)", steps[0]
    )


def test_places_come_from_the_r_tree(conn: sqlite3.Connection) -> None:
    for query in (FILTERS["bbox"], FILTERS["near"]):
        assert any(step.startswith("SCAN r VIRTUAL TABLE") for step in plan(conn, query))


def test_full_text_comes_from_fts5(conn: sqlite3.Connection) -> None:
    assert any("events_fts VIRTUAL TABLE" in step for step in plan(conn, FILTERS["q_rare"]))


def test_the_feed_position_seeks_the_end_of_each_seq_index(conn: sqlite3.Connection) -> None:
    # /changes reads it on every request: the highest seq must cost two index seeks
    # (SQLite's min/max optimisation), whatever the number of events.
    steps = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {FEED_POSITION}")]
    assert steps == [
        "SEARCH change_history USING INTEGER PRIMARY KEY (rowid=?)",
        "SCALAR SUBQUERY 1",
        "SEARCH events USING COVERING INDEX events_seq",
        "SCALAR SUBQUERY 2",
        "SEARCH event_tombstones USING COVERING INDEX event_tombstones_seq",
    ]
