"""Partners' errors with stable types (issue 21, item 6): each conflict of a write
has a problem type and members a program reads instead of the prose; Idempotency-Key
is bounded, its answers expire after IDEMPOTENCY_KEEP and are purged, and a body is
compared by its parsed content. Through the Flask test client on a writable copy of
the seeded database, on both engines; the purge's SQLite query plan and SQLite's
`python -m api init` run on SQLite only."""

import datetime
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask
from werkzeug.test import TestResponse

from api.__main__ import main as api_main
from api.store import database_file
from api.store.sqlite.partners import (
    IDEMPOTENCY_KEEP,
    IDEMPOTENCY_PURGE_BATCH,
    purge_idempotent_requests,
)
from schemas.fields import TIMESTAMP_FORMAT
from tests.engines import execute, rows, write_key

KHARKIV = "ua-2024-05-30-kharkiv-missile-strike"
PROBLEM = "application/problem+json"
NEW = "ua-2024-06-01-partner-strike"


class Partner:
    """The Flask test client (of `app`) on a writable copy of the seeded database, of
    either engine, with a write key (which may change only the events it creates)."""

    def __init__(self, database: str, app: Flask) -> None:
        self.database = database
        self.client = app.test_client()
        self.key = write_key(database, "Newsroom", "write")

    @property
    def path(self) -> Path:
        """The database file, for the tests of what only SQLite has."""
        return Path(database_file(self.database))

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

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """The rows of a query, past what the API shows."""
        return rows(self.database, query, *args)

    def change(self, statement: str, *args: Any) -> None:
        """Change rows the API would not, committed."""
        execute(self.database, statement, args)

    def events(self) -> int:
        return int(self.sql("SELECT count(*) FROM events")[0][0])


@pytest.fixture
def partner(fresh_database: str, open_app: Callable[..., Flask]) -> Partner:
    return Partner(fresh_database, open_app(fresh_database))


@pytest.fixture
def sqlite_partner(seeded_db: Path, tmp_path: Path, open_app: Callable[..., Flask]) -> Partner:
    """A partner on a copy of the seeded SQLite file, for the tests of SQLite's own."""
    path = tmp_path / "writable.db"
    shutil.copy(seeded_db, path)
    return Partner(str(path), open_app(str(path)))


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


# Bodies compared by their parsed content.


def test_the_same_json_in_another_key_order_and_whitespace_replays(partner: Partner) -> None:
    event = partner.event()
    first = partner.post_bytes(orjson.dumps({"events": [event]}), **{"Idempotency-Key": "k"})
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers

    def reversed_keys(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: reversed_keys(value[k]) for k in reversed(list(value))}
        if isinstance(value, list):
            return [reversed_keys(v) for v in value]
        return value

    # Keys reversed at every depth, indented, with a space before each colon and a
    # character escaped as \uXXXX: other bytes, the same JSON.
    other_bytes = json.dumps(reversed_keys({"events": [event]}), indent=3, ensure_ascii=True)
    other_bytes = other_bytes.replace('": ', '" : ').replace('"A new', '"\\u0041 new')
    assert other_bytes.encode() != orjson.dumps({"events": [event]})
    again = partner.post_bytes(other_bytes.encode(), **{"Idempotency-Key": "k"})
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
    assert again.get_data() == first.get_data()
    assert partner.sql("SELECT count(*) FROM audit_log WHERE key_id IS NOT NULL")[0][0] == 1

    # Another content under the same key, however small the change, is the 422.
    for changed in (
        partner.event(notes="A new event!"),
        {**event, "munitions": [{**event["munitions"][0], "launched": 9}]},
    ):
        problem(
            partner.post(changed, **{"Idempotency-Key": "k"}),
            422,
            "/problems/idempotency-key-reused",
        )


def test_an_answer_kept_before_content_digests_replays_the_same_bytes(partner: Partner) -> None:
    """Answers stored by an earlier Salvo hold the SHA-256 of the bytes sent: a retry of
    those bytes replays, within their last IDEMPOTENCY_KEEP."""
    body = orjson.dumps({"events": [partner.event()]})
    assert partner.post_bytes(body, **{"Idempotency-Key": "old"}).status_code == 201
    partner.change(
        "UPDATE idempotent_requests SET request_digest = ?", hashlib.sha256(body).digest()
    )
    again = partner.post_bytes(body, **{"Idempotency-Key": "old"})
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
    other = partner.post(partner.event(notes="Other."), **{"Idempotency-Key": "old"})
    problem(other, 422, "/problems/idempotency-key-reused")


# Answers expire, and are purged.


def _age(partner: Partner, key: str, by: datetime.timedelta) -> None:
    """Move the stored answer of this Idempotency-Key `by` into the past."""
    ((created_at,),) = partner.sql(
        "SELECT created_at FROM idempotent_requests WHERE idempotency_key = ?", key
    )
    moved = datetime.datetime.strptime(created_at, TIMESTAMP_FORMAT) - by
    partner.change(
        "UPDATE idempotent_requests SET created_at = ? WHERE idempotency_key = ?",
        moved.strftime(TIMESTAMP_FORMAT),
        key,
    )


def test_an_answer_is_replayed_for_the_whole_window(partner: Partner) -> None:
    assert datetime.timedelta(hours=24) == IDEMPOTENCY_KEEP  # as the docs say
    assert partner.post(partner.event(), **{"Idempotency-Key": "k"}).status_code == 201
    _age(partner, "k", IDEMPOTENCY_KEEP - datetime.timedelta(minutes=1))
    again = partner.post(partner.event(), **{"Idempotency-Key": "k"})
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")


def test_an_expired_key_is_new(partner: Partner) -> None:
    assert partner.post(partner.event(), **{"Idempotency-Key": "k"}).status_code == 201
    _age(partner, "k", IDEMPOTENCY_KEEP + datetime.timedelta(seconds=1))
    # Another body under the key: written, not a 422.
    other = partner.event("ua-2024-06-02-next-day")
    response = partner.post(other, **{"Idempotency-Key": "k"})
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert [e["id"] for e in response.get_json()["data"]] == [other["id"]]
    # The key now answers with that write, for another window.
    again = partner.post(other, **{"Idempotency-Key": "k"})
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
    assert again.get_data() == response.get_data()
    assert partner.sql("SELECT count(*) FROM idempotent_requests")[0][0] == 1
    # The first body again, its window over too: a new request, whose id is taken.
    problem(partner.post(partner.event(), **{"Idempotency-Key": "k2"}), 409, "/problems/id-taken")


def _store_answers(partner: Partner, ages: list[datetime.timedelta]) -> None:
    """Answers of other keys (one revoked long ago, say), each as old as given."""
    now = datetime.datetime.now(datetime.UTC)
    answers = [
        (f"old-key-{i}", f"key-{i}", b"\x00", 201, b"{}", (now - age).strftime(TIMESTAMP_FORMAT))
        for i, age in enumerate(ages)
    ]
    partner.change(
        "INSERT INTO idempotent_requests (key_id, idempotency_key, request_digest, status, "
        f"body, created_at) VALUES {', '.join(['(?, ?, ?, ?, ?, ?)'] * len(answers))}",
        *[value for answer in answers for value in answer],
    )


def test_each_post_purges_a_few_expired_answers_oldest_first(partner: Partner) -> None:
    day = IDEMPOTENCY_KEEP
    expired = [day * 30 - datetime.timedelta(minutes=i) for i in range(25)]
    kept = [day - datetime.timedelta(minutes=5), datetime.timedelta(minutes=1)]
    _store_answers(partner, [*expired, *kept])

    def left() -> list[str]:
        return [k for (k,) in partner.sql("SELECT key_id FROM idempotent_requests ORDER BY 1")]

    # A POST without a key purges as well: the oldest IDEMPOTENCY_PURGE_BATCH.
    assert partner.post(partner.event()).status_code == 201
    assert len(left()) == 25 + 2 - IDEMPOTENCY_PURGE_BATCH
    assert "old-key-0" not in left() and "old-key-24" in left()
    # A write that is refused is rolled back, its purge with it.
    problem(partner.post(partner.event()), 409, "/problems/id-taken")
    assert len(left()) == 25 + 2 - IDEMPOTENCY_PURGE_BATCH
    for i in range(2):
        assert partner.post(partner.event(f"ua-2024-06-0{i + 2}-more")).status_code == 201
    # Every expired answer gone; those within the window kept.
    assert left() == ["old-key-25", "old-key-26"]


def test_the_purge_reads_the_index_from_its_start(sqlite_partner: Partner) -> None:
    """SQLite only: its query plan, and SQLite's purge at a chosen instant."""
    partner = sqlite_partner
    conn = sqlite3.connect(partner.path)
    plan = " ".join(
        row[3]
        for row in conn.execute(
            "EXPLAIN QUERY PLAN DELETE FROM idempotent_requests WHERE rowid IN (SELECT rowid "
            "FROM idempotent_requests WHERE created_at < ? ORDER BY created_at LIMIT ?)",
            ["2026-01-01T00:00:00.000000Z", IDEMPOTENCY_PURGE_BATCH],
        )
    )
    assert "idempotent_requests_created" in plan and "SCAN idempotent_requests " not in plan
    # The function itself, at a chosen instant (its caller passes the write's own).
    _store_answers(partner, [datetime.timedelta(days=3)] * 3)
    at = datetime.datetime.now(datetime.UTC)
    with conn:
        # Three days before now, the answers were in their window.
        assert purge_idempotent_requests(conn, at - datetime.timedelta(days=3), limit=2) == 0
        assert purge_idempotent_requests(conn, at, limit=2) == 2
        assert purge_idempotent_requests(conn, at, limit=2) == 1
    conn.close()


def test_a_database_without_the_index_gets_it_from_api_init(
    sqlite_partner: Partner, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite only: the write path's check of the file's layout, and `python -m api
    init`."""
    partner = sqlite_partner
    partner.change("DROP INDEX idempotent_requests_created")
    refused = partner.post(partner.event())
    body = problem(refused, 503, "/problems/database-unavailable")
    assert "idempotent_requests_created" in body["detail"]
    assert "python -m api init" in body["detail"]
    assert api_main(["--db", str(partner.path), "init"]) == 0
    assert "idempotent_requests_created" in capsys.readouterr().out
    assert partner.post(partner.event()).status_code == 201
