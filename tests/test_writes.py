"""The write API: keys, validation, optimistic concurrency, idempotency and the audit
log, on both engines; the tests of SQLite's own file and layout checks (the write
path's layout check, `python -m api init`) say so and run on SQLite only."""

import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask

from api import create_app
from api.__main__ import main as api_main
from api.store import database_file, open_store
from api.store.sqlite.layout import MissingDatabase, open_existing_for_writing
from tests.engines import DATABASE_ERRORS, execute, rows, write_key

KHARKIV = "ua-2024-05-30-kharkiv-missile-strike"
PROBLEM = "application/problem+json"


class Partner:
    """A client on a writable database (a copy of the seeded one), with keys of each
    scope. `app` is the app on it (conftest's open_app closes its store); without one,
    an app of its own."""

    def __init__(self, database: str | Path, app: Flask | None = None) -> None:
        self.database = str(database)
        self.client = (app or create_app({"DATABASE": self.database})).test_client()
        # Admin: these tests correct the curated events, which only an admin key may
        # (tests/test_ownership.py holds write keys to their own events).
        self.write_key = write_key(self.database, "Newsroom", "admin")
        self.read_key = write_key(self.database, "Dashboard", "read")

    @property
    def path(self) -> Path:
        """The database file, for the tests of what only SQLite has."""
        return Path(database_file(self.database))

    def headers(self, key: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.write_key}", **extra}

    def event(self, event_id: str = KHARKIV) -> tuple[dict, str]:
        response = self.client.get(f"/api/v1/events/{event_id}")
        event = response.get_json()
        for output_only in ("acled", "updated_at"):
            event.pop(output_only)
        return event, response.headers["ETag"]

    def post(self, *events: dict, **headers: str):  # type: ignore[no-untyped-def]
        return self.client.post(
            "/api/v1/events", json={"events": list(events)}, headers=self.headers(**headers)
        )

    def audit(self) -> list[tuple]:
        return rows(
            self.database,
            # Writes made with a key; the seed and the key commands audit theirs too.
            "SELECT key_name, action, event_id FROM audit_log WHERE key_id IS NOT NULL "
            "ORDER BY seq",
        )


@pytest.fixture
def partner(fresh_database: str, open_app: Callable[..., Flask]) -> Partner:
    return Partner(fresh_database, open_app(fresh_database))


@pytest.fixture
def sqlite_partner(seeded_db: Path, tmp_path: Path, open_app: Callable[..., Flask]) -> Partner:
    """A partner on a copy of the seeded SQLite file, for the tests of SQLite's own."""
    path = tmp_path / "writable.db"
    shutil.copy(seeded_db, path)
    return Partner(path, open_app(str(path)))


def new_event(partner: Partner, event_id: str = "ua-2024-06-01-new-strike") -> dict:
    event, _ = partner.event()
    return {**event, "id": event_id, "date": "2024-06-01", "notes": "A new event."}


def secrets_of(partner: Partner) -> list[bytes]:
    # salvo_<12 hex>_<secret>: the secret itself may hold underscores.
    return [key.split("_", 2)[2].encode() for key in (partner.write_key, partner.read_key)]


def test_keys_are_stored_only_as_salted_hashes(partner: Partner) -> None:
    stored = rows(partner.database, "SELECT * FROM api_keys")
    stored += rows(partner.database, "SELECT * FROM audit_log WHERE action = 'key-create'")
    values = b"".join(
        bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
        for row in stored
        for value in row
    )
    for secret in secrets_of(partner):
        assert secret not in values
    salts = [bytes(salt) for (salt,) in rows(partner.database, "SELECT salt FROM api_keys")]
    assert len(set(salts)) == 2 and all(len(salt) == 16 for salt in salts)


def test_no_key_reaches_the_database_file(sqlite_partner: Partner) -> None:
    """SQLite only: the database file and, if the last writer left one, its
    write-ahead log, byte for byte (free pages and the log keep what rows lost)."""
    path = sqlite_partner.path
    raw = b"".join(p.read_bytes() for p in path.parent.glob(f"{path.name}*"))
    for secret in secrets_of(sqlite_partner):
        assert secret not in raw


def test_the_cli_creates_lists_and_revokes_keys(partner: Partner) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api", "--db", partner.database, "keys", *args],
            capture_output=True, text=True, check=False,
        )  # fmt: skip

    created = cli("create", "--name", "NGO", "--scope", "write")
    key = created.stdout.strip()
    assert created.returncode == 0 and key.startswith("salvo_")
    assert partner.post(new_event(partner), key=key).status_code == 201
    key_id = key.split("_")[1]
    assert f"{key_id}\tNGO\twrite\t" in cli("list").stdout
    assert cli("revoke", key_id).returncode == 0
    refused = partner.post(new_event(partner, "ua-2024-06-01-other"), key=key)
    assert refused.status_code == 401
    assert cli("revoke", key_id).returncode == 1


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Bearer salvo_000000000000_" + "A" * 43, 401),
        ("Bearer not-a-key", 401),
        ("Basic dXNlcjpwYXNz", 401),
        ("read", 403),
    ],
)
def test_writes_refuse_missing_wrong_and_read_only_keys(
    partner: Partner, authorization: str | None, status: int
) -> None:
    headers = {}
    if authorization == "read":
        headers = partner.headers(partner.read_key)
    elif authorization is not None:
        headers = {"Authorization": authorization}
    response = partner.client.post(
        "/api/v1/events", json={"events": [new_event(partner)]}, headers=headers
    )
    assert response.status_code == status
    assert response.content_type == PROBLEM
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="salvo"')
    assert partner.client.get("/api/v1/events/ua-2024-06-01-new-strike").status_code == 404


def test_a_wrong_key_on_a_read_is_refused_not_ignored(partner: Partner) -> None:
    response = partner.client.get("/api/v1/events", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    ok = partner.client.get("/api/v1/events", headers=partner.headers(partner.read_key))
    assert ok.status_code == 200


def test_create_one_event(partner: Partner) -> None:
    response = partner.post(new_event(partner))
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/v1/events/ua-2024-06-01-new-strike"
    (created,) = response.get_json()["data"]
    assert created == partner.client.get("/api/v1/events/ua-2024-06-01-new-strike").get_json()
    assert partner.audit() == [("Newsroom", "create", "ua-2024-06-01-new-strike")]


def test_a_batch_is_all_or_nothing(partner: Partner) -> None:
    good = new_event(partner, "ua-2024-06-01-good")
    bad = {**new_event(partner, "ua-2024-06-01-bad"), "date_precision": "fortnight"}
    response = partner.post(good, bad)
    assert response.status_code == 422
    assert response.get_json()["invalid_params"] == [
        {
            "name": "events.1.date_precision",
            "in": "body",
            "reason": "Must be one of: day, week, month, year.",
        }
    ]
    assert partner.client.get("/api/v1/events/ua-2024-06-01-good").status_code == 404
    assert partner.audit() == []


def test_an_existing_id_is_a_conflict(partner: Partner) -> None:
    event, _ = partner.event()
    response = partner.post(event)
    assert response.status_code == 409
    assert KHARKIV in response.get_json()["detail"]


def test_an_idempotency_key_makes_a_retry_safe(partner: Partner) -> None:
    event = new_event(partner)
    first = partner.post(event, **{"Idempotency-Key": "retry-1"})
    again = partner.post(event, **{"Idempotency-Key": "retry-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()
    assert partner.audit() == [("Newsroom", "create", "ua-2024-06-01-new-strike")]
    other = partner.post(new_event(partner, "ua-2024-06-01-x"), **{"Idempotency-Key": "retry-1"})
    assert other.status_code == 422
    assert other.get_json()["title"] == "Idempotency key reused"


def test_patch_merges_a_change_under_if_match(partner: Partner) -> None:
    _, etag = partner.event()
    response = partner.client.patch(
        f"/api/v1/events/{KHARKIV}",
        json={
            "notes": "Corrected notes.",
            "casualties": {"killed": {"best": 1, "qualifier": "exact"}},
        },
        headers=partner.headers(**{"If-Match": etag}),
    )
    assert response.status_code == 200, response.get_json()
    event = response.get_json()
    assert event["notes"] == "Corrected notes."
    assert event["casualties"]["killed"] == {
        "best": 1, "low": 1, "high": 1, "qualifier": "exact", "reported_by": None
    }  # fmt: skip
    assert event["casualties"]["injured"]["best"] == 4
    assert (
        response.headers["ETag"] == partner.client.get(f"/api/v1/events/{KHARKIV}").headers["ETag"]
    )
    assert partner.audit() == [("Newsroom", "update", KHARKIV)]


@pytest.mark.parametrize(
    ("patch", "name"),
    [
        ({"id": "another-id"}, "id"),
        (
            {"munitions": [{"category": "missile", "launched": 2, "intercepted": 3}]},
            "munitions.0.intercepted",
        ),
        ({"date": "2024-05-30", "date_precision": "month"}, "date"),
        ({"notes": None}, "notes"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_an_invalid_patch_changes_nothing(partner: Partner, patch: dict, name: str) -> None:
    before, etag = partner.event()
    response = partner.client.patch(
        f"/api/v1/events/{KHARKIV}", json=patch, headers=partner.headers(**{"If-Match": etag})
    )
    assert response.status_code == 422
    assert response.content_type == PROBLEM
    assert name in [p["name"] for p in response.get_json()["invalid_params"]]
    assert partner.event() == (before, etag)


@pytest.mark.parametrize("coding", ["gzip", "zstd", "br"])
def test_an_etag_read_compressed_is_good_for_if_match(partner: Partner, coding: str) -> None:
    # Browsers, requests and curl --compressed read events compressed, and get the
    # ETag of that representation ("<digest>:gzip"): it names the same version.
    read = partner.client.get(f"/api/v1/events/{KHARKIV}", headers={"Accept-Encoding": coding})
    assert read.headers["ETag"].endswith(f':{coding}"')
    patched = partner.client.patch(
        f"/api/v1/events/{KHARKIV}",
        json={"notes": "Corrected notes."},
        headers=partner.headers(**{"If-Match": read.headers["ETag"], "Accept-Encoding": coding}),
    )
    assert patched.status_code == 200
    deleted = partner.client.delete(
        f"/api/v1/events/{KHARKIV}",
        headers=partner.headers(**{"If-Match": patched.headers["ETag"]}),
    )
    assert deleted.status_code == 204


def test_a_stale_compressed_etag_is_still_refused(partner: Partner) -> None:
    read = partner.client.get(f"/api/v1/events/{KHARKIV}", headers={"Accept-Encoding": "gzip"})
    _, etag = partner.event()
    assert (
        partner.client.patch(
            f"/api/v1/events/{KHARKIV}",
            json={"notes": "First."},
            headers=partner.headers(**{"If-Match": etag}),
        ).status_code
        == 200
    )
    second = partner.client.patch(
        f"/api/v1/events/{KHARKIV}",
        json={"notes": "Second."},
        headers=partner.headers(**{"If-Match": read.headers["ETag"]}),
    )
    assert second.status_code == 412


def test_a_write_cannot_move_a_shared_place_or_retitle_a_shared_source(
    partner: Partner,
) -> None:
    # Kharkiv is the place of several curated events: moving it would move them all.
    moved = new_event(partner)
    moved["location"] = {**moved["location"], "latitude": 10.0, "longitude": 10.0}
    response = partner.client.post(
        "/api/v1/events", json={"events": [moved]}, headers=partner.headers()
    )
    assert response.status_code == 409
    assert (
        "location 'ua-kharkiv' is stored with latitude 49.9935, longitude 36.2304"
        in (response.get_json()["detail"])
    )
    _, etag = partner.event()
    response = partner.client.patch(
        f"/api/v1/events/{KHARKIV}",
        json={"source": {"title": "Another title"}},
        headers=partner.headers(**{"If-Match": etag}),
    )
    assert response.status_code == 409
    assert partner.client.get("/api/v1/locations/ua-kharkiv").get_json()["latitude"] == 49.9935
    assert partner.audit() == []
    # As stored, the place and source are shared as they are.
    same = partner.client.post(
        "/api/v1/events", json={"events": [new_event(partner)]}, headers=partner.headers()
    )
    assert same.status_code == 201


def test_patch_and_delete_need_if_match(partner: Partner) -> None:
    for method in (partner.client.patch, partner.client.delete):
        response = method(
            f"/api/v1/events/{KHARKIV}", json={"notes": "x"}, headers=partner.headers()
        )
        assert response.status_code == 428
        assert response.content_type == PROBLEM


def test_of_two_writers_with_the_same_etag_exactly_one_wins(partner: Partner) -> None:
    _, etag = partner.event()
    first = partner.client.patch(
        f"/api/v1/events/{KHARKIV}", json={"notes": "First edit."},
        headers=partner.headers(**{"If-Match": etag}),
    )  # fmt: skip
    second = partner.client.patch(
        f"/api/v1/events/{KHARKIV}", json={"notes": "Second edit."},
        headers=partner.headers(**{"If-Match": etag}),
    )  # fmt: skip
    assert (first.status_code, second.status_code) == (200, 412)
    assert second.content_type == PROBLEM
    assert partner.event()[0]["notes"] == "First edit."
    # The loser reads again and applies its change to the new version: nothing lost.
    _, fresh = partner.event()
    third = partner.client.patch(
        f"/api/v1/events/{KHARKIV}", json={"notes": "First edit. Second edit."},
        headers=partner.headers(**{"If-Match": fresh}),
    )  # fmt: skip
    assert third.status_code == 200
    assert [row[1] for row in partner.audit()] == ["update", "update"]


def test_delete_leaves_a_tombstone(partner: Partner) -> None:
    _, etag = partner.event()
    response = partner.client.delete(
        f"/api/v1/events/{KHARKIV}", headers=partner.headers(**{"If-Match": etag})
    )
    assert response.status_code == 204
    assert partner.client.get(f"/api/v1/events/{KHARKIV}").status_code == 410
    last = partner.client.get("/api/v1/changes?limit=1000").get_json()["data"][-1]
    assert (last["change"], last["event_id"]) == ("deleted", KHARKIV)
    again = partner.client.delete(
        f"/api/v1/events/{KHARKIV}", headers=partner.headers(**{"If-Match": etag})
    )
    assert again.status_code == 410
    assert (
        partner.post(
            {**partner.event("ua-2024-02-avdiivka-captured")[0], "id": KHARKIV}
        ).status_code
        == 409
    )
    assert partner.audit() == [("Newsroom", "delete", KHARKIV)]


def test_the_audit_log_is_append_only(partner: Partner) -> None:
    assert partner.post(new_event(partner)).status_code == 201
    for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DATABASE_ERRORS, match="append-only"):
            execute(partner.database, statement)
    ((before, after),) = rows(
        partner.database, "SELECT before, after FROM audit_log WHERE key_id IS NOT NULL"
    )
    assert before is None and '"id":"ua-2024-06-01-new-strike"' in after


def test_a_mirror_follows_writes_made_through_the_api(partner: Partner) -> None:
    """The issue's mirror test: a partner syncs with /changes while another partner
    creates, edits and deletes events through the API between its pages."""
    client = partner.client

    def edit() -> None:
        _, etag = partner.event()
        client.patch(f"/api/v1/events/{KHARKIV}", json={"notes": "Edited."},
                     headers=partner.headers(**{"If-Match": etag}))  # fmt: skip

    def delete() -> None:
        _, etag = partner.event("ua-2024-02-avdiivka-captured")
        client.delete("/api/v1/events/ua-2024-02-avdiivka-captured",
                      headers=partner.headers(**{"If-Match": etag}))  # fmt: skip

    writes = [lambda: partner.post(new_event(partner)), edit, delete,
              lambda: partner.post(new_event(partner, "ua-2024-06-02-second"))]  # fmt: skip
    mirror: dict[str, dict] = {}
    url = "/api/v1/changes?limit=4"
    while True:
        body = client.get(url).get_json()
        for change in body["data"]:
            if change["change"] == "deleted":
                mirror.pop(change["event_id"], None)
            else:
                mirror[change["event_id"]] = change["event"]
        if writes:
            writes.pop(0)()
        elif body["links"]["next"] is None:
            break
        next_url = body["links"]["next"]
        split = urlsplit(next_url) if next_url else None
        url = (
            f"{split.path}?{split.query}"
            if split
            else f"/api/v1/changes?limit=4&since={body['meta']['since']}"
        )
    database = {e["id"]: e for e in client.get("/api/v1/events?limit=1000").get_json()["data"]}
    assert mirror == database
    assert mirror[KHARKIV]["notes"] == "Edited."
    assert "ua-2024-02-avdiivka-captured" not in mirror and "ua-2024-06-02-second" in mirror


# A trigger that refuses the document of one event, on each engine.
REFUSE_THIRD = '%"id":"ua-2024-06-01-third"%'
REFUSING_TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER refuse BEFORE INSERT ON event_documents "
        f"WHEN NEW.body LIKE '{REFUSE_THIRD}' "
        "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "'BEGIN RAISE EXCEPTION ''refused by test trigger''; END'",
        "CREATE TRIGGER refuse BEFORE INSERT ON event_documents FOR EACH ROW "
        f"WHEN (NEW.body LIKE '{REFUSE_THIRD}') EXECUTE FUNCTION refuse()",
    ],
}


def test_a_write_that_fails_midway_leaves_nothing_behind(partner: Partner, engine: str) -> None:
    # The database refuses the last row of the batch, after the others were written
    # in the same transaction: the request fails and none of it stays.
    for statement in REFUSING_TRIGGERS[engine]:
        execute(partner.database, statement)
    batch = [new_event(partner, f"ua-2024-06-01-{n}") for n in ("first", "second", "third")]
    since = partner.client.get("/api/v1/changes?limit=1000").get_json()["meta"]["since"]
    response = partner.post(*batch)
    # A fault of the database is a 503 problem, never a generic 500.
    assert response.status_code == 503
    assert response.content_type == PROBLEM
    assert response.get_json()["type"] == "/problems/database-unavailable"
    for event in batch:
        assert partner.client.get(f"/api/v1/events/{event['id']}").status_code == 404
    assert partner.client.get(f"/api/v1/changes?since={since}").get_json()["data"] == []
    assert partner.audit() == []


def test_concurrent_writers_with_the_same_etag_exactly_one_wins(partner: Partner) -> None:
    """Two partners send their edits at the same moment, from two threads with their
    own connections: the writes serialise on the store's write lock (SQLite's, or
    PostgreSQL's change counter) and the second sees the first's change."""
    _, etag = partner.event()
    app = partner.client.application
    start = threading.Barrier(2)
    results: dict[str, int] = {}

    def edit(notes: str) -> None:
        client = app.test_client()
        start.wait()
        response = client.patch(
            f"/api/v1/events/{KHARKIV}", json={"notes": notes},
            headers=partner.headers(**{"If-Match": etag}),
        )  # fmt: skip
        results[notes] = response.status_code

    threads = [threading.Thread(target=edit, args=(n,)) for n in ("Edit A.", "Edit B.")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results.values()) == [200, 412]
    (winner,) = [notes for notes, status in results.items() if status == 200]
    assert partner.event()[0]["notes"] == winner
    assert partner.audit() == [("Newsroom", "update", KHARKIV)]


# Statements that read or change the layout rather than the rows: the API's write
# path runs none of them once a process has checked the file.
SCHEMA_STATEMENT = re.compile(
    r"^\s*(CREATE|DROP|ALTER)\b|sqlite_master|sqlite_schema|"
    r"PRAGMA\s+\S*(table_info|table_xinfo|table_list|index_list|index_info|index_xinfo|"
    r"foreign_key_list)",
    re.IGNORECASE,
)


def test_a_one_event_post_runs_its_own_statements_only(sqlite_partner: Partner) -> None:
    """SQLite only: sqlite3's trace callback sees every statement (psycopg has no such
    hook), and the first write's check of the file's layout."""
    partner = sqlite_partner
    statements: list[str] = []
    partner.client.application.config["WRITE_TRACE"] = statements.append
    assert partner.post(new_event(partner, "ua-2024-06-01-first")).status_code == 201
    # The process's first write to this file checks its layout (and nothing else does).
    assert any(SCHEMA_STATEMENT.search(s) for s in statements)
    statements.clear()
    assert partner.post(new_event(partner, "ua-2024-06-01-second")).status_code == 201
    assert [s for s in statements if SCHEMA_STATEMENT.search(s)] == []
    assert len(statements) < 60, statements
    assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] != "ROLLBACK"
    assert "COMMIT" in statements


def test_the_api_never_creates_a_database_file(tmp_path: Path) -> None:
    """SQLite only: the database file."""
    path = tmp_path / "missing.db"
    client = create_app({"DATABASE": str(path)}).test_client()
    response = client.post(
        "/api/v1/events",
        json={"events": []},
        headers={"Authorization": "Bearer salvo_000000000000_" + "A" * 43},
    )
    assert response.status_code == 503
    assert response.get_json()["type"] == "/problems/database-unavailable"
    # The write path on its own, as a key checked elsewhere would reach it.
    with pytest.raises(MissingDatabase):
        open_existing_for_writing(str(path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "advice"),
    [
        ("DROP INDEX events_source", "run `python -m api init`"),
        (
            "DROP INDEX events_source; CREATE INDEX events_source ON events (source_id, id)",
            "another version of Salvo",
        ),
    ],
)
def test_a_write_into_another_layout_is_refused_with_what_to_run(
    sqlite_partner: Partner, change: str, advice: str
) -> None:
    """SQLite only: the write path's check of the file's layout, and `python -m api
    init` (on PostgreSQL, `migrate` owns the layout: tests/test_postgresql_layout.py)."""
    partner = sqlite_partner
    conn = sqlite3.connect(partner.path)
    conn.executescript(change)
    conn.close()
    response = partner.post(new_event(partner))
    assert response.status_code == 503
    assert response.get_json()["type"] == "/problems/database-unavailable"
    assert "events_source" in response.get_json()["detail"]
    assert advice in response.get_json()["detail"]
    assert partner.client.get("/api/v1/events/ua-2024-06-01-new-strike").status_code == 404


def test_api_init_adds_what_the_layout_lacks(
    sqlite_partner: Partner, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite only: `python -m api init`, which PostgreSQL refuses."""
    partner = sqlite_partner
    conn = sqlite3.connect(partner.path)
    conn.execute("DROP INDEX events_source")
    conn.close()
    assert partner.post(new_event(partner)).status_code == 503
    assert api_main(["--db", str(partner.path), "init"]) == 0
    assert capsys.readouterr().out == (
        f"api: {partner.path}: created 1 tables, indexes and triggers: events_source\n"
    )
    assert partner.post(new_event(partner)).status_code == 201
    assert api_main(["--db", str(partner.path), "init"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_api_init_creates_an_empty_database_that_serves_and_takes_writes(
    sqlite_partner: Partner,
    tmp_path: Path,
    open_app: Callable[..., Flask],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SQLite only: `python -m api init`, which PostgreSQL refuses."""
    path = tmp_path / "var" / "new.db"
    assert api_main(["--db", str(path), "init"]) == 0
    assert "api_keys" in capsys.readouterr().out
    store = open_store(str(path))
    key = store.create_key("Newsroom", "admin")
    store.close()
    client = open_app(str(path)).test_client()
    assert client.get("/api/v1/events").get_json()["data"] == []
    event, _ = sqlite_partner.event()
    response = client.post(
        "/api/v1/events", json={"events": [event]}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 201
    assert client.get(f"/api/v1/events/{KHARKIV}").status_code == 200


def test_keys_cli_refuses_a_missing_database(tmp_path: Path) -> None:
    """SQLite only: a database file named wrongly is never created."""
    path = tmp_path / "typo.db"
    assert api_main(["--db", str(path), "keys", "create", "--name", "x", "--scope", "read"]) == 1
    assert not path.exists()
