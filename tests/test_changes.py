"""GET /api/v1/changes: a partner mirrors the whole dataset with one loop and never
misses a change, including changes made while it pages. On both engines."""

import datetime
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.store import command_author, open_store
from schemas.event import EventSchema
from tests.test_article_facts import EVENTS

KHARKIV = "ua-2024-05-30-kharkiv-missile-strike"
AVDIIVKA = "ua-2024-02-avdiivka-captured"


@pytest.fixture
def live(fresh_database: str, open_app: Callable[..., Flask]) -> tuple[FlaskClient, str]:
    """A client on a copy of the seeded database that tests may write to."""
    return open_app(fresh_database).test_client(), fresh_database


def writer_change(
    database: str,
    edit: dict | None = None,
    create: dict | None = None,
    delete: str | None = None,
) -> None:
    """Another writer's transaction, a command's: the seed's load of curated events
    (updated, created, or unchanged and left alone), or a deletion."""
    store = open_store(database)
    now = datetime.datetime.now(datetime.UTC)
    try:
        with store.writer() as writer:
            if edit or create:
                loaded = [EventSchema().load(e) for e in (edit, create) if e]
                writer.load_curated(loaded, command_author(), now)
            if delete:
                writer.delete_event(delete, writer.event(delete).body, command_author(), now)
    finally:
        store.close()


def loadable(client: FlaskClient, event_id: str) -> dict:
    event = client.get(f"/api/v1/events/{event_id}").get_json()
    event.pop("acled")
    event.pop("updated_at")
    return event


def page(client: FlaskClient, url: str) -> dict:
    response = client.get(url)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-cache"
    return response.get_json()


def relative(url: str) -> str:
    split = urlsplit(url)
    return f"{split.path}?{split.query}"


def test_a_fresh_database_lists_every_event_as_created_in_order(client: FlaskClient) -> None:
    body = page(client, "/api/v1/changes?limit=1000")
    assert [c["seq"] for c in body["data"]] == list(range(1, 18))
    assert {c["change"] for c in body["data"]} == {"created"}
    assert sorted(c["event_id"] for c in body["data"]) == sorted(EVENTS)
    first = body["data"][0]
    assert first["event"] == client.get(f"/api/v1/events/{first['event_id']}").get_json()
    assert first["changed_at"] == first["event"]["updated_at"]
    assert body["links"]["next"] is None
    assert body["meta"]["count"] == 17
    caught_up = page(client, f"/api/v1/changes?since={body['meta']['since']}")
    assert caught_up["data"] == []
    assert caught_up["meta"]["since"] == body["meta"]["since"]


def test_pages_follow_next_until_caught_up(client: FlaskClient) -> None:
    url, seqs = "/api/v1/changes?limit=5", []
    while url:
        body = page(client, url)
        seqs += [c["seq"] for c in body["data"]]
        url = body["links"]["next"] and relative(body["links"]["next"])
    assert seqs == list(range(1, 18))


def test_reseeding_unchanged_data_adds_no_change(live: tuple[FlaskClient, str]) -> None:
    client, path = live
    since = page(client, "/api/v1/changes?limit=1000")["meta"]["since"]
    before = client.get(f"/api/v1/events/{KHARKIV}").get_json()
    writer_change(path, edit=loadable(client, KHARKIV))
    assert page(client, f"/api/v1/changes?since={since}")["data"] == []
    assert client.get(f"/api/v1/events/{KHARKIV}").get_json() == before


def test_an_edit_moves_the_event_to_the_end_as_updated(live: tuple[FlaskClient, str]) -> None:
    client, path = live
    since = page(client, "/api/v1/changes?limit=1000")["meta"]["since"]
    edited = loadable(client, KHARKIV)
    edited["notes"] += " Corrected."
    writer_change(path, edit=edited)
    (change,) = page(client, f"/api/v1/changes?since={since}")["data"]
    assert (change["seq"], change["change"], change["event_id"]) == (18, "updated", KHARKIV)
    assert change["event"]["notes"].endswith(" Corrected.")
    assert (
        change["event"]["updated_at"]
        > page(client, "/api/v1/changes?limit=1")["data"][0]["changed_at"]
    )
    ids = [c["event_id"] for c in page(client, "/api/v1/changes?limit=1000")["data"]]
    assert ids.count(KHARKIV) == 1 and ids[-1] == KHARKIV


def test_a_deletion_is_a_tombstone(live: tuple[FlaskClient, str]) -> None:
    client, path = live
    writer_change(path, delete=AVDIIVKA)
    last = page(client, "/api/v1/changes?limit=1000")["data"][-1]
    assert (last["change"], last["event_id"], last["event"]) == ("deleted", AVDIIVKA, None)
    gone = client.get(f"/api/v1/events/{AVDIIVKA}")
    assert gone.status_code == 410
    assert gone.content_type == "application/problem+json"
    assert AVDIIVKA not in {e["id"] for e in client.get("/api/v1/events").get_json()["data"]}


def test_updated_since_finds_what_changed(live: tuple[FlaskClient, str]) -> None:
    client, path = live
    edited = loadable(client, KHARKIV)
    edited["notes"] += " Corrected."
    cut = datetime.datetime.now(datetime.UTC).isoformat()
    writer_change(path, edit=edited)
    query = f"/api/v1/events?updated_since={cut.replace('+00:00', 'Z')}"
    assert [e["id"] for e in client.get(query).get_json()["data"]] == [KHARKIV]
    assert (
        len(
            client.get("/api/v1/events?updated_since=2000-01-01T00:00:00%2B02:00").get_json()[
                "data"
            ]
        )
        == 17
    )


@pytest.mark.parametrize(
    "query",
    ["since=garbage!", "since=" + "A" * 600, "limit=0", "after=1"],
)
def test_bad_parameters_are_refused(client: FlaskClient, query: str) -> None:
    response = client.get(f"/api/v1/changes?{query}")
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"


def test_an_events_cursor_is_not_a_changes_token(client: FlaskClient) -> None:
    cursor = client.get("/api/v1/events?limit=1").get_json()["links"]["next"].split("cursor=")[1]
    response = client.get(f"/api/v1/changes?since={cursor}")
    assert response.status_code == 400
    assert response.get_json()["invalid_params"][0] == {
        "name": "since",
        "in": "query",
        "reason": "Not a cursor issued by this API; use links.next as given.",
    }


def test_a_mirror_kept_by_the_feed_equals_the_database(live: tuple[FlaskClient, str]) -> None:
    """While a partner pages through the feed, another writer edits, creates and
    deletes events between its pages; the mirror ends equal to the database."""
    client, path = live
    edited = loadable(client, KHARKIV)
    edited["notes"] += " Corrected."
    created = {**loadable(client, KHARKIV), "id": "ua-2024-06-01-new-event"}
    interleaved: list[dict[str, Any]] = [
        {"edit": edited},
        {"create": created},
        {"delete": AVDIIVKA},
        {"delete": "ua-2024-06-01-new-event"},
        {"create": {**created, "id": "ua-2024-06-02-another"}},
    ]
    mirror: dict[str, dict] = {}
    url = "/api/v1/changes?limit=3"
    while True:
        body = page(client, url)
        for change in body["data"]:
            if change["change"] == "deleted":
                mirror.pop(change["event_id"], None)
            else:
                mirror[change["event_id"]] = change["event"]
        since = body["meta"]["since"]
        if interleaved:
            writer_change(path, **interleaved.pop(0))
        elif body["links"]["next"] is None:
            break
        # At the end of the feed the saved token resumes it, as the next sync would.
        next_url = body["links"]["next"]
        url = relative(next_url) if next_url else f"/api/v1/changes?limit=3&since={since}"
    final = page(client, f"/api/v1/changes?since={since}")
    assert final["data"] == []
    database = {e["id"]: e for e in client.get("/api/v1/events?limit=1000").get_json()["data"]}
    assert mirror == database
    assert "ua-2024-06-02-another" in mirror and AVDIIVKA not in mirror
