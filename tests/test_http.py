"""HTTP behaviour for browsers and caches: CORS, ETag / 304, Cache-Control, versions,
on both engines. SQLite only: the read connections opening the file read-only."""

import datetime
import gzip
import sqlite3
from collections.abc import Callable
from pathlib import Path

import brotli
import pytest
from backports import zstd
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.db import close_store
from api.store import command_author, loadable, open_store
from api.store.sqlite.connections import connect_read_only
from schemas.event import EventSchema
from tests.engines import on_postgresql
from tests.test_errors import unseeded_database

__all__ = ["unseeded_database"]

KHARKIV = "ua-2024-05-30-kharkiv-missile-strike"

READ_URLS = [
    "/api/v1/events?limit=2",
    "/api/v1/events/ua-2024-02-avdiivka-captured",
    "/api/v1/locations",
    "/api/v1/locations/ua-kharkiv",
    "/api/v1/sources",
    "/api/v1/event-types",
    "/api/v1/stats?interval=month",
    "/api",
]


@pytest.mark.parametrize("url", READ_URLS)
def test_reads_carry_an_etag_and_revalidate_to_304(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=60"
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')

    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag

    stale = client.get(url, headers={"If-None-Match": '"something-else"'})
    assert stale.status_code == 200
    assert stale.get_data() == response.get_data()


def test_errors_are_not_cached(client: FlaskClient) -> None:
    response = client.get("/api/v1/events?limit=0")
    assert response.headers["Cache-Control"] == "no-store"
    assert "ETag" not in response.headers


@pytest.mark.parametrize("url", READ_URLS)
def test_any_origin_may_read_and_see_link_and_etag(client: FlaskClient, url: str) -> None:
    response = client.get(url, headers={"Origin": "https://dashboard.example"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Link", "ETag"} <= exposed


def test_a_preflight_is_answered(client: FlaskClient) -> None:
    response = client.options(
        "/api/v1/events",
        headers={
            "Origin": "https://dashboard.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "If-None-Match",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"].lower() == "if-none-match"
    assert response.headers["Access-Control-Max-Age"] == "600"


def test_a_preflight_grants_only_the_allowed_request_headers(client: FlaskClient) -> None:
    response = client.options(
        "/api/v1/events",
        headers={
            "Origin": "https://dashboard.example",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, x-secret, if-match",
        },
    )
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization, If-Match"
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]


def test_problem_responses_are_readable_cross_origin(client: FlaskClient) -> None:
    response = client.get("/api/v1/events?limit=0", headers={"Origin": "https://app.example"})
    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_an_allow_list_limits_the_origins(database: str, open_app: Callable[..., Flask]) -> None:
    client = open_app(database, CORS_ORIGINS=["https://maps.example"]).test_client()
    allowed = client.get("/api/v1/events", headers={"Origin": "https://maps.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://maps.example"
    assert "Origin" in allowed.headers["Vary"]
    refused = client.get("/api/v1/events", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Origin" in refused.headers["Vary"]
    preflight = client.options(
        "/api/v1/events",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Methods" not in preflight.headers


def test_the_allow_list_comes_from_the_environment(
    database: str, open_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALVO_CORS_ORIGINS", "https://a.example, https://b.example")
    client = open_app(database).test_client()
    response = client.get("/api/v1/events", headers={"Origin": "https://b.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://b.example"


def test_head_answers_like_get_without_a_body(client: FlaskClient) -> None:
    get = client.get("/api/v1/events?limit=3")
    head = client.head("/api/v1/events?limit=3")
    assert head.status_code == 200
    assert head.get_data() == b""
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Link"] == get.headers["Link"]


def test_the_api_lists_its_versions(client: FlaskClient) -> None:
    assert client.get("/api").get_json() == {
        "data": [
            {
                "version": "v1",
                "status": "current",
                "url": "http://localhost/api/v1",
                "openapi": "http://localhost/api/v1/openapi.json",
            }
        ]
    }


def test_liveness_reads_nothing_and_readiness_checks_the_database(client: FlaskClient) -> None:
    alive = client.get("/healthz")
    assert (alive.status_code, alive.get_json()) == (200, {"status": "ok"})
    assert alive.headers["Cache-Control"] == "no-store"
    ready = client.get("/readyz")
    assert (ready.status_code, ready.get_json()) == (200, {"status": "ready", "database": "ok"})


def test_liveness_holds_without_a_database(
    unseeded_database: str, open_app: Callable[..., Flask]
) -> None:
    client = open_app(unseeded_database).test_client()
    assert client.get("/healthz").status_code == 200
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.get_json()["type"] == "/problems/database-unavailable"
    if not on_postgresql(unseeded_database):
        assert not Path(unseeded_database).exists()  # SQLite: no file made for a read


def test_the_app_reads_the_database_from_salvo_database(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALVO_DATABASE", database)
    # Not open_app, which names the database in the app's config.
    app = create_app()
    try:
        events = app.test_client().get("/api/v1/events").get_json()["data"]
    finally:
        close_store(app)
    assert len(events) == 17


def test_the_api_cannot_write_to_its_database(seeded_db: Path) -> None:
    """SQLite only: the API's read connections open the file read-only."""
    conn = connect_read_only(str(seeded_db))
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM events")
    conn.close()


def correct_kharkiv(database: str) -> None:
    """Append " Corrected." to Kharkiv's notes, written by another process's store
    (as a re-seed or another instance would) behind the app's back."""
    store = open_store(database)
    try:
        with store.writer() as writer:
            before = writer.event(KHARKIV).body
            event = loadable(before)
            event["notes"] += " Corrected."
            writer.update_event(
                EventSchema().load(event),
                before,
                command_author(),
                datetime.datetime.now(datetime.UTC),
            )
    finally:
        store.close()


def test_a_changed_event_changes_the_etags_that_show_it(
    fresh_database: str, open_app: Callable[..., Flask]
) -> None:
    client = open_app(fresh_database).test_client()
    urls = ["/api/v1/events?limit=5", f"/api/v1/events/{KHARKIV}", "/api/v1/events?format=geojson"]
    before = {url: client.get(url).headers["ETag"] for url in urls}

    correct_kharkiv(fresh_database)

    for url in urls:
        response = client.get(url, headers={"If-None-Match": before[url]})
        assert response.status_code == 200, url
        assert response.headers["ETag"] != before[url]
        assert b"Corrected." in response.get_data()


@pytest.mark.parametrize("coding", ["zstd", "br", "gzip"])
def test_a_kept_encoding_is_never_served_for_changed_bytes(
    fresh_database: str, open_app: Callable[..., Flask], coding: str
) -> None:
    client = open_app(fresh_database).test_client()
    url, asked = "/api/v1/events?limit=5", {"Accept-Encoding": coding}
    first, again = client.get(url, headers=asked), client.get(url, headers=asked)
    assert first.get_data() == again.get_data()
    assert decoded(coding, again.get_data()) == client.get(url).get_data()

    correct_kharkiv(fresh_database)

    after = client.get(url, headers=asked)
    assert after.headers["ETag"] != first.headers["ETag"]
    assert b"Corrected." in decoded(coding, after.get_data())
    assert decoded(coding, after.get_data()) == client.get(url).get_data()


def decoded(coding: str, body: bytes) -> bytes:
    return {"zstd": zstd.decompress, "br": brotli.decompress, "gzip": gzip.decompress}[coding](body)


def test_a_refused_write_tells_a_browser_what_it_takes(client: FlaskClient) -> None:
    # A page's script reads WWW-Authenticate on this 401 (no key), Accept-Post on a 415
    # and Retry-After on a 429: every response exposes them.
    response = client.post(
        "/api/v1/events",
        data="x",
        headers={"Content-Type": "text/plain", "Origin": "https://a.example"},
    )
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Accept-Post", "Accept-Patch", "WWW-Authenticate", "Retry-After"} <= exposed
