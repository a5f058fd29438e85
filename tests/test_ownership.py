"""Ownership (issue 18, item 3): a write key changes only the events it created, an
admin key any, on both engines; SQLite databases from before owners were recorded get
them from the audit log."""

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.problems import NOT_THE_OWNER
from api.store import database_file, open_store
from api.store.sqlite.layout import (
    _EARLIER_LAYOUTS,
    OutdatedLayout,
    layout_differences,
    open_existing_for_writing,
)
from tests.engines import rows
from tests.test_writes import KHARKIV

NEW = "ua-2024-06-01-partner-a-strike"


class Partners:
    """Two newsrooms with write keys and an operator with an admin key, on a writable
    copy of the seeded database (of either engine), through `app`."""

    def __init__(self, database: str, app: Flask) -> None:
        self.database = database
        store = open_store(database)
        try:
            self.a = store.create_key("Newsroom A", "write")
            self.b = store.create_key("Newsroom B", "write")
            self.admin = store.create_key("Operator", "admin")
        finally:
            store.close()
        self.client: FlaskClient = app.test_client()

    @property
    def path(self) -> Path:
        """The database file, for the tests of what only SQLite has."""
        return Path(database_file(self.database))

    def create(self, key: str, event_id: str = NEW) -> None:
        event = self.client.get(f"/api/v1/events/{KHARKIV}").get_json()
        for output_only in ("acled", "updated_at"):
            event.pop(output_only)
        event = {**event, "id": event_id, "date": "2024-06-01", "notes": "A new event."}
        response = self.client.post("/api/v1/events", json={"events": [event]}, headers=_auth(key))
        assert response.status_code == 201, response.get_json()

    def patch(self, key: str, event_id: str, notes: str = "Changed."):  # type: ignore[no-untyped-def]
        etag = self.client.get(f"/api/v1/events/{event_id}").headers["ETag"]
        return self.client.patch(
            f"/api/v1/events/{event_id}",
            json={"notes": notes},
            headers={**_auth(key), "If-Match": etag},
        )

    def delete(self, key: str, event_id: str):  # type: ignore[no-untyped-def]
        etag = self.client.get(f"/api/v1/events/{event_id}").headers["ETag"]
        return self.client.delete(
            f"/api/v1/events/{event_id}", headers={**_auth(key), "If-Match": etag}
        )


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _key_id(key: str) -> str:
    return key.split("_")[1]


@pytest.fixture
def partners(fresh_database: str, open_app: Callable[..., Flask]) -> Partners:
    return Partners(fresh_database, open_app(fresh_database))


@pytest.fixture
def sqlite_partners(seeded_db: Path, tmp_path: Path, open_app: Callable[..., Flask]) -> Partners:
    """Partners on a copy of the seeded SQLite file, for the tests of SQLite's own."""
    path = tmp_path / "owned.db"
    shutil.copy(seeded_db, path)
    return Partners(str(path), open_app(str(path)))


def test_a_write_key_changes_and_deletes_its_own_events(partners: Partners) -> None:
    partners.create(partners.a)
    assert partners.patch(partners.a, NEW).status_code == 200
    assert partners.delete(partners.a, NEW).status_code == 204


def test_another_write_key_is_refused_with_a_not_the_owner_problem(partners: Partners) -> None:
    partners.create(partners.a)
    for refused in (partners.patch(partners.b, NEW), partners.delete(partners.b, NEW)):
        assert refused.status_code == 403
        assert refused.content_type == "application/problem+json"
        problem = refused.get_json()
        assert problem["type"] == NOT_THE_OWNER
        assert NEW in problem["detail"] and "another API key" in problem["detail"]
        # The other partner's key stays private.
        assert _key_id(partners.a) not in problem["detail"]
        assert "Newsroom A" not in problem["detail"]
    assert partners.client.get(f"/api/v1/events/{NEW}").get_json()["notes"] == "A new event."


def test_a_write_key_may_not_change_or_delete_a_curated_event(partners: Partners) -> None:
    for refused in (partners.patch(partners.a, KHARKIV), partners.delete(partners.a, KHARKIV)):
        assert refused.status_code == 403
        assert refused.get_json()["type"] == NOT_THE_OWNER
        assert "is curated" in refused.get_json()["detail"]
    assert partners.client.get(f"/api/v1/events/{KHARKIV}").status_code == 200


def test_an_admin_key_creates_changes_and_deletes_any_event(partners: Partners) -> None:
    partners.create(partners.a)
    assert partners.patch(partners.admin, NEW, "Corrected by the operator.").status_code == 200
    assert partners.patch(partners.admin, KHARKIV).status_code == 200
    assert partners.delete(partners.admin, NEW).status_code == 204
    partners.create(partners.admin, "ua-2024-06-02-operator-event")
    # The audit entry names the key that made each change.
    audited = rows(
        partners.database,
        "SELECT key_id, action, event_id FROM audit_log WHERE key_id IS NOT NULL ORDER BY seq",
    )
    admin = _key_id(partners.admin)
    assert audited == [
        (_key_id(partners.a), "create", NEW),
        (admin, "update", NEW),
        (admin, "update", KHARKIV),
        (admin, "delete", NEW),
        (admin, "create", "ua-2024-06-02-operator-event"),
    ]


def test_the_cli_creates_admin_keys(partners: Partners) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "api", "--db", partners.database, "keys", "create",
         "--name", "Second operator", "--scope", "admin"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert partners.patch(created.stdout.strip(), KHARKIV).status_code == 200


def _lay_out_as_before_owners(path: Path) -> None:
    """Turn a current database into one laid out by the version before event owners
    and the wider audit log: audit_log in its earlier CREATE statement with the API's
    rows (the only ones that version wrote), no event_owners."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TABLE event_owners")
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("DROP TRIGGER audit_log_no_delete")
        conn.execute("ALTER TABLE audit_log RENAME TO audit_log_now")
        conn.execute(_EARLIER_LAYOUTS["audit_log"])
        conn.execute(
            "INSERT INTO audit_log SELECT seq, at, key_id, key_name, action, event_id, before, "
            "after FROM audit_log_now WHERE key_id IS NOT NULL"
        )
        conn.execute("DROP TABLE audit_log_now")
        for verb in ("UPDATE", "DELETE"):
            conn.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
            )
    conn.close()


def _audit(path: Path) -> list[tuple[int, str, str, str]]:
    conn = sqlite3.connect(path)
    rows = conn.execute(
        "SELECT seq, key_id, action, event_id FROM audit_log WHERE key_id IS NOT NULL ORDER BY seq"
    ).fetchall()
    conn.close()
    return rows


@pytest.mark.parametrize("upgrade", ["api init", "seed"])
def test_a_database_from_before_owners_is_upgraded_keeping_partners_events(
    sqlite_partners: Partners, upgrade: str, open_app: Callable[..., Flask]
) -> None:
    """SQLite only: a SQLite layout from before owners (PostgreSQL's layout had them
    from its first version), upgraded by `python -m api init` or the seed."""
    partners = sqlite_partners
    partners.create(partners.a)
    partners.create(partners.b, "ua-2024-06-02-partner-b-strike")
    assert partners.patch(partners.a, NEW).status_code == 200
    _lay_out_as_before_owners(partners.path)
    before = _audit(partners.path)
    assert [row[2] for row in before] == ["create", "create", "update"]

    conn = sqlite3.connect(partners.path)
    assert layout_differences(conn) == (["audit_log", "event_owners"], [])
    conn.close()
    # The API opens no file of another layout, and says how to upgrade it. (A copy:
    # this process checked the file's layout already, and trusts it until restarted.)
    copy = partners.path.with_name("copy.db")
    source, target = sqlite3.connect(partners.path), sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    with pytest.raises(OutdatedLayout, match="python -m api init"):
        open_existing_for_writing(str(copy))

    module, *args = upgrade.split()
    subprocess.run(
        [sys.executable, "-m", module, "--db", str(partners.path), *args],
        capture_output=True, check=True,
    )  # fmt: skip

    conn = sqlite3.connect(partners.path)
    assert layout_differences(conn) == ([], [])
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_log")
    conn.close()
    assert _audit(partners.path) == before
    # Each partner's events are still theirs, and only theirs.
    partners.client = open_app(partners.database).test_client()
    assert partners.patch(partners.b, NEW).status_code == 403
    assert partners.patch(partners.a, NEW, "Again.").status_code == 200
    assert partners.patch(partners.b, "ua-2024-06-02-partner-b-strike").status_code == 200
    assert partners.patch(partners.a, KHARKIV).status_code == 403
