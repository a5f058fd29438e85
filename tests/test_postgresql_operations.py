"""PostgreSQL operations (docs/operations.md, "Backup and restore on PostgreSQL" and
"Point-in-time recovery on PostgreSQL"), on tests/postgres.py's throwaway server: a
pg_dump restored with pg_restore into a new database, then `python -m api
renew-history`, refuses partners' change tokens from before as SQLite's `restore`
does (tests/test_operations.py), and a point-in-time recovery brings back what was
committed before the target time and nothing after it."""

import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from flask.testing import FlaskClient

from api import create_app
from api.store import open_store
from api.store.postgresql.layout import SCHEMA_VERSION
from api.v1.changes import NEWER_HISTORY, OTHER_HISTORY
from ops.postgres import (
    BIN,
    PostgresServer,
    archive_wal,
    archived_now,
    base_backup,
    missing,
    recover_to,
    start_server,
    stop_server_in,
)
from seed.__main__ import main as seed_main
from tests.server import ROOT

# Every list the API serves of the events, places and sources, and the totals.
ANSWERS = (
    "/api/v1/events?limit=1000",
    "/api/v1/locations?limit=1000",
    "/api/v1/sources?limit=1000",
    "/api/v1/stats?group_by=event_type",
    "/api/v1/changes?limit=1000",
)
# The audit log's columns but its seq (renumbered where entries are carried over).
AUDIT = "at, key_id, key_name, action, event_id, before, after, request_id, client_address, detail"
# A change token names its database's history (a random id): the answers of two
# histories are compared without it.
_TOKEN = re.compile(rb"since=[A-Za-z0-9_-]+|\"since\":\"[A-Za-z0-9_-]+\"")


def client(url: str) -> FlaskClient:
    return create_app({"DATABASE": url, "RATE_LIMITS_ENABLED": False}).test_client()


def answers(url: str) -> dict[str, bytes]:
    api = client(url)
    bodies = {}
    for path in ANSWERS:
        response = api.get(path)
        assert response.status_code == 200, (path, response.get_data())
        bodies[path] = _TOKEN.sub(b"since=", response.get_data())
    return bodies


def command(*args: str) -> subprocess.CompletedProcess[str]:
    """A command as an operator runs it: `python -m api ...` or a PostgreSQL tool."""
    argv = [sys.executable, "-m", "api", *args[1:]] if args[0] == "api" else list(args)
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def post(url: str, key: str, *event_ids: str) -> None:
    """New events through the API: the first listed event's content under new ids."""
    api = client(url)
    template = api.get("/api/v1/events?limit=1").get_json()["data"][0]
    for output_only in ("acled", "updated_at"):
        template.pop(output_only)
    events = [{**template, "id": event_id} for event_id in event_ids]
    response = api.post(
        "/api/v1/events",
        data=orjson.dumps({"events": events}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.get_json()


def token(url: str, since: str | None = None) -> str:
    body = client(url).get("/api/v1/changes?limit=1000" + (f"&since={since}" if since else ""))
    assert body.status_code == 200, body.get_json()
    return str(body.get_json()["meta"]["since"])


def changed(url: str, since: str) -> list[str]:
    body = client(url).get(f"/api/v1/changes?limit=1000&since={since}").get_json()
    return [change["event_id"] for change in body["data"]]


def refused(url: str, since: str, reason: str) -> None:
    """The problem SQLite's restore gives an old token (tests/test_operations.py)."""
    response = client(url).get(f"/api/v1/changes?since={since}")
    assert (response.status_code, response.get_json()["invalid_params"]) == (
        400,
        [{"name": "since", "in": "query", "reason": reason}],
    )


@pytest.fixture
def restored_url(postgres_server: PostgresServer) -> Iterator[str]:
    """An empty database from template0, as an operator creates one to pg_restore into
    (no PostGIS: the dump creates it), dropped after the test."""
    postgres_server.admin("CREATE DATABASE salvo_restored TEMPLATE template0")
    try:
        yield postgres_server.url("salvo_restored")
    finally:
        postgres_server.admin("DROP DATABASE IF EXISTS salvo_restored WITH (FORCE)")


def test_pg_restore_then_renew_history_refuses_the_tokens_from_before(
    fresh_postgres_url: str, restored_url: str, tmp_path: Path
) -> None:
    live = fresh_postgres_url
    assert seed_main(["--db", live]) == 0
    key = open_store(live).create_key("Newsroom", "write")
    at_the_dump = token(live)
    dumped = answers(live)
    audit_at_the_dump = rows(live, "SELECT seq, action, detail FROM audit_log ORDER BY seq")
    dump = tmp_path / "salvo.dump"
    made = command(str(BIN / "pg_dump"), "-Fc", "-f", str(dump), "-d", live)
    assert made.returncode == 0, made.stderr
    # Writes after the dump: lost by the restore, and seen by a partner's token.
    post(live, key, "ua-2024-06-01-after-the-dump", "ua-2024-06-02-after-the-dump")
    after_the_dump = token(live)
    assert changed(live, at_the_dump) == [
        "ua-2024-06-01-after-the-dump",
        "ua-2024-06-02-after-the-dump",
    ]

    loaded = command(str(BIN / "pg_restore"), "--exit-on-error", "-d", restored_url, str(dump))
    assert loaded.returncode == 0, loaded.stderr
    assert answers(restored_url) == dumped
    # The live log's entries after the dump, carried over before the renewal as SQLite's
    # restore carries them (the commands of docs/operations.md).
    [(last,)] = rows(restored_url, "SELECT max(seq) FROM audit_log")
    carried = tmp_path / "audit-after-the-dump.csv"
    for url, copy in (
        (
            live,
            f"\\copy (SELECT {AUDIT} FROM audit_log WHERE seq > {last} ORDER BY seq) "
            f"TO '{carried}' CSV",
        ),
        (restored_url, f"\\copy audit_log ({AUDIT}) FROM '{carried}' CSV"),
    ):
        copied = command(str(BIN / "psql"), "-v", "ON_ERROR_STOP=1", "-d", url, "-c", copy)
        assert copied.returncode == 0, copied.stderr
    renewed = command("api", "--db", restored_url, "renew-history")
    assert renewed.returncode == 0, renewed.stderr
    [(history,)] = rows(restored_url, "SELECT id FROM change_history")
    shown = re.sub(r":[^:@/]*@", "@", restored_url)  # without the password
    assert renewed.stdout == (
        f"api: a new change history begins in {shown} at change seq 17 (history {history}); "
        "partners resync (their tokens from before are refused)\n"
    )
    # The events, places, sources, totals and feed are the dump's.
    assert answers(restored_url) == dumped
    # The token at seq 19 is past the restored database's end; the one at seq 17,
    # taken at the dump, is from the history before the restore.
    refused(restored_url, after_the_dump, NEWER_HISTORY)
    refused(restored_url, at_the_dump, OTHER_HISTORY)
    fresh = token(restored_url)
    assert changed(restored_url, fresh) == []
    # Writes take seq 18 and 19 again: the old token is refused still, the fresh one
    # lists them.
    post(restored_url, key, "ua-2024-06-03-after-the-restore", "ua-2024-06-04-after-the-restore")
    refused(restored_url, after_the_dump, OTHER_HISTORY)
    assert changed(restored_url, fresh) == [
        "ua-2024-06-03-after-the-restore",
        "ua-2024-06-04-after-the-restore",
    ]
    # The audit log is the dump's, the live one's entries after the dump (the two
    # creations), then the renewal (and the writes after it).
    audit = rows(restored_url, f"SELECT seq, {AUDIT} FROM audit_log ORDER BY seq")
    kept = len(audit_at_the_dump)
    assert [entry[:1] + entry[4:5] for entry in audit[:kept]] == [
        (seq, action) for seq, action, _ in audit_at_the_dump
    ]
    assert audit[kept : kept + 2] == [
        (last + 1 + n, *entry[1:])
        for n, entry in enumerate(
            rows(live, f"SELECT seq, {AUDIT} FROM audit_log WHERE seq > {last} ORDER BY seq")
        )
    ]
    assert [entry[5] for entry in audit[kept : kept + 2]] == [
        "ua-2024-06-01-after-the-dump",
        "ua-2024-06-02-after-the-dump",
    ]
    seq, *_, action, _, _, _, _, _, detail = audit[kept + 2]
    assert (seq, action) == (last + 3, "renew-history")
    assert orjson.loads(detail) == {
        "previous_history": rows(live, "SELECT id FROM change_history")[0][0],
        "history": history,
        "highest_seq": 17,
    }


def test_point_in_time_recovery_then_renew_history(tmp_path: Path) -> None:
    """WAL archiving on, a base backup, write A, note the time, write B; a cluster
    recovered from the backup and the archive to that time holds A and not B, and
    after `renew-history` a token from before the recovery is refused."""
    if missing() is not None:
        pytest.skip(f"{missing()}; CI installs it")
    # A cluster of its own: archiving takes a restart, which the session's server,
    # shared with the other tests, must not undergo.
    source = start_server()
    recovered: PostgresServer | None = None
    backup: Path | None = None
    try:
        archive = source.directory / "wal-archive"
        archive_wal(source, archive)
        source.admin("CREATE DATABASE salvo")
        live = source.url("salvo")
        assert seed_main(["--db", live]) == 0
        key = open_store(live).create_key("Newsroom", "write")
        backup = base_backup(source)
        post(live, key, "ua-2024-06-01-a-before-the-target")
        after_a = token(live)
        [(target,)] = rows(live, "SELECT clock_timestamp()::text")
        # Commit timestamps are the server's clock: B commits strictly after the target.
        time.sleep(0.05)
        post(live, key, "ua-2024-06-02-b-after-the-target")
        after_b = token(live)
        archived_now(source)

        recovered = recover_to(backup, archive, target)
        backup = None  # the recovered cluster's directory now; stopped below
        url = recovered.url("salvo")
        ids = [e["id"] for e in client(url).get("/api/v1/events?limit=1000").get_json()["data"]]
        assert "ua-2024-06-01-a-before-the-target" in ids
        assert "ua-2024-06-02-b-after-the-target" not in ids
        assert len(ids) == 18
        renewed = command("api", "--db", url, "renew-history")
        assert renewed.returncode == 0, renewed.stderr
        assert " at change seq 18 " in renewed.stdout
        refused(url, after_b, NEWER_HISTORY)
        refused(url, after_a, OTHER_HISTORY)
        fresh = token(url)
        post(url, key, "ua-2024-06-03-after-the-recovery")
        refused(url, after_b, OTHER_HISTORY)
        assert changed(url, fresh) == ["ua-2024-06-03-after-the-recovery"]
    finally:
        if recovered is not None:
            stop_server_in(recovered.directory)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
        stop_server_in(source.directory)


def test_renew_history_on_sqlite_is_the_same_command(tmp_path: Path) -> None:
    """On SQLite, `restore` renews by itself; renew-history serves a file brought back
    another way (a filesystem snapshot), with the same refusal and audit entry."""
    db = str(tmp_path / "salvo.db")
    assert seed_main(["--db", db]) == 0
    before = token(db)
    previous = open_store(db).feed_position().history
    renewed = command("api", "--db", db, "renew-history")
    assert renewed.returncode == 0, renewed.stderr
    position = open_store(db).feed_position()
    assert (position.old_tokens_until, position.highest_seq) == (0, 17)
    assert renewed.stdout == (
        f"api: a new change history begins in {db} at change seq 17 (history "
        f"{position.history}); partners resync (their tokens from before are refused)\n"
    )
    refused(db, before, OTHER_HISTORY)
    assert changed(db, token(db)) == []
    with sqlite3.connect(db) as conn:
        [(action, detail)] = conn.execute(
            "SELECT action, detail FROM audit_log ORDER BY seq DESC LIMIT 1"
        ).fetchall()
    assert (action, orjson.loads(detail)) == (
        "renew-history",
        {"previous_history": previous, "history": position.history, "highest_seq": 17},
    )


def test_renew_history_refuses_a_database_without_salvos_layout(fresh_postgres_url: str) -> None:
    """Nothing to renew in an empty database: exit status 1, the URL shown without its
    password, nothing created."""
    result = command("api", "--db", fresh_postgres_url, "renew-history")
    shown = re.sub(r":[^:@/]*@", "@", fresh_postgres_url)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"api: no new history, {shown} is unchanged: The events database has no Salvo "
        f"schema, not this release's ({SCHEMA_VERSION}): run `python -m api migrate`.\n"
    )
    assert rows(fresh_postgres_url, "SELECT to_regclass('change_history')") == [(None,)]
