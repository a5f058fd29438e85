"""The shapes a dashboard draws (issue 20): totals across categories, yearly series,
pages that join into the whole answer, and the shapes of /events and /locations a
map and a table need. Counts that must add up are checked on synthetic data, on
both engines. SQLite only: `init` upgrading an earlier SQLite file."""

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.db import close_store
from api.store.sqlite import rollups, stats
from api.store.sqlite.layout import init_database
from api.store.sqlite.rollups import RAW
from schemas.vocabulary import MUNITION_CATEGORIES
from tests.engines import rows

FIGURES = ("launched", "intercepted", "launched_with_outcome", "intercepted_with_outcome",
           "not_reached", "hit")  # fmt: skip


@pytest.fixture(scope="module")
def synthetic(synthetic_database: str) -> Iterator[FlaskClient]:
    app: Flask = create_app(
        {"DATABASE": synthetic_database, "TESTING": True, "RATE_LIMITS_ENABLED": False}
    )
    yield app.test_client()
    close_store(app)


def get(client: FlaskClient, url: str) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def whole(client: FlaskClient, url: str) -> dict[str, list[dict[str, Any]]]:
    """Every page of an answer, joined: its rows and its coarser rows."""
    rows: list[dict[str, Any]] = []
    coarser: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        body = get(client, next_url)
        rows += body["data"]
        coarser += body["coarser"]
        next_url = body["links"]["next"]
    return {"data": rows, "coarser": coarser}


def _sum(values: list[int | None]) -> int | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


@pytest.mark.parametrize(
    "query", ["", "interval=month", "group_by=event_type", "interval=day&weapon=drone,mixed"]
)
def test_all_is_the_sum_of_the_categories(synthetic: FlaskClient, query: str) -> None:
    body = whole(synthetic, f"/api/v1/stats?{query}")
    checked = 0
    for row in body["data"] + body["coarser"]:
        every = row["munitions"]["all"]
        categories = [row["munitions"][category] for category in MUNITION_CATEGORIES]
        for figure in FIGURES:
            assert every[figure] == _sum([m[figure] for m in categories]), (row["key"], figure)
        # An event with entries of several categories is counted once.
        assert max(m["events"] for m in categories) <= every["events"]
        assert every["events"] <= sum(m["events"] for m in categories)
        checked += every["events"] > 0
    assert checked


def test_all_counts_events_with_entries_of_several_categories_once(
    synthetic_database: str, synthetic: FlaskClient
) -> None:
    ((armed,),) = rows(synthetic_database, "SELECT count(DISTINCT event_id) FROM munitions")
    ((entries,),) = rows(
        synthetic_database,
        "SELECT count(*) FROM (SELECT DISTINCT event_id, category FROM munitions) AS entries",
    )
    (row,) = get(synthetic, "/api/v1/stats")["data"]
    assert row["munitions"]["all"]["events"] == armed
    assert sum(row["munitions"][c]["events"] for c in MUNITION_CATEGORIES) == entries


def test_a_database_of_an_earlier_salvo_gets_all_filled_by_init(
    seeded_db: Path, tmp_path: Path
) -> None:
    """SQLite only: `python -m api init`'s upgrade of a SQLite file in place."""
    path = tmp_path / "earlier.db"
    shutil.copy(seeded_db, path)
    conn = sqlite3.connect(path)
    with conn:
        for rollup in rollups.ROLLUPS:
            conn.execute(f"DELETE FROM {rollup.table} WHERE category = 'all'")
    assert rollups.lacks_all_categories(conn)
    conn.close()
    assert init_database(str(path)) == []
    conn = sqlite3.connect(path)
    assert not rollups.lacks_all_categories(conn)
    client = create_app({"DATABASE": str(path), "TESTING": True}).test_client()
    (row,) = get(client, "/api/v1/stats")["data"]
    assert row["munitions"]["all"]["events"] == 3


def _key_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "events": sum(r["events"] for r in rows),
        "launched": sum(r["munitions"]["all"]["launched"] or 0 for r in rows),
        "intercepted": sum(r["munitions"]["all"]["intercepted"] or 0 for r in rows),
        "killed": sum(r["killed"]["best"] or 0 for r in rows),
    }


def test_a_year_is_the_sum_of_its_months(synthetic: FlaskClient) -> None:
    years = get(synthetic, "/api/v1/stats?interval=year")
    months = whole(synthetic, "/api/v1/stats?interval=month")
    assert years["coarser"] == []  # nothing is dated less precisely than a year
    assert [r["key"] for r in years["data"]] == ["2022", "2023", "2024", "2025", "2026"]
    for year in years["data"]:
        assert (year["precision"], year["start"], year["end"]) == (
            "year",
            f"{year['key']}-01-01",
            f"{year['key']}-12-31",
        )
        in_year = [r for r in months["data"] if r["key"].startswith(year["key"])]
        # The year-precise events are beside a monthly series, dated 1 January.
        beside = [r for r in months["coarser"] if r["key"] == year["key"]]
        assert _key_totals([year]) == _key_totals(in_year + beside)
    # A range that cuts the years: the first and last are cut to it.
    cut = get(synthetic, "/api/v1/stats?interval=year&date_from=2023-03-15&date_to=2024-02-10")
    assert [(r["key"], r["start"], r["end"]) for r in cut["data"]] == [
        ("2023", "2023-03-15", "2023-12-31"),
        ("2024", "2024-01-01", "2024-02-10"),
    ]
    assert cut["meta"]["periods"]["count"] == 2


@pytest.mark.parametrize("interval", ["day", "week", "month", "year"])
def test_pages_joined_are_the_whole_answer(synthetic: FlaskClient, interval: str) -> None:
    one = get(synthetic, f"/api/v1/stats?interval={interval}&limit=5000")
    assert one["links"]["next"] is None and one["meta"]["periods"]["remaining"] == 0
    joined = whole(synthetic, f"/api/v1/stats?interval={interval}&limit=7")
    assert joined == {"data": one["data"], "coarser": one["coarser"]}
    total = get(synthetic, "/api/v1/stats")["data"]
    assert _key_totals(joined["data"] + joined["coarser"]) == _key_totals(total)


def test_remaining_counts_the_periods_after_the_page(synthetic: FlaskClient) -> None:
    url: str | None = "/api/v1/stats?interval=month&limit=10"
    seen = 0
    while url:
        body = get(synthetic, url)
        seen += len(body["data"])
        periods = body["meta"]["periods"]
        assert periods["remaining"] == periods["count"] - seen
        url = body["links"]["next"]
    assert seen == periods["count"]


def test_a_series_per_group_on_the_seed(client: FlaskClient) -> None:
    body = get(client, "/api/v1/stats?group_by=admin1&interval=month")
    rows = [(r["group"], r["key"], r["events"]) for r in body["data"]]
    assert rows == [
        (None, "2024-02", 0), (None, "2024-03", 0), (None, "2024-04", 1), (None, "2024-05", 6),
        ("Donetsk Oblast", "2024-02", 1), ("Donetsk Oblast", "2024-03", 0),
        ("Donetsk Oblast", "2024-04", 0), ("Donetsk Oblast", "2024-05", 0),
        ("Kharkiv Oblast", "2024-02", 0), ("Kharkiv Oblast", "2024-03", 0),
        ("Kharkiv Oblast", "2024-04", 0), ("Kharkiv Oblast", "2024-05", 9),
    ]  # fmt: skip
    assert body["meta"]["periods"]["count"] == 4
    # Each group's series adds up to its row under group_by alone.
    groups = {r["key"]: r["events"] for r in get(client, "/api/v1/stats?group_by=admin1")["data"]}
    assert groups == {None: 7, "Donetsk Oblast": 1, "Kharkiv Oblast": 9}
    daily = get(client, "/api/v1/stats?group_by=event_type&interval=day&limit=5000")
    by_group: dict[str, int] = {}
    for row in daily["data"] + daily["coarser"]:
        by_group[row["group"]] = by_group.get(row["group"], 0) + row["events"]
    expected = get(client, "/api/v1/stats?group_by=event_type")["data"]
    assert by_group == {r["key"]: r["events"] for r in expected}
    # Plain series and groups keep their rows as they were: no `group` member.
    assert "group" not in get(client, "/api/v1/stats?interval=month")["data"][0]
    assert "group" not in get(client, "/api/v1/stats?group_by=admin1")["data"][0]


@pytest.mark.parametrize("group_by", ["event_type", "country", "admin1"])
def test_a_series_per_group_adds_up_on_synthetic_data(
    synthetic: FlaskClient, group_by: str
) -> None:
    query = f"/api/v1/stats?group_by={group_by}&interval=month&date_from=2024-01-01"
    one = get(synthetic, f"{query}&limit=5000")
    joined = whole(synthetic, f"{query}&limit=13")
    assert joined == {"data": one["data"], "coarser": one["coarser"]}
    count = one["meta"]["periods"]["count"]
    groups = get(synthetic, f"/api/v1/stats?group_by={group_by}&date_from=2024-01-01")["data"]
    assert len(one["data"]) == count * len(groups)
    for i, group in enumerate(groups):
        series = one["data"][i * count : (i + 1) * count]
        assert {r["group"] for r in series} == {group["key"]}
        beside = [r for r in one["coarser"] if r["group"] == group["key"]]
        assert _key_totals(series + beside) == _key_totals([group])


def test_a_grouped_series_csv_names_the_group(client: FlaskClient) -> None:
    response = client.get("/api/v1/stats?group_by=admin1&interval=month&format=csv")
    assert response.status_code == 200
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0].startswith("key,group,precision,start,end,events,")
    assert lines[-1].startswith("2024-05,Kharkiv Oblast,month,2024-05-01,2024-05-31,9,")
    plain = client.get("/api/v1/stats?interval=month&format=csv").get_data(as_text=True)
    assert plain.startswith("key,precision,")


@pytest.mark.parametrize(
    "query",
    [
        # Read as they are from the series rollups: whole weeks, whole months.
        "group_by=event_type&interval=week",
        "group_by=event_type&interval=week&date_from=2024-01-01&date_to=2024-03-31",
        "group_by=admin1&interval=month",
        "interval=month&admin1=Kharkiv%20Oblast",
        # Days at either end, a second page, and a yearly series (not theirs).
        "group_by=admin1&interval=month&date_from=2024-01-10&date_to=2024-08-20",
        "group_by=event_type&interval=week&date_from=2024-01-03",
        "group_by=admin1&interval=month&limit=40",
        "group_by=admin1&interval=year",
    ],
)
def test_small_multiples_from_the_rollups_are_those_from_the_events(
    synthetic: FlaskClient, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    url = f"/api/v1/stats?{query}"
    rolled_up = [get(synthetic, url)]
    if rolled_up[0]["links"]["next"]:
        rolled_up.append(get(synthetic, rolled_up[0]["links"]["next"]))
    # Every statement of the answer (the span, the groups, the page, coarser) summed
    # from the events instead.
    monkeypatch.setattr(stats, "plan", lambda conn, args, drawn=None: [stats.Part(RAW, args)])
    raw = [get(synthetic, url)]
    if raw[0]["links"]["next"]:
        raw.append(get(synthetic, raw[0]["links"]["next"]))
    assert rolled_up == raw


def test_a_grouped_series_cursor_is_not_a_plain_one(client: FlaskClient) -> None:
    body = get(client, "/api/v1/stats?group_by=admin1&interval=month&limit=2")
    cursor = body["links"]["next"].split("cursor=")[1]
    response = client.get(f"/api/v1/stats?interval=month&cursor={cursor}")
    assert response.status_code == 400
    assert response.get_json()["invalid_params"][0]["name"] == "cursor"


def event_ids(body: dict[str, Any]) -> list[str]:
    return [event["id"] for event in body["data"]]


@pytest.mark.parametrize("sort", ["-date", "date", "-injured"])
def test_prev_links_walk_back_through_the_same_pages(synthetic: FlaskClient, sort: str) -> None:
    url: str | None = f"/api/v1/events?event_type=missile_strike&sort={sort}&limit=37"
    forwards = []
    for _ in range(4):
        assert url is not None
        response = synthetic.get(url)
        body = response.get_json()
        forwards.append(event_ids(body))
        if len(forwards) == 1:
            assert body["links"]["prev"] is None  # the first page
        else:
            assert 'rel="prev"' in response.headers["Link"]
        url = body["links"]["next"]
    backwards = [forwards[-1]]
    url = body["links"]["prev"]
    while url:
        body = get(synthetic, url)
        backwards.append(event_ids(body))
        url = body["links"]["prev"]
    assert backwards[::-1] == forwards
    # A page reached backwards leads forwards again to the page it came from.
    assert event_ids(get(synthetic, body["links"]["next"])) == forwards[1]


def test_a_prev_cursor_is_not_a_next_one_of_another_sort(client: FlaskClient) -> None:
    body = get(client, "/api/v1/events?limit=2")
    second = get(client, body["links"]["next"])
    cursor = second["links"]["prev"].split("cursor=")[1]
    response = client.get(f"/api/v1/events?sort=date&cursor={cursor}")
    assert response.status_code == 400
    assert response.get_json()["invalid_params"][0]["name"] == "cursor"


@pytest.mark.parametrize(
    "query",
    ["", "event_type=missile_strike,drone_strike&date_from=2023-03-15&date_to=2024-06-10",
     "country=UA&weapon=drone", "admin1=Kharkiv%20Oblast&precision=city,exact",
     "bbox=36.1,49.9,36.3,50.1", "location=kharkiv"],
)  # fmt: skip
def test_the_total_is_exact_where_the_rollups_keep_the_filters(
    synthetic: FlaskClient, query: str
) -> None:
    meta = get(synthetic, f"/api/v1/events?{query}&limit=1")["meta"]
    counted = synthetic.get(f"/api/v1/events?{query}&format=ndjson").get_data().count(b"\n")
    assert (meta["total"], meta["total_exact"]) == (counted, True)


@pytest.mark.parametrize("query", ["actor=russia", "min_killed=1", "q=kharkiv"])
def test_the_total_is_a_bound_otherwise(synthetic: FlaskClient, query: str) -> None:
    meta = get(synthetic, f"/api/v1/events?country=UA&{query}&limit=1")["meta"]
    counted = synthetic.get(f"/api/v1/events?country=UA&{query}&format=ndjson").get_data()
    assert meta["total_exact"] is False
    assert (
        counted.count(b"\n")
        <= meta["total"]
        == get(synthetic, "/api/v1/events?country=UA")["meta"]["total"]
    )


def test_the_precision_filter_keeps_centroids_off_a_map(client: FlaskClient) -> None:
    points = get(client, "/api/v1/events?precision=exact,near,city&limit=1000")["data"]
    assert points and {e["location"]["precision"] for e in points} <= {"exact", "near", "city"}
    every = get(client, "/api/v1/events?limit=1000")["data"]
    centroids = [e for e in every if e["location"]["precision"] in ("region", "country")]
    assert centroids and len(points) + len(centroids) == len(every)
    (row,) = get(client, "/api/v1/stats?precision=region,country")["data"]
    assert row["events"] == len(centroids)
    response = client.get("/api/v1/events?precision=town")
    assert response.status_code == 400
    assert response.get_json()["invalid_params"][0]["name"] == "precision.0"  # as event_type.0


def test_locations_without_event_filters_answer_as_before(client: FlaskClient) -> None:
    body = get(client, "/api/v1/locations?limit=1000")
    assert body["meta"] == {"count": len(body["data"]), "limit": 1000}
    assert sum(place["event_count"] for place in body["data"]) == 17
    assert set(body) == {"data", "links", "meta"}
    # A place filter still chooses places, those without events included.
    country = get(client, "/api/v1/locations?country=UA&limit=1000")["data"]
    assert country == body["data"]


@pytest.mark.parametrize(
    "query",
    ["event_type=missile_strike,drone_strike", "date_from=2024-01-01&date_to=2024-06-30",
     "weapon=drone&precision=city,exact", "actor=russia&country=UA", "admin1=Kharkiv%20Oblast"
     "&date_from=2023-03-15"],
)  # fmt: skip
def test_locations_count_the_events_of_a_filtered_view(synthetic: FlaskClient, query: str) -> None:
    places = whole_locations(synthetic, f"/api/v1/locations?{query}&limit=100")
    events = synthetic.get(f"/api/v1/events?{query}&format=ndjson").get_data().splitlines()
    at: dict[str, int] = {}
    for line in events:
        place = orjson.loads(line)["location"]["id"]
        at[place] = at.get(place, 0) + 1
    assert {place["id"]: place["event_count"] for place in places} == at
    assert [place["id"] for place in places] == sorted(at)


def whole_locations(client: FlaskClient, url: str | None) -> list[dict[str, Any]]:
    places: list[dict[str, Any]] = []
    while url:
        body = get(client, url)
        places += body["data"]
        url = body["links"]["next"]
    return places


def test_locations_as_geojson(client: FlaskClient) -> None:
    response = client.get("/api/v1/locations?format=geojson&event_type=missile_strike")
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    body = response.get_json()
    assert body["type"] == "FeatureCollection"
    json_page = get(client, "/api/v1/locations?event_type=missile_strike")["data"]
    assert [f["properties"] for f in body["features"]] == json_page
    for feature, place in zip(body["features"], json_page, strict=True):
        assert feature["id"] == place["id"]
        assert feature["geometry"] == {
            "type": "Point",
            "coordinates": [place["longitude"], place["latitude"]],
        }
    accepted = client.get("/api/v1/locations", headers={"Accept": "application/geo+json"})
    assert accepted.mimetype == "application/geo+json"
