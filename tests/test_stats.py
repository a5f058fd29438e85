"""GET /api/v1/stats: totals, groups and time series over the filtered events."""

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from schemas.vocabulary import MUNITION_CATEGORIES
from tests.test_writes import Partner, new_event

UNKNOWN = {"best": None, "low": None, "high": None, "qualifier": None, "events_reporting": 0}
AT_LEAST_FOUR = {"best": 4, "low": 4, "high": None, "qualifier": "at_least", "events_reporting": 1}
NONE_REPORTED = {
    "launched": None, "intercepted": None, "launched_with_outcome": None,
    "intercepted_with_outcome": None, "interception_rate": None, "not_reached": None,
    "hit": None, "events": 0,
}  # fmt: skip


def stats(client: FlaskClient, query: str = "") -> dict[str, Any]:
    response = client.get(f"/api/v1/stats?{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_overall_totals_keep_unknown_apart_from_zero(client: FlaskClient) -> None:
    (row,) = stats(client)["data"]
    assert row["key"] is None and row["events"] == 17
    # Nobody reports deaths in the article: unknown, not an exact zero.
    assert row["killed"] == UNKNOWN
    assert row["injured"] == AT_LEAST_FOUR
    munitions = row["munitions"]
    assert list(munitions) == [*MUNITION_CATEGORIES, "all"]
    # Every entry together: three events have entries, the interception one of three
    # categories, so the categories' events (5) do not add up to it.
    assert munitions["all"] == {**NONE_REPORTED, "launched": 59, "intercepted": 39, "events": 3}
    assert munitions["drone"] == {**NONE_REPORTED, "intercepted": 32, "events": 1}
    assert munitions["missile"] == {**NONE_REPORTED, "launched": 8, "intercepted": 7, "events": 3}
    assert munitions["mixed"] == {**NONE_REPORTED, "launched": 51, "events": 1}
    assert munitions["rocket"] == NONE_REPORTED


def test_the_rate_is_computed_from_the_pair_beside_it(
    fresh_database: str, open_app: Callable[..., Flask]
) -> None:
    # The seed has no entry giving both counts: a partner's write adds one.
    partner = Partner(fresh_database, open_app(fresh_database))
    event = {**new_event(partner, "ua-2024-06-01-rockets"), "munitions": [
        {"category": "rocket", "model": None, "launched": 10, "intercepted": 6},
        {"category": "rocket", "model": None, "launched": 5, "intercepted": None},
    ]}  # fmt: skip
    assert partner.post(event).status_code == 201
    (row,) = stats(partner.client, "weapon=rocket")["data"]
    assert row["munitions"]["rocket"] == {
        **NONE_REPORTED, "launched": 15, "intercepted": 6, "launched_with_outcome": 10,
        "intercepted_with_outcome": 6, "interception_rate": 0.6, "events": 1,
    }  # fmt: skip
    _, etag = partner.event("ua-2024-06-01-rockets")
    deleted = partner.client.delete(
        "/api/v1/events/ua-2024-06-01-rockets", headers=partner.headers(**{"If-Match": etag})
    )
    assert deleted.status_code == 204
    assert stats(partner.client, "weapon=rocket")["data"][0]["munitions"]["rocket"] == NONE_REPORTED


def test_filters_apply_to_stats(client: FlaskClient) -> None:
    (row,) = stats(client, "event_type=missile_strike")["data"]
    assert row["events"] == 2
    assert row["munitions"]["missile"] == {**NONE_REPORTED, "launched": 8, "events": 2}
    assert row["injured"] == AT_LEAST_FOUR


def test_no_matching_events_is_one_empty_total(client: FlaskClient) -> None:
    (row,) = stats(client, "country=RU")["data"]
    assert row["events"] == 0 and row["killed"] == row["injured"] == UNKNOWN
    assert all(m == NONE_REPORTED for m in row["munitions"].values())


def series(client: FlaskClient, query: str) -> tuple[list[tuple], list[tuple], dict]:
    body = stats(client, query)
    rows = [(r["key"], r["start"], r["end"], r["events"]) for r in body["data"]]
    coarser = [(r["key"], r["precision"], r["events"]) for r in body["coarser"]]
    return rows, coarser, body["meta"]


def test_a_daily_series_has_every_day_and_coarser_events_beside_it(client: FlaskClient) -> None:
    rows, coarser, meta = series(client, "interval=day&date_from=2024-05-08&date_to=2024-05-12")
    assert rows == [
        ("2024-05-08", "2024-05-08", "2024-05-08", 0),
        ("2024-05-09", "2024-05-09", "2024-05-09", 0),
        ("2024-05-10", "2024-05-10", "2024-05-10", 1),
        ("2024-05-11", "2024-05-11", "2024-05-11", 0),
        ("2024-05-12", "2024-05-12", "2024-05-12", 0),
    ]
    assert coarser == []
    assert meta["periods"] == {
        "first": "2024-05-08",
        "last": "2024-05-12",
        "count": 5,
        "remaining": 0,
    }
    rows, coarser, meta = series(client, "interval=day")
    assert [key for key, *_ in rows][:2] == ["2024-05-10", "2024-05-11"]
    assert rows[-1] == ("2024-05-30", "2024-05-30", "2024-05-30", 6)
    assert len(rows) == 21 and meta["periods"]["count"] == 21
    # Month-precise events are never drawn on the first of their month.
    assert coarser == [("2024-02", "month", 1), ("2024-04", "month", 1), ("2024-05", "month", 6)]
    assert sum(r[3] for r in rows) + sum(c[2] for c in coarser) == 17


def test_weekly_and_monthly_series(client: FlaskClient) -> None:
    rows, coarser, _ = series(client, "interval=week")
    assert rows == [
        ("2024-W19", "2024-05-06", "2024-05-12", 1),
        ("2024-W20", "2024-05-13", "2024-05-19", 0),
        ("2024-W21", "2024-05-20", "2024-05-26", 1),
        ("2024-W22", "2024-05-27", "2024-06-02", 7),
    ]
    assert [key for key, *_ in coarser] == ["2024-02", "2024-04", "2024-05"]
    rows, coarser, _ = series(client, "interval=month")
    assert rows == [
        ("2024-02", "2024-02-01", "2024-02-29", 1),
        ("2024-03", "2024-03-01", "2024-03-31", 0),
        ("2024-04", "2024-04-01", "2024-04-30", 1),
        ("2024-05", "2024-05-01", "2024-05-31", 15),
    ]
    assert coarser == []
    # A range that cuts a month gives its first and last period as far as it goes.
    rows, _, meta = series(client, "interval=month&date_from=2024-04-15&date_to=2024-05-29")
    assert rows == [
        ("2024-04", "2024-04-15", "2024-04-30", 0),
        ("2024-05", "2024-05-01", "2024-05-29", 9),
    ]
    assert meta["periods"] == {
        "first": "2024-04-15",
        "last": "2024-05-29",
        "count": 2,
        "remaining": 0,
    }


def test_groups(client: FlaskClient) -> None:
    def keyed(group_by: str) -> list[tuple]:
        return [(r["key"], r["events"]) for r in stats(client, f"group_by={group_by}")["data"]]

    assert keyed("admin1") == [(None, 7), ("Donetsk Oblast", 1), ("Kharkiv Oblast", 9)]
    assert keyed("country") == [("UA", 17)]
    assert keyed("event_type") == [
        ("air_defense_interception", 1), ("armed_clash", 1), ("ground_assault", 1),
        ("missile_strike", 2), ("strategic_development", 9), ("territory_change", 1),
        ("troop_movement", 2),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "query", ["interval=day", "interval=week", "interval=month", "group_by=admin1",
              "group_by=event_type", "group_by=country"],
)  # fmt: skip
def test_rows_add_up_to_the_total(client: FlaskClient, query: str) -> None:
    body = stats(client, query)
    rows = body["data"] + body["coarser"]
    assert sum(r["events"] for r in rows) == 17
    assert sum(r["injured"]["best"] or 0 for r in rows) == 4
    categories = [r["munitions"][category] for r in rows for category in MUNITION_CATEGORIES]
    launched = sum(m["launched"] or 0 for m in categories)
    intercepted = sum(m["intercepted"] or 0 for m in categories)
    assert (launched, intercepted) == (59, 39)
    every = [r["munitions"]["all"] for r in rows]
    assert (sum(m["launched"] or 0 for m in every), sum(m["intercepted"] or 0 for m in every)) == (
        59,
        39,
    )


def test_pages_follow_links_next(client: FlaskClient) -> None:
    whole = stats(client, "interval=day")["data"]
    keys, coarser, url = [], [], "/api/v1/stats?interval=day&limit=8"
    while url:
        response = client.get(url)
        body = response.get_json()
        keys += [row["key"] for row in body["data"]]
        # On the first page only: joined pages count each coarser event once.
        coarser.append(len(body["coarser"]))
        assert body["meta"]["periods"]["remaining"] == 21 - len(keys)
        url = body["links"]["next"]
        assert (url is None) == ("Link" not in response.headers)
    assert keys == [row["key"] for row in whole]
    assert coarser == [3, 0, 0]


def test_a_cursor_of_another_shape_is_refused(client: FlaskClient) -> None:
    first = stats(client, "interval=day&limit=2")["links"]["next"]
    cursor = first.split("cursor=")[1]
    response = client.get(f"/api/v1/stats?interval=week&cursor={cursor}")
    assert response.status_code == 400
    assert response.get_json()["invalid_params"][0]["name"] == "cursor"


def test_csv_opens_as_a_flat_table(client: FlaskClient) -> None:
    response = client.get("/api/v1/stats?interval=week&format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["key"], r["precision"], r["events"]) for r in table] == [
        ("2024-W19", "week", "1"), ("2024-W20", "week", "0"), ("2024-W21", "week", "1"),
        ("2024-W22", "week", "7"), ("2024-02", "month", "1"), ("2024-04", "month", "1"),
        ("2024-05", "month", "6"),
    ]  # fmt: skip
    w22 = table[3]
    assert (w22["injured_best"], w22["injured_qualifier"], w22["killed_best"]) == (
        "4",
        "at_least",
        "",
    )
    assert (w22["drone_intercepted"], w22["drone_launched"], w22["missile_launched"]) == (
        "32",
        "",
        "8",
    )
    assert client.get("/api/v1/stats?format=csv&limit=5").status_code == 400
    accepted = client.get("/api/v1/stats", headers={"Accept": "text/csv"})
    assert accepted.mimetype == "text/csv"


@pytest.mark.parametrize(
    "query",
    [
        "interval=week&date_from=9999-12-01&date_to=9999-12-31",  # its last week ends past 9999
        "interval=day&date_from=9999-12-31&date_to=9999-12-31",
        "interval=month&date_from=9999-12-15",
        "group_by=admin1&date_from=9999-12-02",
        "interval=month&date_to=0001-01-15",
        "interval=week&date_from=0001-01-01&date_to=0001-01-10",
    ],
)
def test_the_first_and_last_dates_there_are_make_a_series(client: FlaskClient, query: str) -> None:
    body = stats(client, query)
    assert all(row["events"] == 0 for row in body["data"])


def test_a_csv_series_is_bounded(client: FlaskClient) -> None:
    response = client.get("/api/v1/stats?interval=day&date_from=0001-01-01&format=csv")
    assert response.status_code == 400
    names = [p["name"] for p in response.get_json()["invalid_params"]]
    assert names == ["date_from", "date_to"]
    # The same range as JSON is a page of it, with the number of periods.
    body = stats(client, "interval=day&date_from=0001-01-01&date_to=9999-12-31")
    assert len(body["data"]) == 1000 and body["meta"]["periods"]["count"] == 3_652_059
    assert body["links"]["next"] is not None
