"""The article's facts as the API serves them after seeding: every event coded from
it, with its date, place, counts and casualties exactly as the article gives them."""

import pytest
from flask.testing import FlaskClient

UNKNOWN = {"killed": None, "injured": None}

# id -> (event_type, date, date_precision, location id, location precision, admin1)
EVENTS = {
    "ua-2024-05-30-kharkiv-missile-strike": (
        "missile_strike", "2024-05-30", "day", "ua-kharkiv", "city", "Kharkiv Oblast"),
    "ua-2024-05-30-kharkiv-north-missile-strike": (
        "missile_strike", "2024-05-30", "day", "ua-kharkiv-north-community", "near",
        "Kharkiv Oblast"),
    "ua-2024-05-30-nationwide-air-attack-interceptions": (
        "air_defense_interception", "2024-05-30", "day", "ua", "country", None),
    "ua-2024-05-10-kharkiv-oblast-cross-border-assault": (
        "ground_assault", "2024-05-10", "day", "ua-kharkiv-oblast", "region", "Kharkiv Oblast"),
    "ua-2024-05-vovchansk-street-fighting": (
        "armed_clash", "2024-05-01", "month", "ua-vovchansk", "city", "Kharkiv Oblast"),
    "ua-2024-05-strilecha-lyptsi-troop-buildup": (
        "troop_movement", "2024-05-01", "month", "ua-strilecha-lyptsi", "near", "Kharkiv Oblast"),
    "ua-2024-05-vovchansk-troop-buildup": (
        "troop_movement", "2024-05-01", "month", "ua-vovchansk-vicinity", "near", "Kharkiv Oblast"),
    "ua-2024-02-avdiivka-captured": (
        "territory_change", "2024-02-01", "month", "ua-avdiivka", "city", "Donetsk Oblast"),
    "ua-2024-05-30-nato-calls-to-ease-weapons-restrictions": (
        "strategic_development", "2024-05-30", "day", "ua", "country", None),
    "ua-2024-05-30-us-permits-strikes-to-defend-kharkiv": (
        "strategic_development", "2024-05-30", "day", "ua-kharkiv-oblast", "region",
        "Kharkiv Oblast"),
    "ua-2024-05-germany-permits-strikes-to-defend-kharkiv": (
        "strategic_development", "2024-05-01", "month", "ua-kharkiv-oblast", "region",
        "Kharkiv Oblast"),
    "ua-2024-05-netherlands-permits-strikes-to-defend-kharkiv": (
        "strategic_development", "2024-05-01", "month", "ua-kharkiv-oblast", "region",
        "Kharkiv Oblast"),
    "ua-2024-05-uk-weapons-usable-across-ukraine": (
        "strategic_development", "2024-05-01", "month", "ua", "country", None),
    "ua-2024-05-24-uk-allows-storm-shadow-strikes-in-russia": (
        "strategic_development", "2024-05-24", "day", "ua", "country", None),
    "ua-2024-04-us-military-aid-package": (
        "strategic_development", "2024-04-01", "month", "ua", "country", None),
    "ua-2024-05-27-syrskyi-approves-french-instructors": (
        "strategic_development", "2024-05-27", "day", "ua", "country", None),
    "ua-2024-05-30-france-plans-training-mission": (
        "strategic_development", "2024-05-30", "day", "ua", "country", None),
}  # fmt: skip

# (latitude, longitude) of each place, WGS84.
COORDINATES = {
    "ua-kharkiv": (49.9935, 36.2304),
    "ua-kharkiv-north-community": (50.06, 36.23),
    "ua-vovchansk": (50.2906, 36.9414),
    "ua-vovchansk-vicinity": (50.2906, 36.9414),
    "ua-strilecha-lyptsi": (50.234, 36.41),
    "ua-kharkiv-oblast": (49.58, 36.63),
    "ua-avdiivka": (48.1394, 37.7497),
    "ua": (48.3794, 31.1656),
}


def get(client: FlaskClient, event_id: str) -> dict:
    response = client.get(f"/api/v1/events/{event_id}")
    assert response.status_code == 200
    return response.get_json()


def test_every_coded_event_and_nothing_else_is_served(client: FlaskClient) -> None:
    served = client.get("/api/v1/events?limit=1000").get_json()["data"]
    assert sorted(event["id"] for event in served) == sorted(EVENTS)


@pytest.mark.parametrize("event_id", sorted(EVENTS))
def test_date_and_place(client: FlaskClient, event_id: str) -> None:
    event_type, date, date_precision, location_id, precision, admin1 = EVENTS[event_id]
    event = get(client, event_id)
    assert event["event_type"] == event_type
    assert (event["date"], event["date_precision"]) == (date, date_precision)
    location = event["location"]
    assert (location["id"], location["precision"], location["admin1"]) == (
        location_id,
        precision,
        admin1,
    )
    assert (location["country"], location["country_code"]) == ("Ukraine", "UA")
    assert (location["latitude"], location["longitude"]) == COORDINATES[location_id]
    assert event["source"]["published"] == "2024-05-30"


def test_kharkiv_strike_eight_missiles_at_least_four_injured(client: FlaskClient) -> None:
    event = get(client, "ua-2024-05-30-kharkiv-missile-strike")
    assert event["munitions"] == [
        {
            "category": "missile",
            "model": None,
            "launched": 8,
            "intercepted": None,
            "not_reached": None,
            "hit": None,
            "reported_by": "Oleh Syniehubov",
        }
    ]
    assert event["casualties"] == {
        "killed": None,
        "injured": {
            "best": 4,
            "low": 4,
            "high": None,
            "qualifier": "at_least",
            "reported_by": "Ihor Terekhov",
        },
    }
    assert [(r["name"], r["title"]) for r in event["reported_by"]] == [
        ("Ihor Terekhov", "Mayor of Kharkiv"),
        ("Oleh Syniehubov", "Governor of Kharkiv Oblast"),
    ]


def test_community_north_of_kharkiv_hit_with_no_figures(client: FlaskClient) -> None:
    event = get(client, "ua-2024-05-30-kharkiv-north-missile-strike")
    assert [(m["category"], m["launched"], m["intercepted"]) for m in event["munitions"]] == [
        ("missile", None, None)
    ]
    assert event["casualties"] == UNKNOWN


def test_overnight_attack_51_launched_7_missiles_and_32_drones_destroyed(
    client: FlaskClient,
) -> None:
    event = get(client, "ua-2024-05-30-nationwide-air-attack-interceptions")
    assert [(m["category"], m["launched"], m["intercepted"]) for m in event["munitions"]] == [
        ("missile", None, 7),
        ("drone", None, 32),
        ("mixed", 51, None),
    ]
    assert {m["reported_by"] for m in event["munitions"]} == {"Air Force of Ukraine"}
    assert event["casualties"] == UNKNOWN
    assert event["acled"] == {
        "disorder_type": "Strategic developments",
        "event_type": "Strategic developments",
        "sub_event_type": "Disrupted weapons use",
    }
    assert [(a["name"], a["role"]) for a in event["actors"]] == [
        ("Military Forces of Russia", "initiator"),
        ("Air Force of Ukraine", "interceptor"),
    ]


@pytest.mark.parametrize(
    "event_id",
    [e for e in sorted(EVENTS) if e not in {
        "ua-2024-05-30-kharkiv-missile-strike",
        "ua-2024-05-30-kharkiv-north-missile-strike",
        "ua-2024-05-30-nationwide-air-attack-interceptions",
    }],
)  # fmt: skip
def test_events_without_figures_have_none(client: FlaskClient, event_id: str) -> None:
    event = get(client, event_id)
    assert event["munitions"] == []
    assert event["casualties"] == UNKNOWN


def test_source_is_the_article(client: FlaskClient) -> None:
    event = get(client, "ua-2024-02-avdiivka-captured")
    assert event["source"] == {
        "id": "article-2024-05-30-stoltenberg-easing-bans",
        "title": "Nato chief Jens Stoltenberg: Time to consider easing bans on Ukraine hitting "
        "Russia with West-supplied weapons",
        "publisher": None,
        "url": None,
        "published": "2024-05-30",
        "reference": "seeds/000_92445736e86a24be.txt",
    }
