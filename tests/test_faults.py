"""Faults of the database, reproduced against the server as `make run` starts it:
each answers a documented problem (never a 500 or an HTML page), no acknowledged
write is lost, and the instance recovers without a restart where it can. SQLite only:
faults of its file (replaced, deleted, damaged, a full disk); PostgreSQL's faults are
its SQLSTATEs, mapped in tests/test_postgresql_store.py, and a lock held elsewhere runs
on both engines in tests/test_edge.py."""

import copy
import http.client
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api import create_app
from api.store.sqlite.keys import create_key
from api.store.sqlite.layout import open_for_writing
from tests.server import ROOT, Server, serving

EXAMPLE = json.loads((ROOT / "examples" / "new-events.json").read_text())["events"][0]
PROBLEM = "application/problem+json"
# Every status a database fault may be answered with.
FAULT_STATUSES = {503, 507}


class Client:
    """HTTP to a running server, with a write key."""

    def __init__(self, server: Server, key: str) -> None:
        self.server, self.key = server, key

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        host, port = self.server.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        sent = {**({"Authorization": f"Bearer {self.key}"} if self.key else {}), **(headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=payload, headers=sent)
            response = conn.getresponse()
            raw = response.read()
            found = {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()
        if found.get("content-type", "").startswith(("application/json", PROBLEM)):
            return response.status, found, json.loads(raw) if raw else None
        return response.status, found, raw

    def create(self, event_id: str) -> tuple[int, dict[str, str], Any]:
        event = {**copy.deepcopy(EXAMPLE), "id": event_id}
        return self.call("POST", "/api/v1/events", {"events": [event]})


def writable(source: Path, folder: Path) -> tuple[Path, str]:
    """A copy of a database with a write key; the key and the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "salvo.db"
    shutil.copy(source, path)
    db = open_for_writing(str(path))
    key = create_key(db, "Fault tests", "write")
    db.close()
    return path, key


def ids_in(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM events")}
    finally:
        conn.close()


def assert_problem(status: int, headers: dict[str, str], body: Any, problem_type: str) -> None:
    assert status in FAULT_STATUSES, (status, body)
    assert headers["content-type"] == PROBLEM
    assert body["type"] == problem_type, body


@pytest.fixture
def served(seeded_db: Path, tmp_path: Path) -> Iterator[tuple[Client, Path]]:
    path, key = writable(seeded_db, tmp_path / "live")
    with serving(path, tmp_path / "server.log") as server:
        yield Client(server, key), path


def test_a_replaced_file_is_reopened_and_takes_the_writes(
    served: tuple[Client, Path], tmp_path: Path
) -> None:
    client, path = served
    replacement = tmp_path / "replacement.db"
    shutil.copy(path, replacement)  # the same key, none of the writes below
    assert client.create("ua-2024-06-01-before-the-swap")[0] == 201
    # What an operator did by hand: the new file moved over the old, the old WAL gone.
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(replacement, path)

    status, _, _ = client.call("GET", "/api/v1/events/ua-2024-06-01-before-the-swap")
    assert status == 404  # reads come from the file now at the path
    acknowledged = []
    for n in range(4):
        status, _, body = client.create(f"ua-2024-06-01-after-the-swap-{n}")
        assert status == 201, body
        acknowledged.append(f"ua-2024-06-01-after-the-swap-{n}")
    for event_id in acknowledged:
        assert client.call("GET", f"/api/v1/events/{event_id}")[0] == 200
    assert set(acknowledged) <= ids_in(path)
    assert client.call("GET", "/readyz")[0] == 200


def test_a_deleted_file_is_never_recreated(served: tuple[Client, Path]) -> None:
    client, path = served
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        name.unlink(missing_ok=True)
    status, headers, body = client.create("ua-2024-06-01-into-nothing")
    assert_problem(status, headers, body, "/problems/database-unavailable")
    assert "python -m seed" in body["detail"] and "python -m api init" in body["detail"]
    assert not path.exists()
    status, headers, body = client.call("GET", "/api/v1/events")
    assert_problem(status, headers, body, "/problems/database-unavailable")
    assert_problem(*client.call("GET", "/readyz"), "/problems/database-unavailable")
    # Liveness reads nothing: the process is alive, it just cannot serve.
    assert Client(client.server, "").call("GET", "/healthz")[0] == 200


def test_a_lock_held_elsewhere_bounds_a_write_and_spares_reads(
    served: tuple[Client, Path],
) -> None:
    client, path = served
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        status, headers, body = client.create("ua-2024-06-01-while-locked")
        waited = time.monotonic() - started
        assert_problem(status, headers, body, "/problems/database-busy")
        assert headers["retry-after"] == "1"
        assert waited < 3, waited
        started = time.monotonic()
        assert client.call("GET", "/api/v1/events?limit=5")[0] == 200
        assert time.monotonic() - started < 0.5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "ua-2024-06-01-while-locked" not in ids_in(path)
    assert client.create("ua-2024-06-01-after-the-lock")[0] == 201


def test_damaged_pages_are_503_problems_until_the_file_reads_cleanly(
    synthetic_db: Path, tmp_path: Path
) -> None:
    path, key = writable(synthetic_db, tmp_path / "live")
    with serving(path, tmp_path / "server.log") as server:
        client = Client(server, key)
        size = path.stat().st_size
        with path.open("r+b") as file:
            file.seek(size // 4)
            original = file.read(size // 2)
            file.seek(size // 4)
            file.write(os.urandom(len(original)))
        statuses = {}
        for url in (
            "/api/v1/stats?interval=month",
            "/api/v1/events?sort=-date&limit=1000",
            "/api/v1/events?q=infrastructure",
            "/api/v1/events?actor=russia",
            "/api/v1/locations",
        ):
            status, headers, body = client.call("GET", url)
            statuses[url] = status
            if status != 200:
                assert_problem(status, headers, body, "/problems/database-damaged")
        assert 503 in statuses.values(), statuses
        assert_problem(*client.call("GET", "/readyz"), "/problems/database-damaged")
        status, headers, body = client.create("ua-2024-06-01-into-damage")
        assert_problem(status, headers, body, "/problems/database-damaged")
        # The operator restores the bytes: the instance heals without a restart.
        with path.open("r+b") as file:
            file.seek(size // 4)
            file.write(original)
        assert client.call("GET", "/readyz")[0] == 200
        assert client.call("GET", "/api/v1/stats?interval=month")[0] == 200
        assert client.create("ua-2024-06-01-after-the-repair")[0] == 201


def test_an_export_cut_by_a_fault_ends_without_its_last_chunk(
    synthetic_db: Path, tmp_path: Path
) -> None:
    path, _ = writable(synthetic_db, tmp_path / "live")
    with serving(path, tmp_path / "server.log") as server:
        host, port = server.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", "/api/v1/events?format=ndjson&sort=date")
        response = conn.getresponse()
        assert response.status == 200
        response.read(1000)
        size = path.stat().st_size
        with path.open("r+b") as file:
            file.seek(size // 4)
            file.write(os.urandom(size // 2))
        with pytest.raises(http.client.IncompleteRead):
            response.read()
        conn.close()


def test_a_full_disk_is_a_507_and_writes_nothing(seeded_db: Path, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    database_size = seeded_db.stat().st_size
    # Room for the database, its WAL and a little more, not for a big batch.
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={database_size + 3 * 1024 * 1024}", "tmpfs", disk],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        path, key = writable(seeded_db, disk)
        before = ids_in(path)
        with serving(path, tmp_path / "server.log") as server:
            client = Client(server, key)
            assert client.call("GET", "/api/v1/events?limit=5")[0] == 200
            filler = disk / "filler"
            with filler.open("wb") as file, pytest.raises(OSError):
                while True:
                    file.write(b"\0" * 65536)
                    file.flush()
            batch = [
                {**copy.deepcopy(EXAMPLE), "id": f"ua-2024-06-01-full-{n}", "notes": "x" * 2000}
                for n in range(500)
            ]
            status, headers, body = client.call("POST", "/api/v1/events", {"events": batch})
            assert status == 507, body
            assert headers["content-type"] == PROBLEM
            assert body["type"] == "/problems/storage-full"
            assert client.call("GET", "/api/v1/events?limit=5")[0] == 200
            filler.unlink()
            assert client.create("ua-2024-06-01-after-room-was-made")[0] == 201
        after = ids_in(path)
        assert after == before | {"ua-2024-06-01-after-room-was-made"}
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()
    finally:
        subprocess.run(["umount", "-l", disk], check=False)


def test_a_killed_bulk_load_is_explained_by_the_read_only_server(
    seeded_db: Path, tmp_path: Path
) -> None:
    path = tmp_path / "bulk.db"
    shutil.copy(seeded_db, path)
    seeded_size = path.stat().st_size
    load = subprocess.Popen(
        [sys.executable, "-m", "seed", "--db", str(path), "synthetic", "--events", "300000",
         "--workers", "1", "--until", "2026-11-26"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    journal = Path(f"{path}-journal")
    deadline = time.monotonic() + 120
    # Killed while it writes through its rollback journal: the file has grown, and the
    # journal holds the pages it had before.
    while not (journal.exists() and path.stat().st_size > seeded_size + 5_000_000):
        assert time.monotonic() < deadline, "the load never wrote its journal"
        assert load.poll() is None, "the load ended before it could be killed"
        time.sleep(0.05)
    load.send_signal(signal.SIGKILL)
    load.wait()
    with serving(path, tmp_path / "server.log") as server:
        anonymous = Client(server, "")
        assert anonymous.call("GET", "/api/v1/event-types")[0] == 200  # needs no database
        status, _, body = anonymous.call("GET", "/api/v1/events")
    assert status == 503, body
    assert "python -m seed" in body["detail"], body


def test_no_fault_answers_html(served: tuple[Client, Path]) -> None:
    # Everything above answered problem+json; a route that does not exist too.
    client, _ = served
    status, headers, _ = client.call("GET", "/nowhere")
    assert status == 404 and headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    ("url", "status", "problem_type", "name"),
    [
        # An actor is read from the events, not the rollups: a raw aggregate.
        ("/api/v1/stats?actor=russia&interval=day", 503, "/problems/query-too-costly", None),
        ("/api/v1/events?q=in*%20OR%20a*%20OR%20s*", 400, "/problems/invalid-parameters", "q"),
    ],
)
def test_a_read_past_its_budget_is_stopped(
    synthetic_db: Path, url: str, status: int, problem_type: str, name: str | None
) -> None:
    app = create_app({"DATABASE": str(synthetic_db), "QUERY_BUDGET_S": 0.001})
    started = time.monotonic()
    response = app.test_client().get(url)
    assert time.monotonic() - started < 1
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["type"] == problem_type
    if name is not None:
        assert [p["name"] for p in body["invalid_params"]] == [name]
    # The same connection serves the next request in full (one that fits the tiny
    # budget: a page of events also sums its total from the rollups).
    assert app.test_client().get("/api/v1/locations?limit=1").status_code == 200
