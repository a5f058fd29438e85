"""GET /api/v1/stats: totals over the filtered events, keeping uncertainty."""

import pytest
from flask.testing import FlaskClient

NO_FIGURES = {"best": 0, "low": 0, "high": 0, "qualifier": "exact", "events_reporting": 0}
AT_LEAST_FOUR = {"best": 4, "low": 4, "high": None, "qualifier": "at_least", "events_reporting": 1}


def stats(client: FlaskClient, query: str = "") -> dict:
    response = client.get(f"/api/v1/stats?{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_overall_totals(client: FlaskClient) -> None:
    assert stats(client) == {
        "data": [
            {
                "key": None,
                "precision": None,
                "events": 17,
                "munitions": [
                    {"category": "drone", "launched": 0, "intercepted": 32,
                     "interception_rate": None, "events": 1},
                    {"category": "missile", "launched": 8, "intercepted": 7,
                     "interception_rate": None, "events": 3},
                    {"category": "mixed", "launched": 51, "intercepted": 0,
                     "interception_rate": None, "events": 1},
                ],
                "killed": NO_FIGURES,
                "injured": AT_LEAST_FOUR,
            }
        ],
        "meta": {"group_by": None},
    }  # fmt: skip


def test_filters_apply_to_stats(client: FlaskClient) -> None:
    (group,) = stats(client, "event_type=missile_strike")["data"]
    assert group["events"] == 2
    assert group["munitions"] == [
        {"category": "missile", "launched": 8, "intercepted": 0, "interception_rate": None,
         "events": 2}
    ]  # fmt: skip
    assert group["injured"] == AT_LEAST_FOUR


def test_no_matching_events_is_one_zero_total(client: FlaskClient) -> None:
    assert stats(client, "country=RU")["data"] == [
        {"key": None, "precision": None, "events": 0, "munitions": [],
         "killed": NO_FIGURES, "injured": NO_FIGURES}
    ]  # fmt: skip


def keyed(client: FlaskClient, group_by: str) -> list[tuple]:
    return [
        (g["key"], g["precision"], g["events"])
        for g in stats(client, f"group_by={group_by}")["data"]
    ]


def test_by_day_keeps_coarse_events_in_their_own_period(client: FlaskClient) -> None:
    assert keyed(client, "day") == [
        ("2024-02", "month", 1),
        ("2024-04", "month", 1),
        ("2024-05", "month", 6),
        ("2024-05-10", "day", 1),
        ("2024-05-24", "day", 1),
        ("2024-05-27", "day", 1),
        ("2024-05-30", "day", 6),
    ]


def test_by_iso_week(client: FlaskClient) -> None:
    assert keyed(client, "week") == [
        ("2024-02", "month", 1),
        ("2024-04", "month", 1),
        ("2024-05", "month", 6),
        ("2024-W19", "week", 1),
        ("2024-W21", "week", 1),
        ("2024-W22", "week", 7),
    ]


def test_by_month(client: FlaskClient) -> None:
    assert keyed(client, "month") == [
        ("2024-02", "month", 1),
        ("2024-04", "month", 1),
        ("2024-05", "month", 15),
    ]


def test_by_admin1(client: FlaskClient) -> None:
    assert keyed(client, "admin1") == [
        (None, None, 7),
        ("Donetsk Oblast", None, 1),
        ("Kharkiv Oblast", None, 9),
    ]


def test_by_event_type(client: FlaskClient) -> None:
    assert keyed(client, "event_type") == [
        ("air_defense_interception", None, 1),
        ("armed_clash", None, 1),
        ("ground_assault", None, 1),
        ("missile_strike", None, 2),
        ("strategic_development", None, 9),
        ("territory_change", None, 1),
        ("troop_movement", None, 2),
    ]


@pytest.mark.parametrize("group_by", ["day", "week", "month", "admin1", "event_type"])
def test_groups_add_up_to_the_total(client: FlaskClient, group_by: str) -> None:
    groups = stats(client, f"group_by={group_by}")["data"]
    assert sum(g["events"] for g in groups) == 17
    assert sum(g["injured"]["best"] for g in groups) == 4
    launched = sum(m["launched"] for g in groups for m in g["munitions"])
    intercepted = sum(m["intercepted"] for g in groups for m in g["munitions"])
    assert (launched, intercepted) == (59, 39)
