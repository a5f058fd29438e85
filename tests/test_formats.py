"""GET /api/v1/events as GeoJSON, CSV and NDJSON, chosen by `format` or Accept."""

import csv
import io
import json

import pytest
from flask.testing import FlaskClient

from schemas.csv import CSV_COLUMNS, csv_line
from tests.engines import rows
from tests.test_article_facts import EVENTS

KHARKIV = "ua-2024-05-30-kharkiv-missile-strike"
AIR = "ua-2024-05-30-nationwide-air-attack-interceptions"


def test_geojson_page_is_a_feature_collection(client: FlaskClient) -> None:
    response = client.get("/api/v1/events?format=geojson&location=kharkiv")
    assert response.status_code == 200
    assert response.content_type == "application/geo+json"
    body = response.get_json(force=True)
    event = client.get(f"/api/v1/events/{KHARKIV}").get_json()
    assert body == {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": KHARKIV,
                "geometry": {"type": "Point", "coordinates": [36.2304, 49.9935]},
                "properties": event,
            }
        ],
        "links": {
            "self": "http://localhost/api/v1/events?format=geojson&location=kharkiv",
            "next": None,
            "prev": None,
        },
        "meta": {"count": 1, "limit": 100, "sort": "-date", "total": 1, "total_exact": True},
    }


def test_geojson_pages_follow_the_same_cursor(client: FlaskClient) -> None:
    first = client.get("/api/v1/events?format=geojson&limit=10&sort=date").get_json(force=True)
    assert len(first["features"]) == 10
    rest = client.get(first["links"]["next"]).get_json(force=True)
    ids = [f["id"] for f in first["features"] + rest["features"]]
    assert sorted(ids) == sorted(EVENTS)
    assert rest["links"]["next"] is None


def csv_rows(client: FlaskClient, url: str) -> list[dict[str, str]]:
    response = client.get(url)
    assert response.status_code == 200
    assert response.content_type == "text/csv; charset=utf-8"
    assert response.is_streamed
    reader = csv.DictReader(io.StringIO(response.get_data(as_text=True)))
    assert reader.fieldnames == list(CSV_COLUMNS)
    return list(reader)


def test_csv_flattens_every_matching_event(client: FlaskClient) -> None:
    rows = csv_rows(client, "/api/v1/events?format=csv&sort=date")
    assert len(rows) == 17
    air = next(row for row in rows if row["id"] == AIR)
    assert (air["missile_launched"], air["missile_intercepted"]) == ("", "7")
    assert (air["drone_launched"], air["drone_intercepted"]) == ("", "32")
    assert (air["mixed_launched"], air["mixed_intercepted"]) == ("51", "")
    assert (air["initiators"], air["interceptors"]) == (
        "Military Forces of Russia",
        "Air Force of Ukraine",
    )
    assert air["acled_sub_event_type"] == "Disrupted weapons use"
    strike = next(row for row in rows if row["id"] == KHARKIV)
    injured = [strike[f"injured_{part}"] for part in ("best", "low", "high", "qualifier")]
    assert injured == ["4", "4", "", "at_least"]
    assert strike["killed_best"] == ""
    assert (strike["latitude"], strike["longitude"], strike["location_precision"]) == (
        "49.9935", "36.2304", "city"
    )  # fmt: skip
    assert strike["reported_by"] == "Ihor Terekhov; Oleh Syniehubov"
    assert [row["date"] for row in rows] == sorted(row["date"] for row in rows)


def test_csv_keeps_the_filters(client: FlaskClient) -> None:
    rows = csv_rows(client, "/api/v1/events?format=csv&weapon=missile")
    assert {row["id"] for row in rows} == {
        KHARKIV,
        AIR,
        "ua-2024-05-30-kharkiv-north-missile-strike",
    }


def test_ndjson_streams_one_document_per_line(client: FlaskClient) -> None:
    response = client.get("/api/v1/events?format=ndjson")
    assert response.status_code == 200
    assert response.content_type == "application/x-ndjson"
    assert response.is_streamed
    lines = response.get_data().split(b"\n")
    assert lines[-1] == b""
    documents = [json.loads(line) for line in lines[:-1]]
    assert [d["id"] for d in documents] == [
        e["id"] for e in client.get("/api/v1/events").get_json()["data"]
    ]
    assert documents[0] == client.get(f"/api/v1/events/{documents[0]['id']}").get_json()


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("application/geo+json", "application/geo+json"),
        ("text/csv", "text/csv"),
        ("application/x-ndjson", "application/x-ndjson"),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        ("text/html,application/xhtml+xml,*/*;q=0.8", "application/json"),
        ("text/csv;q=0.5, application/geo+json", "application/geo+json"),
    ],
)
def test_accept_chooses_the_format(client: FlaskClient, accept: str, media_type: str) -> None:
    response = client.get("/api/v1/events", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.mimetype == media_type
    assert "Accept" in response.vary


def test_the_format_parameter_beats_accept(client: FlaskClient) -> None:
    response = client.get("/api/v1/events?format=geojson", headers={"Accept": "text/csv"})
    assert response.mimetype == "application/geo+json"


def test_an_unservable_accept_is_a_406_problem(client: FlaskClient) -> None:
    response = client.get("/api/v1/events", headers={"Accept": "application/xml"})
    assert response.status_code == 406
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize("query", ["format=csv&limit=10", "format=ndjson&cursor=abc"])
def test_exports_refuse_paging_parameters(client: FlaskClient, query: str) -> None:
    response = client.get(f"/api/v1/events?{query}")
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    name = query.split("&")[1].split("=")[0]
    assert response.get_json()["invalid_params"][0]["name"] == name


def test_an_export_with_a_bad_query_fails_before_streaming(client: FlaskClient) -> None:
    response = client.get("/api/v1/events?format=csv&q=" + "k" * 201)
    assert response.status_code == 400
    assert response.get_json()["invalid_params"][0]["name"] == "q"


def test_stored_csv_lines_are_the_documents_flattened(database: str) -> None:
    stored = rows(database, "SELECT body, csv FROM event_documents")
    assert len(stored) == 17
    for body, line in stored:
        assert line == csv_line(json.loads(body))
        assert next(csv.reader(io.StringIO(line)))[0] == json.loads(body)["id"]
