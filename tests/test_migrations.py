"""Schema versions and `python -m api migrate` (docs/operations.md, "Upgrades"): a
database written by the previous release (tests/fixtures/predecessor.db.gz, made by
tests/fixtures/make_predecessor_db.py) is upgraded in place, and every row it held, and
everything a partner or a mirror holds from before, still works. SQLite only: the
previous release wrote SQLite files; PostgreSQL's layout and upgrades are
tests/test_postgresql_layout.py's."""

import datetime
import gzip
import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlite_utils
from flask.testing import FlaskClient

from api import create_app
from api.__main__ import _unservable
from api.store.sqlite import migrations
from api.store.sqlite.keys import create_key
from api.store.sqlite.layout import (
    SCHEMA_VERSION,
    NewerSchema,
    OlderSchema,
    create_tables,
    layout_differences,
    open_for_writing,
    schema_version,
)
from api.store.sqlite.migrations import STEPS, Step, open_migrated, rerender_documents
from schemas.fields import TIMESTAMP_FORMAT
from tests.server import ROOT

FIXTURES = Path(__file__).parent / "fixtures"
FACTS = json.loads((FIXTURES / "predecessor.json").read_text())
KEYS = FACTS["keys"]
KEPT = FACTS["edited"]["id"]
KHARKIV = "ua-2024-05-30-kharkiv-missile-strike"
UPGRADE = (
    "  1: events.seq and event_tombstones.seq became unique indexes (the single writer's "
    "contract), and the schema version is recorded (the table schema_version)\n"
    "  created schema_version, stats_series_weeks_types, stats_series_weeks_types_emptied, "
    "stats_series_months_admin1, stats_series_months_admin1_emptied, "
    "stats_series_months_admin1_admin1\n"
)


def command(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m <module> *args` as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True
    )


def migrate(path: Path) -> subprocess.CompletedProcess[str]:
    return command("api", "--db", str(path), "migrate")


@pytest.fixture
def predecessor(tmp_path: Path) -> Path:
    """A copy of the database the previous release wrote (schema version 0).

    Its idempotent answers are dated now: they were stored the day the fixture was
    made, and are replayed for 24 hours only, so they stand for a file upgraded the
    day it was last written."""
    path = tmp_path / "salvo.db"
    path.write_bytes(gzip.decompress((FIXTURES / "predecessor.db.gz").read_bytes()))
    now = datetime.datetime.now(datetime.UTC).strftime(TIMESTAMP_FORMAT)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE idempotent_requests SET created_at = ?", [now])
    conn.close()
    return path


def client(path: Path) -> FlaskClient:
    return create_app({"DATABASE": str(path), "RATE_LIMITS_ENABLED": False}).test_client()


def contents(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (the full-text and R*Tree indexes' own tables included),
    but the table statistics and the schema version."""
    conn = sqlite3.connect(path)
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name != 'schema_version' AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'"
        )
    ]
    rows = {table: sorted(conn.execute(f'SELECT * FROM "{table}"'), key=repr) for table in tables}
    conn.close()
    return rows


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def changes(api: FlaskClient, since: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """Every change after the token `since` (from the start without one), page after
    page as a mirror reads them, and the token to keep."""
    query = "" if since is None else f"&since={since}"
    items: list[dict[str, Any]] = []
    while True:
        page = api.get(f"/api/v1/changes?limit=5{query}").get_json()
        items += page["data"]
        if page["links"]["next"] is None:
            return items, page["meta"]["since"]
        query = f"&since={page['meta']['since']}"


def etags(api: FlaskClient, ids: list[str]) -> dict[str, str]:
    return {event_id: api.get(f"/api/v1/events/{event_id}").headers["ETag"] for event_id in ids}


def patch_notes(api: FlaskClient, key: str, event_id: str, notes: str) -> Any:
    etag = api.get(f"/api/v1/events/{event_id}").headers["ETag"]
    return api.patch(
        f"/api/v1/events/{event_id}",
        data=orjson.dumps({"notes": notes}),
        headers=bearer(key, **{"If-Match": etag, "Content-Type": "application/merge-patch+json"}),
    )


def test_an_upgrade_keeps_everything_partners_and_mirrors_hold(predecessor: Path) -> None:
    ids = sorted(FACTS["etags"])
    api = client(predecessor)
    # Before: the file reads as the previous release served it, and refuses writes
    # with what to run (as does `init`, which no longer upgrades).
    before = contents(predecessor)
    audit = "SELECT seq, action, key_name FROM audit_log ORDER BY seq"
    audited = rows(predecessor, audit)
    assert schema_version(sqlite3.connect(predecessor)) == 0
    feed, since = changes(api)
    assert since == FACTS["since"]
    assert etags(api, ids) == FACTS["etags"]
    post = FACTS["idempotent_post"]
    another = {**post["body"]["events"][0], "id": "ua-2024-06-03-partner-refused-strike"}
    refused = api.post("/api/v1/events", json={"events": [another]}, headers=bearer(KEYS["write"]))
    assert refused.status_code == 503
    assert refused.get_json()["detail"] == (
        "The events database is at schema version 0 (from before schema versions), older "
        f"than this Salvo's {SCHEMA_VERSION}: run `python -m api migrate` to upgrade it."
    )
    init = command("api", "--db", str(predecessor), "init")
    assert (init.returncode, init.stderr) == (
        1,
        f"api: {predecessor} is at schema version 0 (from before schema versions), older "
        f"than this Salvo's {SCHEMA_VERSION}: run `python -m api migrate` to upgrade it\n",
    )

    upgraded = migrate(predecessor)
    assert upgraded.returncode == 0, upgraded.stderr
    head, rest = upgraded.stdout.split("\n", 1)
    assert head.startswith(f"api: migrated {predecessor} from schema version 0 to 1 in ")
    assert rest == UPGRADE

    # Nothing was lost or changed: every row of every table is as it was; the tables
    # the release adds are rollups, filled from the events (test_rollups proves them).
    kept = contents(predecessor)
    assert {table: kept[table] for table in before} == before
    assert set(kept) - set(before) == {"stats_series_weeks_types", "stats_series_months_admin1"}
    conn = sqlite3.connect(predecessor)
    assert schema_version(conn) == SCHEMA_VERSION
    assert layout_differences(conn) == ([], [])
    conn.close()
    # The same app (a server left running): what it refused, it now serves.
    # A mirror: its token from before is good, and nothing came after it (this
    # upgrade renders no document anew); the feed and the ETags are the same.
    assert changes(api, FACTS["since"]) == ([], FACTS["since"])
    assert changes(api) == (feed, since)
    assert etags(api, ids) == FACTS["etags"]
    unchanged = {"If-None-Match": FACTS["etags"][KHARKIV]}
    assert api.get(f"/api/v1/events/{KHARKIV}", headers=unchanged).status_code == 304
    for deleted in FACTS["deleted"]:
        assert api.get(f"/api/v1/events/{deleted}").status_code == 410
    # A partner: the same POST with the same Idempotency-Key replays the first answer.
    replayed = api.post(
        "/api/v1/events",
        json=post["body"],
        headers=bearer(KEYS["write"], **{"Idempotency-Key": post["idempotency_key"]}),
    )
    assert (replayed.status_code, replayed.get_json()) == (post["status"], post["answer"])
    assert replayed.headers["Idempotent-Replayed"] == "true"
    # Keys authenticate with their scopes and owners; the revoked one does not.
    assert patch_notes(api, KEYS["write"], KEPT, "Edited after the upgrade.").status_code == 200
    assert patch_notes(api, KEYS["write"], KHARKIV, "Not the partner's.").status_code == 403
    assert patch_notes(api, KEYS["read"], KEPT, "A read key.").status_code == 403
    assert patch_notes(api, KEYS["revoked"], KEPT, "Revoked.").status_code == 401
    assert patch_notes(api, KEYS["admin"], KHARKIV, "The curators'.").status_code == 200
    # The mirror's token from before now gets exactly those two writes, in order.
    after, _ = changes(api, FACTS["since"])
    assert [(c["event_id"], c["change"]) for c in after] == [
        (KEPT, "updated"),
        (KHARKIV, "updated"),
    ]
    assert [c["seq"] for c in after] == [FACTS["highest_seq"] + 1, FACTS["highest_seq"] + 2]
    # The audit log goes on after the previous release's entries.
    last = audited[-1][0]
    assert rows(predecessor, audit) == [
        *audited,
        (last + 1, "update", "Newsroom"),
        (last + 2, "update", "Operator"),
    ]
    # Re-seeding keeps what partners deleted and edited, as it did before.
    seeded = command("seed", "--db", str(predecessor))
    assert seeded.returncode == 0, seeded.stderr
    assert seeded.stdout.endswith(
        "0 new, 0 updated, 15 unchanged, 1 kept as edited through the API, "
        "1 kept deleted through the API\n"
    )


def test_migrating_twice_changes_nothing_the_second_time(predecessor: Path) -> None:
    assert migrate(predecessor).returncode == 0
    once = contents(predecessor)
    again = migrate(predecessor)
    assert (again.returncode, again.stdout, again.stderr) == (
        0,
        f"api: {predecessor} is at schema version {SCHEMA_VERSION}, this Salvo's; nothing to do\n",
        "",
    )
    assert contents(predecessor) == once


def test_the_seed_migrates_and_says_so(predecessor: Path) -> None:
    seeded = command("seed", "--db", str(predecessor))
    assert seeded.returncode == 0, seeded.stderr
    head, rest = seeded.stdout.split("\n", 1)
    assert head.startswith(f"seed: migrated {predecessor} from schema version 0 to 1 in ")
    assert rest.startswith(UPGRADE)
    assert rest.removeprefix(UPGRADE).startswith("seed: 17 curated events from ")
    assert schema_version(sqlite3.connect(predecessor)) == SCHEMA_VERSION


def test_a_fresh_seed_is_at_the_newest_version(seeded_db: Path, tmp_path: Path) -> None:
    conn = sqlite3.connect(seeded_db)
    assert schema_version(conn) == SCHEMA_VERSION == STEPS[-1].version
    assert layout_differences(conn) == ([], [])
    conn.close()
    copy = tmp_path / "copy.db"
    shutil.copy(seeded_db, copy)
    assert migrate(copy).stdout == (
        f"api: {copy} is at schema version {SCHEMA_VERSION}, this Salvo's; nothing to do\n"
    )
    # So is an empty one from `python -m api init`.
    empty = tmp_path / "empty.db"
    assert command("api", "--db", str(empty), "init").returncode == 0
    assert schema_version(sqlite3.connect(empty)) == SCHEMA_VERSION


def test_a_file_of_a_newer_version_is_refused_untouched(seeded_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    shutil.copy(seeded_db, path)
    db = open_for_writing(str(path))
    key = create_key(db, "Newsroom", "admin")
    db.close()
    newer = SCHEMA_VERSION + 1
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE schema_version SET version = ?", [newer])
    conn.close()
    before = contents(path)
    said = (
        f"{path} is at schema version {newer}, newer than this Salvo's {SCHEMA_VERSION}: a "
        "later release upgraded it, and this one does not know that layout; run that "
        "release or a later one (a release never downgrades a file)"
    )
    for argv, refusal in [
        (["api", "--db", str(path), "migrate"], f"api: not migrated, {path} is unchanged: {said}"),
        (["api", "--db", str(path), "init"], f"api: {said}"),
        (["api", "--db", str(path), "serve", "--port", "9"], f"api: not serving: {said}"),
        (["seed", "--db", str(path)], f"seed: {said}"),
        (["api", "--db", str(path), "keys", "list"], f"api: {said}"),
    ]:
        result = command(*argv)
        assert (result.returncode, result.stdout, result.stderr) == (1, "", refusal + "\n")
    api = client(path)
    event = {**FACTS["idempotent_post"]["body"]["events"][0], "id": "ua-2024-06-03-too-new"}
    refused = api.post("/api/v1/events", json={"events": [event]}, headers=bearer(key))
    assert refused.status_code == 503
    assert refused.get_json()["detail"] == f"The events database {said.removeprefix(f'{path} ')}."
    assert contents(path) == before
    with pytest.raises(NewerSchema):
        open_migrated(str(path))


def test_serving_an_older_file_warns_that_writes_wait_for_migrate(
    predecessor: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What `python -m api serve` checks before it starts Granian: an older file is
    # served (reads work), with a warning.
    assert _unservable(str(predecessor)) is None
    assert capsys.readouterr().err == (
        f"api: warning: {predecessor} is at schema version 0, older than this Salvo's "
        f"{SCHEMA_VERSION}: reads are served, writes refused (503) until you run "
        "`python -m api migrate`\n"
    )
    assert client(predecessor).get(f"/api/v1/events/{KHARKIV}").status_code == 200
    with pytest.raises(OlderSchema, match="run `python -m api migrate`"):
        open_migrated(str(predecessor), upgrade=False)


def test_a_failed_upgrade_leaves_the_file_as_it_was(predecessor: Path) -> None:
    before = contents(predecessor)

    def fails(db: sqlite_utils.Database) -> str | None:
        raise sqlite3.OperationalError("the disk is full (a test)")

    with pytest.raises(sqlite3.OperationalError, match="a test"):
        open_migrated(str(predecessor), (*STEPS, Step(SCHEMA_VERSION + 1, "fails", fails)))
    conn = sqlite3.connect(predecessor)
    assert schema_version(conn) == 0
    assert conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events_seq'").fetchone() == (
        "CREATE INDEX events_seq ON events (seq)",
    )
    conn.close()
    assert contents(predecessor) == before


def test_changes_that_shared_a_seq_take_new_ones_after_every_token(predecessor: Path) -> None:
    """Salvo's single writer never gave two changes one seq, but a file edited by hand
    may hold such a pair: the unique indexes could not be built over it. The upgrade
    keeps the first holder and gives the others new numbers, so a mirror fetches them
    again (rather than skip one where a page ends between them)."""
    conn = sqlite3.connect(predecessor)
    with conn:
        (tombstone_seq,) = conn.execute(
            "SELECT seq FROM event_tombstones WHERE id = ?", [FACTS["deleted"][0]]
        ).fetchone()
        conn.execute("UPDATE events SET seq = ? WHERE id = ?", [tombstone_seq, KHARKIV])
        conn.execute("UPDATE events SET seq = 3 WHERE id = ?", [KEPT])
    conn.close()
    upgraded = migrate(predecessor)
    assert upgraded.returncode == 0, upgraded.stderr
    assert (
        "; 2 changes that shared a seq with another took new ones (mirrors fetch them again)\n"
    ) in upgraded.stdout
    # The first holder of each seq keeps it (events before tombstones, then by row):
    # the tombstone and the later event move.
    after, _ = changes(client(predecessor), FACTS["since"])
    assert [(c["seq"], c["event_id"], c["change"]) for c in after] == [
        (FACTS["highest_seq"] + 1, KEPT, "updated"),
        (FACTS["highest_seq"] + 2, FACTS["deleted"][0], "deleted"),
    ]
    seqs, _ = changes(client(predecessor))
    assert len({c["seq"] for c in seqs}) == len(seqs)


def _as_an_older_release_rendered_it(path: Path, event_id: str, change: dict[str, Any]) -> None:
    """Store the event's document with `change` applied, and digests to match, as a
    release that rendered it otherwise would have stored it."""
    conn = sqlite3.connect(path)
    with conn:
        (row_id, body) = conn.execute(
            "SELECT e.row_id, d.body FROM events e JOIN event_documents d USING (row_id) "
            "WHERE e.id = ?",
            [event_id],
        ).fetchone()
        document = {**orjson.loads(body), **change}
        updated_at = document.pop("updated_at")
        content = orjson.dumps(document)
        body = orjson.dumps({**document, "updated_at": updated_at})
        conn.execute(
            "UPDATE event_documents SET body = ?, digest = ?, content_digest = ? WHERE row_id = ?",
            [body.decode(), _sha1(body), _sha1(content), row_id],
        )
    conn.close()


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data, usedforsecurity=False).digest()


def test_a_step_that_renders_documents_anew_renews_their_etags_in_changes(
    seeded_db: Path, tmp_path: Path
) -> None:
    path = tmp_path / "salvo.db"
    shutil.copy(seeded_db, path)
    api = client(path)
    stats = api.get("/api/v1/stats?group_by=event_type").get_json()
    _, since = changes(api)
    stale = {"disorder_type": "Political violence", "event_type": "Old", "sub_event_type": "Old"}
    _as_an_older_release_rendered_it(path, KHARKIV, {"acled": stale})
    # A document this release cannot load any more: left as it is, and named.
    broken = "ua-2024-05-30-kharkiv-north-missile-strike"
    _as_an_older_release_rendered_it(path, broken, {"date_precision": "fortnight"})
    ids = [event_id for (event_id,) in rows(path, "SELECT id FROM events ORDER BY id")]
    before = etags(api, ids)
    renders = Step(SCHEMA_VERSION + 1, "renders ACLED's types anew", lambda db: None, rerender=True)

    db, migration = open_migrated(str(path), (*STEPS, renders))
    db.close()
    assert (migration.rerendered, migration.unrenderable) == (1, [broken])
    assert migration.described().endswith(
        "  1 event rendered anew (new ETags; /changes lists them after every token issued "
        "before)\n  1 event left as they were, as their stored documents no longer load "
        f"(correct or delete them through the API): {broken}"
    )
    after, _ = changes(api, since)
    assert [(c["event_id"], c["change"]) for c in after] == [(KHARKIV, "updated")]
    assert after[0]["event"]["acled"]["sub_event_type"] == "Shelling/artillery/missile attack"
    now = etags(api, ids)
    assert {i for i in now if now[i] != before[i]} == {KHARKIV}
    assert api.get("/api/v1/stats?group_by=event_type").get_json() == stats


def test_this_release_renders_the_previous_ones_documents_as_it_did(predecessor: Path) -> None:
    """No step of this release renders documents anew, because none needs to: every
    document the previous release stored renders the same today. A release that
    changes how documents render fails here until it adds a Step(rerender=True)."""
    assert not any(step.rerender for step in STEPS)
    assert migrate(predecessor).returncode == 0
    db = sqlite_utils.Database(predecessor)
    db.execute("BEGIN")
    try:
        assert rerender_documents(db) == (0, [])
    finally:
        db.execute("ROLLBACK")
        db.close()


def test_files_that_lack_objects_of_this_version_get_them_from_migrate(
    seeded_db: Path, tmp_path: Path
) -> None:
    path = tmp_path / "lacking.db"
    shutil.copy(seeded_db, path)
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX events_source")
    conn.close()
    result = migrate(path)
    assert result.stdout == (
        f"api: {path} is at schema version {SCHEMA_VERSION}; created events_source\n"
    )
    assert layout_differences(sqlite3.connect(path)) == ([], [])


def test_the_layout_create_tables_makes_is_the_newest_version(tmp_path: Path) -> None:
    db = sqlite_utils.Database(tmp_path / "new.db")
    create_tables(db)
    assert schema_version(db.conn) == SCHEMA_VERSION
    db.close()
    assert migrations.STEPS[-1].version == SCHEMA_VERSION
