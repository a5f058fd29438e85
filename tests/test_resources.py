"""Locations, sources and event types."""

from flask.testing import FlaskClient

from schemas.vocabulary import EVENT_TYPES

LOCATION_COUNTS = {
    "ua": 7,
    "ua-avdiivka": 1,
    "ua-kharkiv": 1,
    "ua-kharkiv-north-community": 1,
    "ua-kharkiv-oblast": 4,
    "ua-strilecha-lyptsi": 1,
    "ua-vovchansk": 1,
    "ua-vovchansk-vicinity": 1,
}


def test_locations_list_every_place_with_its_event_count(client: FlaskClient) -> None:
    body = client.get("/api/v1/locations").get_json()
    assert {row["id"]: row["event_count"] for row in body["data"]} == LOCATION_COUNTS
    assert [row["id"] for row in body["data"]] == sorted(LOCATION_COUNTS)
    assert body["meta"] == {"count": 8, "limit": 100}


def test_locations_page_by_id(client: FlaskClient) -> None:
    url, seen = "/api/v1/locations?limit=3", []
    while url:
        body = client.get(url).get_json()
        seen += [row["id"] for row in body["data"]]
        url = body["links"]["next"] and body["links"]["next"].replace("http://localhost", "")
    assert seen == sorted(LOCATION_COUNTS)


def test_location_filters(client: FlaskClient) -> None:
    def ids(query: str) -> list[str]:
        return [row["id"] for row in client.get(f"/api/v1/locations?{query}").get_json()["data"]]

    assert ids("admin1=donetsk%20oblast") == ["ua-avdiivka"]
    assert ids("precision=near") == [
        "ua-kharkiv-north-community",
        "ua-strilecha-lyptsi",
        "ua-vovchansk-vicinity",
    ]
    assert ids("bbox=36.8,50.2,37.0,50.4") == ["ua-vovchansk", "ua-vovchansk-vicinity"]
    assert ids("country=pl") == []


def test_one_location(client: FlaskClient) -> None:
    assert client.get("/api/v1/locations/ua-kharkiv").get_json() == {
        "id": "ua-kharkiv",
        "name": "Kharkiv",
        "admin1": "Kharkiv Oblast",
        "country": "Ukraine",
        "country_code": "UA",
        "latitude": 49.9935,
        "longitude": 36.2304,
        "precision": "city",
        "event_count": 1,
    }


def test_sources(client: FlaskClient) -> None:
    body = client.get("/api/v1/sources").get_json()
    assert [(row["id"], row["published"], row["event_count"]) for row in body["data"]] == [
        ("article-2024-05-30-stoltenberg-easing-bans", "2024-05-30", 17)
    ]
    one = client.get("/api/v1/sources/article-2024-05-30-stoltenberg-easing-bans").get_json()
    assert one == body["data"][0]


def test_event_types_carry_descriptions_and_the_acled_mapping(client: FlaskClient) -> None:
    data = client.get("/api/v1/event-types").get_json()["data"]
    assert [row["id"] for row in data] == list(EVENT_TYPES)
    by_id = {row["id"]: row for row in data}
    assert by_id["air_defense_interception"]["acled"] == {
        "disorder_type": "Strategic developments",
        "event_type": "Strategic developments",
        "sub_event_type": "Disrupted weapons use",
    }
    assert by_id["missile_strike"]["acled"]["sub_event_type"] == "Shelling/artillery/missile attack"
    assert all(row["description"] for row in data)
