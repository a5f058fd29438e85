"""Operations (docs/operations.md): `python -m api backup` and `restore` against a real
server that keeps serving and writing, partners' change tokens across a restore, and
the recovery of a bulk load killed while it wrote through its rollback journal. SQLite only:
these are SQLite's files and commands (PostgreSQL's are pg_dump and pg_restore,
tests/test_postgresql_operations.py)."""

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from api import create_app
from api.v1.changes import NEWER_HISTORY, OTHER_HISTORY, UNCHECKED
from tests.engines import rows
from tests.server import ROOT, Server, serving

NO_LIMITS = {"SALVO_RATE_LIMITS": "off"}


def command(module: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`python -m <module> *args` as an operator runs it."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def seeded(path: Path) -> Path:
    """A database loaded by the real seed command (the 17 curated events)."""
    command("seed", "--db", str(path))
    return path


def write_key(db: Path) -> str:
    created = command("api", "--db", str(db), "keys", "create", "--name", "Ops", "--scope", "write")
    return created.stdout.strip()


def call(
    server: Server, path: str, body: dict[str, Any] | None = None, key: str | None = None
) -> tuple[int, Any]:
    """The status and JSON body of a GET, or of a POST of `body`."""
    request = urllib.request.Request(
        server.url + path,
        data=None if body is None else orjson.dumps(body),
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {key}"} if key else {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def new_event(server: Server, event_id: str) -> dict[str, Any]:
    """An event to POST: the first listed one's content under a new id."""
    _, page = call(server, "/api/v1/events?limit=1")
    event = page["data"][0]
    for output_only in ("acled", "updated_at"):
        event.pop(output_only)
    return {**event, "id": event_id}


def post(server: Server, key: str, event_id: str) -> None:
    status, body = call(server, "/api/v1/events", {"events": [new_event(server, event_id)]}, key)
    assert status == 201, body


def event_ids(db: Path) -> list[str]:
    return [event_id for (event_id,) in rows(db, "SELECT id FROM events ORDER BY seq")]


def test_a_backup_taken_while_the_server_writes_is_a_consistent_snapshot(
    synthetic_db: Path, tmp_path: Path
) -> None:
    """20,000 events take long enough to copy that POSTs land while the backup runs;
    the copy holds the events as of one moment: every event committed before the
    backup started and, of the POSTs made while it ran, a prefix."""
    db = tmp_path / "live.db"
    shutil.copy(synthetic_db, db)
    key = write_key(db)
    original = event_ids(db)
    posted: list[str] = []
    stop = threading.Event()
    with serving(db, tmp_path / "log", env=NO_LIMITS) as server:

        def keep_posting() -> None:
            # One thread, so the events commit in the order of `posted`.
            while not stop.is_set():
                event_id = f"ua-2024-06-01-during-backup-{len(posted)}"
                post(server, key, event_id)
                posted.append(event_id)

        writer = threading.Thread(target=keep_posting)
        writer.start()
        try:
            while len(posted) < 5:
                time.sleep(0.01)
            committed_before = len(posted)
            result = command("api", "--db", str(db), "backup", str(tmp_path / "copy.db"))
            committed_after = len(posted)
            # The server committed POSTs while the backup command ran.
            assert committed_after > committed_before
            while len(posted) < committed_after + 5:
                time.sleep(0.01)
        finally:
            stop.set()
            writer.join()
    copy = tmp_path / "copy.db"
    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]
    assert rows(copy, "PRAGMA journal_mode") == [("wal",)]
    copied = event_ids(copy)
    assert copied[: len(original)] == original
    kept = copied[len(original) :]
    assert committed_before <= len(kept) <= committed_after + 1
    assert kept == posted[: len(kept)]
    assert result.stdout == (
        f"api: backed up {db} to {copy}: {len(copied)} events, highest change seq {len(copied)}\n"
    )
    # The server went on writing past the copy.
    assert len(event_ids(db)) == len(original) + len(posted) > len(copied)


def test_a_backup_never_overwrites_unless_forced(tmp_path: Path) -> None:
    db = seeded(tmp_path / "salvo.db")
    target = tmp_path / "copy.db"
    target.write_bytes(b"precious")
    refused = command("api", "--db", str(db), "backup", str(target), check=False)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        f"api: {target} exists; choose another path, or --force to replace it\n"
    )
    assert target.read_bytes() == b"precious"
    itself = command("api", "--db", str(db), "backup", "--force", str(db), check=False)
    assert (itself.returncode, itself.stderr) == (
        1,
        f"api: {db} is the database itself; back up to another path\n",
    )
    forced = command("api", "--db", str(db), "backup", "--force", str(target))
    assert forced.stdout == (f"api: backed up {db} to {target}: 17 events, highest change seq 17\n")
    assert len(event_ids(target)) == 17


def changes_token(server: Server, since: str | None = None) -> str:
    status, body = call(server, "/api/v1/changes?limit=1000" + (f"&since={since}" if since else ""))
    assert status == 200, body
    return str(body["meta"]["since"])


def refused_since(server: Server, token: str, reason: str) -> None:
    status, body = call(server, f"/api/v1/changes?since={token}")
    assert (status, body["invalid_params"]) == (
        400,
        [{"name": "since", "in": "query", "reason": reason}],
    )


def test_restore_swaps_the_database_under_a_running_server(tmp_path: Path) -> None:
    db = seeded(tmp_path / "salvo.db")
    key = write_key(db)
    backup = tmp_path / "backup.db"
    command("api", "--db", str(db), "backup", str(backup))
    with serving(db, tmp_path / "log", env=NO_LIMITS) as server:
        post(server, key, "ua-2024-06-01-after-the-backup")
        post(server, key, "ua-2024-06-02-after-the-backup")
        before_restore = changes_token(server)
        result = command("api", "--db", str(db), "restore", str(backup))
        assert result.stdout == (
            f"api: restored {backup} into {db}: 17 events, highest change seq 17; a new "
            "change history begins, so partners resync (their tokens from before are refused)\n"
        )
        # The same server, its connections kept, answers from the restored content.
        status, body = call(server, "/api/v1/events/ua-2024-06-01-after-the-backup")
        assert status == 404, body
        status, body = call(server, "/api/v1/changes?limit=1000")
        assert [change["seq"] for change in body["data"]] == list(range(1, 18))
        # The token at seq 19 is past the restored file's end.
        refused_since(server, before_restore, NEWER_HISTORY)
        restored = changes_token(server)
        # Writes land in the restored file, and reuse seq 18 and 19.
        post(server, key, "ua-2024-06-03-after-the-restore")
        post(server, key, "ua-2024-06-04-after-the-restore")
        assert event_ids(db)[-2:] == [
            "ua-2024-06-03-after-the-restore",
            "ua-2024-06-04-after-the-restore",
        ]
        # Seq 19 exists again, but the old token is from the history before the
        # restore: its mirror holds events this database never had.
        refused_since(server, before_restore, OTHER_HISTORY)
        status, body = call(server, f"/api/v1/changes?since={restored}")
        assert [change["event_id"] for change in body["data"]] == [
            "ua-2024-06-03-after-the-restore",
            "ua-2024-06-04-after-the-restore",
        ]
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


def test_restore_refuses_what_is_not_a_salvo_database_of_this_layout(tmp_path: Path) -> None:
    db = seeded(tmp_path / "salvo.db")
    before = event_ids(db)
    text = tmp_path / "notes.txt"
    text.write_text("not a database, but long enough to have a header " * 10)
    other = tmp_path / "other.db"
    rows(other, "CREATE TABLE events (id TEXT)")
    older = tmp_path / "older.db"
    shutil.copy(db, older)
    rows(older, "DROP TABLE change_history")
    for file, reason in [
        (
            tmp_path / "missing.db",
            f"{tmp_path / 'missing.db'} cannot be opened: unable to open database file",
        ),
        (text, f"{text} is not a SQLite database (file is not a database)"),
        (
            other,
            f"{other} was made by another version of Salvo (events differ); if an earlier "
            "release made it, upgrade a copy of it with `python -m api --db COPY migrate`, and "
            "restore the copy",
        ),
        (
            older,
            f"{older} lacks change_history; add them to a copy of it with "
            "`python -m api --db COPY migrate`, and restore the copy",
        ),
    ]:
        result = command("api", "--db", str(db), "restore", str(file), check=False)
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr == f"api: not restored, {db} is unchanged: {reason}\n"
    assert event_ids(db) == before


def token(*key: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(["changes", *key])).rstrip(b"=").decode()


def history(db: str | Path) -> tuple[str, int]:
    [(history_id, old_tokens_until)] = rows(db, "SELECT id, old_tokens_until FROM change_history")
    return history_id, old_tokens_until


def test_a_token_past_the_highest_seq_is_refused(database: str, client: FlaskClient) -> None:
    history_id, _ = history(database)
    response = client.get(f"/api/v1/changes?since={token(history_id, 18)}")
    assert response.status_code == 400
    assert response.get_json() == {
        "type": "/problems/invalid-parameters",
        "title": "Invalid request parameters",
        "status": 400,
        "detail": f"since: {NEWER_HISTORY}",
        "instance": "/api/v1/changes",
        "invalid_params": [{"name": "since", "in": "query", "reason": NEWER_HISTORY}],
    }
    assert NEWER_HISTORY == (
        "This token comes from a newer history than this database: it was issued before "
        "the database was restored from a backup, and changes after it would be missed; "
        "resync from the start (omit since) or continue from a token this database issued."
    )
    assert client.get(f"/api/v1/changes?since={token(history_id, 17)}").get_json()["data"] == []


def test_tokens_from_before_histories_are_trusted_up_to_the_upgrade(
    seeded_db: Path, tmp_path: Path
) -> None:
    """A database made before change histories gets one from `python -m api init`;
    tokens it issued before (the seq alone) stay good up to its seq at the upgrade."""
    db = tmp_path / "older.db"
    shutil.copy(seeded_db, db)
    rows(db, "DROP TABLE change_history")
    client = create_app({"DATABASE": str(db)}).test_client()
    unavailable = client.get("/api/v1/changes")
    assert (unavailable.status_code, unavailable.get_json()["detail"]) == (
        503,
        "The events database lacks change_history; run `python -m api init` to add them.",
    )
    result = command("api", "--db", str(db), "init")
    assert result.stdout == f"api: {db}: created 1 tables, indexes and triggers: change_history\n"
    history_id, old_tokens_until = history(db)
    assert old_tokens_until == 17
    assert client.get(f"/api/v1/changes?since={token(16)}").get_json()["data"][0]["seq"] == 17
    refused = client.get(f"/api/v1/changes?since={token(18)}").get_json()["invalid_params"]
    assert refused[0]["reason"] == NEWER_HISTORY
    # A restore starts a new history: no token without one is trusted after it.
    command("api", "--db", str(db), "restore", str(seeded_db))
    assert history(db)[1] == 0 and history(db)[0] != history_id
    refused = client.get(f"/api/v1/changes?since={token(16)}").get_json()["invalid_params"]
    assert refused[0]["reason"] == UNCHECKED
    fresh = client.get("/api/v1/changes").get_json()["meta"]["since"]
    assert fresh == token(history(db)[0], 17)


def journal_mode(db: Path) -> int:
    """Byte 18 of the header: 2 in WAL mode, 1 with a rollback journal."""
    return db.read_bytes()[18]


def interrupted_load(db: Path, how: signal.Signals, workers: int = 1) -> tuple[int, str]:
    """A synthetic load of 300,000 events into db, sent `how` once it has written
    uncommitted pages into the file (1 MB past its size) with its hot journal beside;
    its exit status and stderr."""
    size = db.stat().st_size
    load = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "seed",
            "--db",
            str(db),
            "synthetic",
            "--events",
            "300000",
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        # Its own process group, so that SIGKILL takes its worker process too.
        start_new_session=True,
    )
    journal = Path(f"{db}-journal")
    deadline = time.monotonic() + 60
    while not (journal.exists() and db.stat().st_size > size + 2**20):
        assert load.poll() is None and time.monotonic() < deadline, load.communicate()
        time.sleep(0.01)
    assert journal_mode(db) == 1
    if how == signal.SIGKILL:
        os.killpg(load.pid, signal.SIGKILL)
    else:
        load.send_signal(how)
    _, stderr = load.communicate(timeout=60)
    return load.returncode, stderr


@pytest.mark.parametrize(
    "recovering", [["seed"], ["api", "init"]], ids=["python -m seed", "python -m api init"]
)
def test_the_next_seed_or_init_recovers_a_killed_bulk_load(
    tmp_path: Path, recovering: list[str]
) -> None:
    db = seeded(tmp_path / "salvo.db")
    status, _ = interrupted_load(db, signal.SIGKILL)
    assert status == -signal.SIGKILL
    assert Path(f"{db}-journal").stat().st_size > 0 and journal_mode(db) == 1
    module, *rest = recovering
    result = command(module, "--db", str(db), *rest)
    prefix = "seed" if module == "seed" else "api"
    assert result.stdout.splitlines()[0] == (
        f"{prefix}: recovered {db}: an interrupted write was rolled back; WAL mode restored"
    )
    assert not Path(f"{db}-journal").exists()
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert len(event_ids(db)) == 17


# With one worker the load runs in the seed's process; with two, in a process pool
# whose workers must die of the SIGTERM its shutdown sends them.
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_rolls_a_bulk_load_back_and_restores_the_wal(tmp_path: Path, workers: int) -> None:
    db = seeded(tmp_path / "salvo.db")
    assert interrupted_load(db, signal.SIGTERM, workers) == (
        130,
        f"seed: interrupted, nothing written; {db} is as it was\n",
    )
    assert not Path(f"{db}-journal").exists()
    assert journal_mode(db) == 2
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert len(event_ids(db)) == 17
    # Nothing is left to recover.
    assert "recovered" not in command("seed", "--db", str(db)).stdout


def test_a_database_setting_names_a_file_a_sqlite_url_or_postgresql(tmp_path: Path) -> None:
    """`sqlite:///path` is the file at path; a scheme Salvo has no store for is refused
    by every command and the app, and no file is made after it; a PostgreSQL URL is
    refused by what writes SQLite files only (init, backup, restore); the seed's loads
    write it (tests/test_postgresql_seed.py, tests/test_postgresql_imports.py), and say
    so when the server cannot be reached."""
    created = command("api", "--db", f"sqlite:///{tmp_path / 'salvo.db'}", "init")
    assert (tmp_path / "salvo.db").exists(), created.stdout
    url = "mysql://salvo@127.0.0.1/salvo"
    refusal = "Salvo cannot open mysql:// databases; give a file path, sqlite:///path or a "
    for argv in (
        ["seed", "--db", url],
        ["api", "--db", url, "init"],
        ["api", "--db", url, "keys", "list"],
    ):
        result = command(*argv, check=False)
        assert result.returncode == 2, result.stderr
        assert f": {refusal}postgresql:// URL.\n" in result.stderr, result.stderr
    assert not (ROOT / "mysql:").exists()
    answer = create_app({"DATABASE": url}).test_client().get("/api/v1/events")
    assert (answer.status_code, answer.get_json()["detail"]) == (
        503,
        f"{refusal}postgresql:// URL.",
    )
    postgresql = "postgresql://salvo@127.0.0.1:9/salvo"
    acled = str(ROOT / "tests" / "fixtures" / "imports" / "acled.csv")
    for load in ([], ["synthetic", "--events", "1"], ["import", "--format", "acled", acled]):
        seeded = command("seed", "--db", postgresql, *load, check=False)
        assert seeded.returncode == 1, seeded.stderr
        assert seeded.stderr.startswith(
            "seed: writing failed, the database is unchanged: The events database failed"
        ), seeded.stderr
    for action in ("init", "backup", "restore"):
        extra = {"backup": ["copy.db"], "restore": ["copy.db"]}.get(action, [])
        result = command("api", "--db", postgresql, action, *extra, check=False)
        assert result.returncode == 2, result.stderr
        assert "pg_dump and pg_restore" in result.stderr
