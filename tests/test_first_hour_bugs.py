"""What a front-end developer met in the first hour (issue 20): the bugs of item 6,
each reproduced as it was met (the README's commands on a fresh clone, a PATCH of a
fetched event, a filter on its own, a fetched event posted back, jQuery's
cache-buster), and the limits of item 5 (a 304 is not counted; several windows).
On both engines, but for `python -m api backup`, which copies SQLite files only."""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api.params import READ_ONLY
from api.store.filters import NEAR
from tests.server import ROOT
from tests.test_writes import KHARKIV, Partner


def python_m(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`.venv/bin/python -m *args` as the README runs it."""
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_backup_into_a_missing_folder_creates_it(seeded_db: Path, tmp_path: Path) -> None:
    """SQLite only: `python -m api backup`, which PostgreSQL refuses (pg_dump backs it
    up: docs/operations.md)."""
    # The README's command on a fresh clone, where var/backups/ does not exist yet.
    db = tmp_path / "var" / "salvo.db"
    db.parent.mkdir()
    shutil.copy(seeded_db, db)
    target = tmp_path / "var" / "backups" / "salvo-2026-12-03.db"
    result = python_m("api", "--db", str(db), "backup", str(target))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.startswith(f"api: backed up {db} to {target}: 17 events")
    # Created as every folder Salvo makes: its owner's only.
    assert target.parent.stat().st_mode & 0o777 == 0o700
    assert target.stat().st_mode & 0o777 == 0o600


def test_keys_list_into_a_closed_pipe_prints_no_traceback(fresh_database: str) -> None:
    db = fresh_database
    for number in range(3):
        created = python_m("api", "--db", db, "keys", "create", "--name", f"K{number}",
                           "--scope", "read")  # fmt: skip
        assert created.returncode == 0, created.stderr
    # `python -m api keys list | head -0`: the reader is gone before the first line
    # (here for certain: the pipe's read end is closed before the command starts).
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "api", "--db", db, "keys", "list"],
            cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert result.stderr == ""
    # What Python's docs recommend: the exit status a closed pipe means, 1.
    assert result.returncode == 1


def test_radius_km_alone_names_radius_km_and_says_it_needs_near(client: FlaskClient) -> None:
    refused = client.get("/api/v1/events?radius_km=5")
    assert refused.status_code == 400
    assert refused.json is not None
    (param,) = refused.json["invalid_params"]
    assert param["name"] == "radius_km"
    assert param["reason"] == "radius_km needs near: give the centre as near=lat,lon."


def test_near_is_described_one_way(client: FlaskClient) -> None:
    """The contract's two parameters and the README's filter table say the same."""
    spec = client.get("/api/v1/openapi.json").json
    assert spec is not None
    # Less the example the docs append to a parameter (Swagger's "Try it out" would
    # fill an `example` in).
    described = {
        param["description"].split(" Example: ")[0]
        for path in ("/api/v1/events", "/api/v1/stats")
        for param in spec["paths"][path]["get"]["parameters"]
        if param["name"] in ("near", "radius_km")
    }
    assert described == {NEAR}
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `near`, `radius_km` |"))
    assert row.split(" | ")[1] == NEAR.removesuffix(".")


@pytest.fixture
def partner(fresh_database: str, open_app: Callable[..., Flask]) -> Partner:
    return Partner(fresh_database, open_app(fresh_database))


def patched(partner: Partner, patch: dict[str, Any]) -> TestResponse:
    _, etag = partner.event()
    return partner.client.patch(
        f"/api/v1/events/{KHARKIV}", json=patch, headers=partner.headers(**{"If-Match": etag})
    )


@pytest.mark.parametrize(
    "patch",
    [
        # Both are on the event's reported_by; the patch does not repeat the list.
        {"casualties": {"killed": {"best": 1, "qualifier": "exact",
                                   "reported_by": "Oleh Syniehubov"}}},
        {"munitions": [{"category": "missile", "launched": 8, "reported_by": "Ihor Terekhov"}]},
    ],
)  # fmt: skip
def test_a_patch_may_name_a_reporter_already_on_the_event(
    partner: Partner, patch: dict[str, Any]
) -> None:
    response = patched(partner, patch)
    assert response.status_code == 200, response.get_json()
    assert {"Oleh Syniehubov", "Ihor Terekhov"} <= {
        reporter["name"] for reporter in response.get_json()["reported_by"]
    }


@pytest.mark.parametrize(
    ("patch", "name"),
    [
        # A reporter on neither the event nor the patch.
        ({"munitions": [{"category": "missile", "launched": 8, "reported_by": "Nobody"}]},
         "munitions.0.reported_by"),
        # The list shrinks under a figure that still names the one left out.
        ({"reported_by": [{"name": "Ihor Terekhov", "kind": "official"}]},
         "munitions.0.reported_by"),
    ],
)  # fmt: skip
def test_the_merged_event_is_checked_for_its_reporters(
    partner: Partner, patch: dict[str, Any], name: str
) -> None:
    before = partner.event()
    response = patched(partner, patch)
    assert response.status_code == 422
    assert [p["name"] for p in response.get_json()["invalid_params"]] == [name]
    assert partner.event() == before


def test_posting_back_a_fetched_event_names_its_read_only_fields(partner: Partner) -> None:
    fetched = partner.client.get(f"/api/v1/events/{KHARKIV}").get_json()
    refused = partner.post({**fetched, "id": "ua-2024-06-01-posted-back"})
    assert refused.status_code == 422
    # In no set order: marshmallow reports unknown fields as it finds them.
    params = sorted(refused.get_json()["invalid_params"], key=lambda param: param["name"])
    assert params == [
        {"name": f"events.0.{name}", "in": "body", "reason": READ_ONLY}
        for name in ("acled", "updated_at")
    ]


def test_a_patch_of_a_read_only_field_says_so(partner: Partner) -> None:
    response = patched(partner, {"updated_at": "2026-12-03T00:00:00Z"})
    assert response.status_code == 422
    assert response.get_json()["invalid_params"] == [
        {"name": "updated_at", "in": "body", "reason": READ_ONLY}
    ]


def test_an_unknown_body_field_lists_what_its_object_takes(partner: Partner) -> None:
    event, _ = partner.event()
    refused = partner.post({**event, "id": "ua-2024-06-01-typo", "location": {
        **event["location"], "lat": 1}})  # fmt: skip
    (param,) = refused.get_json()["invalid_params"]
    assert param["name"] == "events.0.location.lat"
    assert param["reason"] == (
        "Unknown field. This object takes: admin1, country, country_code, id, latitude, "
        "longitude, name, precision."
    )


# Every GET that takes parameters, with a query of its own where it has one.
GETS = [
    "/",
    "/api",
    "/api/v1",
    "/healthz",
    "/readyz",
    "/api/v1/events?limit=2",
    f"/api/v1/events/{KHARKIV}",
    "/api/v1/events?format=csv",
    "/api/v1/changes?limit=2",
    "/api/v1/locations",
    "/api/v1/locations/ua-kharkiv",
    "/api/v1/sources",
    "/api/v1/sources/article-2024-05-30-stoltenberg-easing-bans",
    "/api/v1/event-types",
    "/api/v1/stats?interval=month",
]


@pytest.mark.parametrize("path", GETS)
def test_jquery_cache_buster_is_accepted_and_ignored(client: FlaskClient, path: str) -> None:
    plain = client.get(path)
    separator = "&" if "?" in path else "?"
    # jQuery's `cache: false` appends the time in milliseconds.
    busted = client.get(f"{path}{separator}_=1733240000000")
    assert plain.status_code == busted.status_code == 200
    if plain.is_json:
        # The same answer; only the links that echo the request differ.
        assert without_links(busted.get_json()) == without_links(plain.get_json())
    else:
        assert busted.data == plain.data


def without_links(document: Any) -> Any:
    if not isinstance(document, dict):
        return document
    return {name: value for name, value in document.items() if name != "links"}


@pytest.mark.parametrize("name", ["__", "_x", "cache", "_t"])
def test_other_cache_busters_stay_unknown(client: FlaskClient, name: str) -> None:
    refused = client.get(f"/api/v1/events?{name}=1733240000000")
    assert refused.status_code == 400
    assert refused.get_json()["invalid_params"][0]["name"] == name


@pytest.fixture
def limited(database: str, open_app: Callable[..., Flask]) -> Callable[[str], FlaskClient]:
    """`limited(anonymous)`: a client of an app on the seed whose callers without a key
    may make `anonymous` requests."""

    def client(anonymous: str) -> FlaskClient:
        app = open_app(database, RATE_LIMITS_ENABLED=True, RATE_LIMIT_ANONYMOUS=anonymous)
        return app.test_client()

    return client


def test_a_304_is_not_counted_against_the_limit(limited: Callable[[str], FlaskClient]) -> None:
    client = limited("3/minute")
    first = client.get("/api/v1/events?limit=2")
    assert first.headers["RateLimit-Remaining"] == "2"
    conditional = {"If-None-Match": first.headers["ETag"]}
    for _ in range(10):
        revalidated = client.get("/api/v1/events?limit=2", headers=conditional)
        assert revalidated.status_code == 304
        assert revalidated.headers["RateLimit-Remaining"] == "2"
    # A full answer is counted, whatever came before it.
    assert client.get("/api/v1/event-types").headers["RateLimit-Remaining"] == "1"


def test_a_caller_with_nothing_left_is_refused_a_revalidation_too(
    limited: Callable[[str], FlaskClient],
) -> None:
    client = limited("2/minute")
    etag = client.get("/api/v1/events?limit=2").headers["ETag"]
    assert client.get("/api/v1/event-types").headers["RateLimit-Remaining"] == "0"
    refused = client.get("/api/v1/events?limit=2", headers={"If-None-Match": etag})
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers


def test_the_headers_show_the_window_met_first(limited: Callable[[str], FlaskClient]) -> None:
    # Open-Meteo's shape in small: a minute's window and a tighter hour's.
    client = limited("5/minute;3/hour")
    seen = []
    for _ in range(3):
        response = client.get("/api/v1/event-types")
        seen.append((response.headers["RateLimit-Limit"], response.headers["RateLimit-Remaining"]))
    assert seen == [("3", "2"), ("3", "1"), ("3", "0")]
    refused = client.get("/api/v1/event-types")
    assert refused.status_code == 429
    assert refused.get_json()["detail"].startswith(
        "Callers without an API key may make 3 requests per hour from one address"
    )
    # Up to 3,600 s until the oldest call leaves the hour's window.
    assert 60 < int(refused.headers["Retry-After"]) <= 3601
