"""Partners' errors with stable types (issue 21, item 6): each conflict of a write
has a problem type and members a program reads instead of the prose, and
Idempotency-Key is bounded. Through the Flask test client on a writable copy of the
seeded database."""

import datetime
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api import create_app
from api.keys import create_key
from api.storage import open_for_writing
from schemas.fields import TIMESTAMP_FORMAT

KHARKIV = "ua-2024-05-30-kharkiv-missile-strike"
PROBLEM = "application/problem+json"
NEW = "ua-2024-06-01-partner-strike"


class Partner:
    """The Flask test client on a writable copy of the seeded database, with a write
    key (which may change only the events it creates)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.client: FlaskClient = create_app(
            {"DATABASE": str(path), "TESTING": True, "RATE_LIMITS_ENABLED": False}
        ).test_client()
        db = open_for_writing(str(path))
        self.key = create_key(db, "Newsroom", "write")
        db.close()

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **extra}

    def event(self, event_id: str = NEW, **changes: Any) -> dict[str, Any]:
        """A new event made from a curated one, at another id."""
        event = self.client.get(f"/api/v1/events/{KHARKIV}").get_json()
        for output_only in ("acled", "updated_at"):
            event.pop(output_only)
        return {**event, "id": event_id, "date": "2024-06-01", "notes": "A new event.", **changes}

    def post_bytes(self, body: bytes, **headers: str) -> TestResponse:
        return self.client.post(
            "/api/v1/events",
            data=body,
            content_type="application/json",
            headers=self.headers(**headers),
        )

    def post(self, *events: dict[str, Any], **headers: str) -> TestResponse:
        return self.post_bytes(orjson.dumps({"events": list(events)}), **headers)

    def etag(self, event_id: str = NEW) -> str:
        return str(self.client.get(f"/api/v1/events/{event_id}").headers["ETag"])

    def patch(self, etag: str, event_id: str = NEW, notes: str = "Changed.") -> TestResponse:
        return self.client.patch(
            f"/api/v1/events/{event_id}",
            json={"notes": notes},
            headers=self.headers(**{"If-Match": etag}),
        )

    def delete(self, etag: str, event_id: str = NEW) -> TestResponse:
        return self.client.delete(
            f"/api/v1/events/{event_id}", headers=self.headers(**{"If-Match": etag})
        )

    def sql(self, statement: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.path)
        try:
            with conn:
                return conn.execute(statement, args).fetchall()
        finally:
            conn.close()

    def events(self) -> int:
        return int(self.sql("SELECT count(*) FROM events")[0][0])


@pytest.fixture
def partner(seeded_db: Path, tmp_path: Path) -> Partner:
    path = tmp_path / "writable.db"
    shutil.copy(seeded_db, path)
    return Partner(path)


def problem(response: TestResponse, status: int, type_: str) -> dict[str, Any]:
    """The response's problem document, checked to be of this status and type."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == PROBLEM
    body: dict[str, Any] = response.get_json()
    assert (body["type"], body["status"]) == (type_, status)
    return body


# Each conflict has its type and members.


def test_ids_taken_are_a_409_listing_them(partner: Partner) -> None:
    assert partner.post(partner.event()).status_code == 201
    gone = "ua-2024-06-01-gone"
    assert partner.post(partner.event(gone)).status_code == 201
    assert partner.delete(partner.etag(gone), gone).status_code == 204
    before = partner.events()
    twice = "ua-2024-06-02-twice"
    response = partner.post(
        partner.event(twice), partner.event(), partner.event(twice), partner.event(gone),
        partner.event("ua-2024-06-02-fine"),
    )  # fmt: skip
    body = problem(response, 409, "/problems/id-taken")
    # Existing, deleted (a tombstone keeps its id) and twice in the batch, sorted.
    assert body["conflicting_ids"] == sorted([NEW, gone, twice])
    assert body["title"] == "Conflict"
    assert body["detail"] == (
        f"These ids exist already or twice in the batch: {', '.join(sorted([NEW, gone, twice]))}. "
        "Change an existing event with PATCH."
    )
    assert partner.events() == before


def test_a_place_or_source_that_would_change_is_a_409_naming_the_records(
    partner: Partner,
) -> None:
    moved = partner.event()
    moved["location"] = {**moved["location"], "latitude": 50.5, "longitude": 36.5}
    body = problem(partner.post(moved), 409, "/problems/shared-record-conflict")
    assert body["conflicting_records"] == [
        {
            "record": "location",
            "id": moved["location"]["id"],
            "fields": ["latitude", "longitude"],
            "against": "stored",
        }
    ]
    # Two events of one write describing a new source each their own way.
    source = {**moved["source"], "id": "partner-report-1", "title": "One title"}
    first = partner.event(source=source)
    second = partner.event("ua-2024-06-02-other", source={**source, "title": "Another"})
    body = problem(partner.post(first, second), 409, "/problems/shared-record-conflict")
    assert body["conflicting_records"] == [
        {"record": "source", "id": "partner-report-1", "fields": ["title"], "against": "batch"}
    ]
    # PATCH meets it too.
    assert partner.post(partner.event()).status_code == 201
    response = partner.client.patch(
        f"/api/v1/events/{NEW}",
        json={"location": moved["location"]},
        headers=partner.headers(**{"If-Match": partner.etag()}),
    )
    body = problem(response, 409, "/problems/shared-record-conflict")
    assert [r["against"] for r in body["conflicting_records"]] == ["stored"]


def test_a_stale_if_match_is_a_412_with_the_current_etag(partner: Partner) -> None:
    assert partner.post(partner.event()).status_code == 201
    read = partner.etag()
    assert partner.patch(read, notes="Someone else's change.").status_code == 200
    for response in (partner.patch(read), partner.delete(read)):
        body = problem(response, 412, "/problems/precondition-failed")
        assert body["title"] == "Precondition Failed"
        # What GET sends now, usable as it is in If-Match.
        assert body["current_etag"] == partner.etag()
    assert partner.patch(body["current_etag"]).status_code == 200
    # A missing If-Match is still the plain 428.
    missing = partner.client.patch(
        f"/api/v1/events/{NEW}", json={"notes": "x"}, headers=partner.headers()
    )
    assert (missing.status_code, missing.get_json()["type"]) == (428, "about:blank")


def test_a_deleted_event_is_a_410_naming_it_and_when(partner: Partner) -> None:
    assert partner.post(partner.event()).status_code == 201
    etag = partner.etag()
    assert partner.delete(etag).status_code == 204
    ((deleted_at,),) = partner.sql("SELECT deleted_at FROM event_tombstones WHERE id = ?", NEW)
    datetime.datetime.strptime(deleted_at, TIMESTAMP_FORMAT)
    for response in (
        partner.client.get(f"/api/v1/events/{NEW}"),
        partner.patch(etag),
        partner.delete(etag),
    ):
        body = problem(response, 410, "/problems/event-deleted")
        assert (body["event_id"], body["deleted_at"]) == (NEW, deleted_at)
        assert body["title"] == "Gone"
    # An id that never existed stays a plain 404.
    never = partner.client.get("/api/v1/events/ua-2024-06-01-never")
    assert (never.status_code, never.get_json()["type"]) == (404, "about:blank")


def test_a_key_reused_with_another_body_is_a_422_naming_the_key(partner: Partner) -> None:
    assert partner.post(partner.event(), **{"Idempotency-Key": "batch-1"}).status_code == 201
    before = partner.events()
    response = partner.post(partner.event(notes="Other notes."), **{"Idempotency-Key": "batch-1"})
    body = problem(response, 422, "/problems/idempotency-key-reused")
    assert body["idempotency_key"] == "batch-1"
    assert body["title"] == "Idempotency key reused"
    assert partner.events() == before


# Idempotency-Key: bounded.


@pytest.mark.parametrize(
    "key",
    ["k" * 256, "a\x01b", "tab\there", "del\x7f", "line\x0bbreak"],
    ids=["256-chars", "soh", "tab", "del", "vertical-tab"],
)
def test_a_key_too_long_or_with_a_control_character_is_a_400_naming_the_header(
    partner: Partner, key: str
) -> None:
    before = partner.events()
    body = problem(
        partner.post(partner.event(), **{"Idempotency-Key": key}),
        400,
        "/problems/invalid-parameters",
    )
    assert [(p["name"], p["in"]) for p in body["invalid_params"]] == [("Idempotency-Key", "header")]
    assert partner.events() == before


def test_a_key_of_255_visible_characters_works(partner: Partner) -> None:
    key = "".join(chr(0x21 + i % 94) for i in range(255))
    assert partner.post(partner.event(), **{"Idempotency-Key": key}).status_code == 201
    again = partner.post(partner.event(), **{"Idempotency-Key": key})
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
    assert partner.sql("SELECT idempotency_key FROM idempotent_requests") == [(key,)]
