"""The audit trail (issue 18, item 10): every change to an event, whoever makes it,
key creation and revocation, and restores, each with its request or run id and the
client's address; X-Request-Id on every response. On both engines, but for what only
SQLite has (the CSV import's bulk path, `python -m api backup` and `restore`)."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from api.__main__ import main as api_main
from api.store import open_store
from seed.__main__ import main as seed_main
from tests.engines import rows
from tests.test_seed import data_dir, revise_notes  # noqa: F401 (a fixture)
from tests.test_writes import KHARKIV, Partner

FIXTURES = Path(__file__).parent / "fixtures" / "imports"

AUDIT_COLUMNS = (
    "seq", "at", "key_id", "key_name", "action", "event_id", "before", "after", "request_id",
    "client_address", "detail",
)  # fmt: skip


def entries(database: str | Path, where: str = "1 = 1") -> list[dict[str, Any]]:
    """The audit log's entries (on either engine), oldest first, details parsed."""
    found = [
        dict(zip(AUDIT_COLUMNS, row, strict=True))
        for row in rows(
            str(database),
            f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log WHERE {where} ORDER BY seq",
        )
    ]
    for row in found:
        row["detail"] = row["detail"] and json.loads(row["detail"])
    return found


@pytest.fixture
def partner(fresh_database: str, open_app: Callable[..., Flask]) -> Partner:
    return Partner(fresh_database, open_app(fresh_database))


@pytest.fixture
def empty_database(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of the test's engine with nothing in it yet, for a seed to create:
    a SQLite path where no file is, or a new PostgreSQL database with PostGIS."""
    if engine == "sqlite":
        return str(tmp_path / "empty.db")
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


def test_every_response_carries_a_fresh_request_id(
    database: str, open_app: Callable[..., Flask]
) -> None:
    client = open_app(
        database, RATE_LIMITS_ENABLED=True, RATE_LIMIT_ANONYMOUS="3/minute"
    ).test_client()
    responses = [
        client.get("/api/v1/events", headers={"X-Request-Id": "chosen-by-the-client"}),
        client.get("/no-such-page"),
        client.get("/api/v1/events", headers={"Authorization": "Bearer bogus"}),
        client.get("/api/v1/events"),  # 429
    ]
    assert [r.status_code for r in responses] == [200, 404, 401, 429]
    ids = [r.headers["X-Request-Id"] for r in responses]
    assert len(set(ids)) == 4 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    # Browsers' scripts may read it.
    assert "X-Request-Id" in responses[0].headers["Access-Control-Expose-Headers"]


def test_an_api_write_is_audited_with_its_request_id_and_address(partner: Partner) -> None:
    _, etag = partner.event()
    response = partner.client.patch(
        f"/api/v1/events/{KHARKIV}",
        json={"notes": "Corrected."},
        headers=partner.headers(**{"If-Match": etag}),
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    assert response.status_code == 200
    (entry,) = entries(partner.database, "key_id IS NOT NULL")
    assert entry["action"] == "update" and entry["event_id"] == KHARKIV
    assert entry["request_id"] == response.headers["X-Request-Id"]
    assert entry["client_address"] == "203.0.113.7"


def test_key_creation_and_revocation_are_audited(fresh_database: str) -> None:
    store = open_store(fresh_database)
    try:
        key = store.create_key("Newsroom", "write")
        key_id = key.split("_")[1]
        assert store.revoke_key(key_id)
        assert not store.revoke_key(key_id)
    finally:
        store.close()
    created, revoked = entries(fresh_database, "action LIKE 'key-%'")
    assert created["detail"] == {"key_id": key_id, "name": "Newsroom", "scope": "write"}
    assert revoked["action"] == "key-revoke" and revoked["detail"] == {"key_id": key_id}
    for entry in (created, revoked):
        # A command on the server: no key, no address, a run id.
        assert entry["key_id"] is None and entry["client_address"] is None
        assert entry["request_id"].startswith("run-")
    assert key.split("_", 2)[2] not in json.dumps(created)


def test_the_seed_audits_what_it_writes_and_its_overwrite_of_a_partners_edit(
    empty_database: str,
    open_app: Callable[..., Flask],
    data_dir: Path,  # noqa: F811
) -> None:
    path = empty_database
    assert seed_main(["--db", path, "--data", str(data_dir)]) == 0
    first = entries(path)
    assert [e["action"] for e in first] == ["create"] * 17 + ["seed"]
    assert first[-1]["detail"]["new"] == 17
    assert len({e["request_id"] for e in first}) == 1  # one run
    partner = Partner(path, open_app(path))
    _, etag = partner.event()
    edit = partner.client.patch(
        f"/api/v1/events/{KHARKIV}",
        json={"notes": "A partner's edit."},
        headers=partner.headers(**{"If-Match": etag}),
    )
    assert edit.status_code == 200
    revise_notes(data_dir, KHARKIV)
    assert seed_main(["--db", path, "--data", str(data_dir)]) == 0
    overwrite, load = entries(path)[-2:]
    assert (overwrite["action"], overwrite["event_id"], overwrite["key_id"]) == (
        "update",
        KHARKIV,
        None,
    )
    assert json.loads(overwrite["before"])["notes"] == "A partner's edit."
    assert json.loads(overwrite["after"])["notes"] == "Revised by the curators."
    assert load["action"] == "seed" and load["detail"]["updated"] == 1


def test_a_synthetic_load_is_audited_once(empty_database: str) -> None:
    argv = ["--db", empty_database, "synthetic", "--events", "30", "--workers", "1"]
    assert seed_main(argv) == 0
    (synthetic,) = entries(empty_database)
    assert synthetic["action"] == "synthetic" and synthetic["detail"]["events"] == 30


def test_bulk_loads_are_audited_once_each(empty_database: str) -> None:
    path = empty_database
    argv = ["--db", path]
    assert seed_main([*argv, "synthetic", "--events", "30", "--workers", "1"]) == 0
    assert seed_main([*argv, "import", "--format", "acled", str(FIXTURES / "acled.csv")]) == 0
    synthetic, imported = entries(path)
    assert synthetic["action"] == "synthetic" and synthetic["detail"]["events"] == 30
    assert imported["action"] == "import"
    assert imported["detail"]["file"] == str(FIXTURES / "acled.csv")
    assert imported["detail"]["format"] == "acled" and imported["detail"]["new"] > 0


def test_a_restore_keeps_the_live_log_and_appends_its_own_entry(
    seeded_db: Path, tmp_path: Path, open_app: Callable[..., Flask]
) -> None:
    """SQLite only: `python -m api backup` and `restore`, which PostgreSQL refuses
    (pg_dump and pg_restore: docs/operations.md)."""
    path = tmp_path / "audited.db"
    shutil.copy(seeded_db, path)
    partner = Partner(path, open_app(str(path)))
    backup = tmp_path / "backup.db"
    assert api_main(["--db", str(partner.path), "backup", str(backup)]) == 0
    _, etag = partner.event()
    after_backup = partner.client.patch(
        f"/api/v1/events/{KHARKIV}",
        json={"notes": "Written after the backup."},
        headers=partner.headers(**{"If-Match": etag}),
    )
    assert after_backup.status_code == 200
    live = entries(partner.path)
    assert api_main(["--db", str(partner.path), "restore", str(backup)]) == 0
    restored = entries(partner.path)
    # The live log whole, then the restore: nothing rewritten, nothing lost.
    assert restored[:-1] == live
    assert restored[-1]["action"] == "restore"
    assert restored[-1]["detail"] == {"file": str(backup.resolve()), "entries_carried_over": 1}
    # The events are the backup's.
    assert partner.client.get(f"/api/v1/events/{KHARKIV}").get_json()["notes"] != (
        "Written after the backup."
    )
