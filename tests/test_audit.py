"""The audit trail (issue 18, item 10): every change to an event, whoever makes it,
key creation and revocation, and restores, each with its request or run id and the
client's address; X-Request-Id on every response."""

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from api import create_app
from api.__main__ import main as api_main
from api.store.sqlite.keys import create_key, revoke_key
from api.store.sqlite.layout import open_for_writing
from seed.__main__ import main as seed_main
from tests.test_seed import data_dir, revise_notes  # noqa: F401 (a fixture)
from tests.test_writes import KHARKIV, Partner

FIXTURES = Path(__file__).parent / "fixtures" / "imports"


def entries(path: Path, where: str = "1") -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    rows = [
        dict(row) for row in conn.execute(f"SELECT * FROM audit_log WHERE {where} ORDER BY seq")
    ]
    conn.close()
    for row in rows:
        row["detail"] = row["detail"] and json.loads(row["detail"])
    return rows


@pytest.fixture
def partner(seeded_db: Path, tmp_path: Path) -> Partner:
    path = tmp_path / "audited.db"
    shutil.copy(seeded_db, path)
    return Partner(path)


def test_every_response_carries_a_fresh_request_id(partner: Partner) -> None:
    client = create_app(
        {"DATABASE": str(partner.path), "RATE_LIMIT_ANONYMOUS": "3/minute"}
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
    (entry,) = entries(partner.path, "key_id IS NOT NULL")
    assert entry["action"] == "update" and entry["event_id"] == KHARKIV
    assert entry["request_id"] == response.headers["X-Request-Id"]
    assert entry["client_address"] == "203.0.113.7"


def test_key_creation_and_revocation_are_audited(tmp_path: Path, seeded_db: Path) -> None:
    path = tmp_path / "keys.db"
    shutil.copy(seeded_db, path)
    db = open_for_writing(str(path))
    key = create_key(db, "Newsroom", "write")
    key_id = key.split("_")[1]
    assert revoke_key(db, key_id)
    assert not revoke_key(db, key_id)
    db.close()
    created, revoked = entries(path, "action LIKE 'key-%'")
    assert created["detail"] == {"key_id": key_id, "name": "Newsroom", "scope": "write"}
    assert revoked["action"] == "key-revoke" and revoked["detail"] == {"key_id": key_id}
    for entry in (created, revoked):
        # A command on the server: no key, no address, a run id.
        assert entry["key_id"] is None and entry["client_address"] is None
        assert entry["request_id"].startswith("run-")
    assert key.split("_", 2)[2] not in json.dumps(created)


def test_the_seed_audits_what_it_writes_and_its_overwrite_of_a_partners_edit(
    tmp_path: Path,
    data_dir: Path,  # noqa: F811
) -> None:
    path = tmp_path / "seeded.db"
    assert seed_main(["--db", str(path), "--data", str(data_dir)]) == 0
    first = entries(path)
    assert [e["action"] for e in first] == ["create"] * 17 + ["seed"]
    assert first[-1]["detail"]["new"] == 17
    assert len({e["request_id"] for e in first}) == 1  # one run
    partner = Partner(path)
    _, etag = partner.event()
    edit = partner.client.patch(
        f"/api/v1/events/{KHARKIV}",
        json={"notes": "A partner's edit."},
        headers=partner.headers(**{"If-Match": etag}),
    )
    assert edit.status_code == 200
    revise_notes(data_dir, KHARKIV)
    assert seed_main(["--db", str(path), "--data", str(data_dir)]) == 0
    overwrite, load = entries(path)[-2:]
    assert (overwrite["action"], overwrite["event_id"], overwrite["key_id"]) == (
        "update",
        KHARKIV,
        None,
    )
    assert json.loads(overwrite["before"])["notes"] == "A partner's edit."
    assert json.loads(overwrite["after"])["notes"] == "Revised by the curators."
    assert load["action"] == "seed" and load["detail"]["updated"] == 1


def test_bulk_loads_are_audited_once_each(tmp_path: Path) -> None:
    path = tmp_path / "bulk.db"
    argv = ["--db", str(path)]
    assert seed_main([*argv, "synthetic", "--events", "30", "--workers", "1"]) == 0
    assert seed_main([*argv, "import", "--format", "acled", str(FIXTURES / "acled.csv")]) == 0
    synthetic, imported = entries(path)
    assert synthetic["action"] == "synthetic" and synthetic["detail"]["events"] == 30
    assert imported["action"] == "import"
    assert imported["detail"]["file"] == str(FIXTURES / "acled.csv")
    assert imported["detail"]["format"] == "acled" and imported["detail"]["new"] > 0


def test_a_restore_keeps_the_live_log_and_appends_its_own_entry(
    partner: Partner, tmp_path: Path
) -> None:
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
