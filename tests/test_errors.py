"""Bad input gets a 4xx RFC 9457 problem naming what was wrong; never a 500, never a
silently ignored parameter."""

import base64
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.store.cursors import encode_cursor
from schemas.vocabulary import EVENT_TYPES
from tests.engines import on_postgresql

PROBLEM = "application/problem+json"
DATE_CURSOR = encode_cursor("date", ["2024-05-01", "x"])


@pytest.fixture
def unseeded_database(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database setting naming no Salvo data on the test's engine: a SQLite file
    that does not exist, or an empty PostgreSQL database (PostGIS, no schema)."""
    if engine == "sqlite":
        return str(tmp_path / "missing.db")
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


def problem(client: FlaskClient, url: str, status: int) -> dict:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == PROBLEM
    body = response.get_json()
    assert body["status"] == status
    assert body["instance"] == url.split("?")[0]
    assert {"type", "title", "detail"} <= set(body)
    return body


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("/api/v1/events?date_form=2024-05-01", ["date_form"]),
        ("/api/v1/events?cursor=garbage", ["cursor"]),
        ("/api/v1/events?cursor=" + base64.urlsafe_b64encode(b'{"a":1}').decode(), ["cursor"]),
        ("/api/v1/events?cursor=" + encode_cursor("-date", [1, 2]), ["cursor"]),
        (f"/api/v1/events?sort=-date&cursor={DATE_CURSOR}", ["cursor"]),
        ("/api/v1/events?date_from=2024-06-01&date_to=2024-05-01", ["date_from"]),
        ("/api/v1/events?date_from=2024-13-01", ["date_from"]),
        ("/api/v1/events?limit=0", ["limit"]),
        ("/api/v1/events?limit=1001", ["limit"]),
        ("/api/v1/events?limit=ten", ["limit"]),
        ("/api/v1/events?limit=5&limit=6", ["limit"]),
        ("/api/v1/events?bbox=1,2,3", ["bbox"]),
        ("/api/v1/events?bbox=a,b,c,d", ["bbox"]),
        ("/api/v1/events?bbox=0,60,10,50", ["bbox"]),
        ("/api/v1/events?bbox=0,0,200,10", ["bbox"]),
        ("/api/v1/events?bbox=nan,0,1,1", ["bbox"]),
        ("/api/v1/events?q=" + "k" * 201, ["q"]),
        ("/api/v1/events?event_type=bogus", ["event_type.0"]),
        ("/api/v1/events?event_type=,", ["event_type"]),
        ("/api/v1/events?weapon=tank", ["weapon.0"]),
        ("/api/v1/events?sort=name", ["sort"]),
        ("/api/v1/events?radius_km=5", ["radius_km"]),
        ("/api/v1/events?near=95,36&radius_km=5", ["near"]),
        ("/api/v1/events?near=50,36&radius_km=0", ["radius_km"]),
        ("/api/v1/events?country=UKR", ["country"]),
        ("/api/v1/events?min_killed=-1", ["min_killed"]),
        ("/api/v1/events?min_injured=99999999999999999999", ["min_injured"]),
        ("/api/v1/events?limit=0&sort=x&date_form=1", ["date_form", "limit", "sort"]),
        ("/api/v1/stats?group_by=year", ["group_by"]),
        ("/api/v1/stats?sort=date", ["sort"]),
        # A list of precisions, as event_type: the refused item is named by its place.
        ("/api/v1/locations?precision=street", ["precision.0"]),
        ("/api/v1/locations?cursor=" + encode_cursor("-date", ["a", "b"]), ["cursor"]),
        ("/api/v1/sources?sort=id", ["sort"]),
        ("/api/v1/event-types?lang=en", ["lang"]),
        ("/api/v1/events/ua-2024-02-avdiivka-captured?fields=id", ["fields"]),
        ("/api?v=1", ["v"]),
        ("/healthz?verbose=1", ["verbose"]),
    ],
)
def test_bad_parameters_are_a_400_naming_them(
    client: FlaskClient, url: str, named: list[str]
) -> None:
    body = problem(client, url, 400)
    assert body["type"] == "/problems/invalid-parameters"
    assert body["title"] == "Invalid request parameters"
    assert sorted(p["name"] for p in body["invalid_params"]) == named
    assert {p["in"] for p in body["invalid_params"]} == {"query"}
    for param in body["invalid_params"]:
        assert f"{param['name']}: {param['reason']}" in body["detail"]


def test_an_unknown_parameter_lists_the_known_ones(client: FlaskClient) -> None:
    body = problem(client, "/api/v1/events?date_form=2024-05-01", 400)
    assert body["invalid_params"] == [
        {
            "name": "date_form",
            "in": "query",
            "reason": "Unknown parameter. This endpoint takes: actor, admin1, bbox, country, "
            "cursor, date_from, date_to, event_type, fields, format, limit, location, "
            "min_injured, min_killed, near, precision, q, radius_km, sort, updated_since, "
            "weapon.",
        }
    ]


def test_an_impossible_date_range_says_why(client: FlaskClient) -> None:
    body = problem(client, "/api/v1/events?date_from=2024-06-01&date_to=2024-05-01", 400)
    assert body["invalid_params"] == [
        {"name": "date_from", "in": "query", "reason": "date_from is after date_to."}
    ]


def test_a_cursor_from_another_sort_says_so(client: FlaskClient) -> None:
    body = problem(client, f"/api/v1/events?sort=-date&cursor={DATE_CURSOR}", 400)
    assert body["invalid_params"][0]["reason"] == (
        "This cursor continues sort='date', not sort='-date'."
    )


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("/api/v1/events/no-such-event", "No event has id 'no-such-event'."),
        ("/api/v1/locations/no-such-place", "No location has id 'no-such-place'."),
        ("/api/v1/sources/no-such-source", "No source has id 'no-such-source'."),
        ("/api/v1/no-such-resource", "The requested URL was not found on the server. If you "
         "entered the URL manually please check your spelling and try again."),
    ],
)  # fmt: skip
def test_unknown_resources_are_a_404_problem(client: FlaskClient, url: str, detail: str) -> None:
    body = problem(client, url, 404)
    assert (body["type"], body["title"], body["detail"]) == ("about:blank", "Not Found", detail)


def test_an_unknown_api_version_is_a_404_naming_the_versions(client: FlaskClient) -> None:
    body = problem(client, "/api/v2/events", 404)
    assert body["type"] == "/problems/unknown-version"
    assert body["detail"] == "API version 'v2' does not exist; available: v1."


def test_a_write_method_on_the_read_api_is_a_405_problem(client: FlaskClient) -> None:
    response = client.post("/api/v1/locations", json={})
    assert response.status_code == 405
    assert response.content_type == PROBLEM
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_an_unseeded_database_is_a_503_problem(
    unseeded_database: str, open_app: Callable[..., Flask]
) -> None:
    client = open_app(unseeded_database).test_client()
    response = client.get("/api/v1/events")
    assert response.status_code == 503
    assert response.content_type == PROBLEM
    assert response.get_json()["type"] == "/problems/database-unavailable"
    if not on_postgresql(unseeded_database):
        assert not Path(unseeded_database).exists()  # SQLite: no file made for a read


def test_an_unexpected_failure_is_a_500_problem_without_internals(
    database: str, open_app: Callable[..., Flask]
) -> None:
    # Not TESTING, under which Flask raises the error in the test instead of answering.
    app = open_app(database, TESTING=False)

    @app.get("/api/v1/fail")
    def fail() -> str:
        raise RuntimeError("secret internal detail")

    response = app.test_client().get("/api/v1/fail")
    assert response.status_code == 500
    assert response.content_type == PROBLEM
    body = response.get_json()
    assert body["title"] == "Internal Server Error"
    assert "secret" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query_string", "named"),
    [
        ("q=\xff", "q"),  # a raw byte that is not UTF-8 (WSGI gives it as latin-1)
        ("limit=10&actor=%FF%FE", "actor"),  # percent-escapes that are not UTF-8
    ],
)
def test_a_parameter_that_is_not_utf8_is_named(
    client: FlaskClient, query_string: str, named: str
) -> None:
    response = client.get("/api/v1/events", environ_overrides={"QUERY_STRING": query_string})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert [p["name"] for p in response.get_json()["invalid_params"]] == [named]


def test_links_percent_encode_what_the_client_left_raw(client: FlaskClient) -> None:
    # "é" sent as raw UTF-8 bytes, which WSGI hands over decoded as latin-1.
    raw = "location=Vovchansk&actor=r\xc3\xa9&limit=1"
    response = client.get("/api/v1/events", environ_overrides={"QUERY_STRING": raw})
    assert response.status_code == 200
    assert response.get_json()["links"]["self"].endswith(
        "?location=Vovchansk&actor=r%C3%A9&limit=1"
    )


def test_a_parameter_given_twice_is_named_with_every_other_refusal(client: FlaskClient) -> None:
    body = problem(client, "/api/v1/events?limit=5&limit=10&event_type=x&event_type=y", 400)
    assert [(p["name"], p["reason"]) for p in body["invalid_params"]] == [
        ("event_type.0", "Must be one of: " + ", ".join(EVENT_TYPES) + "."),
        ("event_type.1", "Must be one of: " + ", ".join(EVENT_TYPES) + "."),
        ("limit", "Given more than once; this parameter takes one value."),
    ]


@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"])
def test_an_instant_outside_utc_years_is_a_400(client: FlaskClient, instant: str) -> None:
    body = problem(client, f"/api/v1/events?updated_since={quote(instant)}", 400)
    assert [p["name"] for p in body["invalid_params"]] == ["updated_since"]
