"""Files and faults (issue 18): a -wal deleted under a serving database loses no
acknowledged write, and the files Salvo makes are private to their owner and never
left behind half-made. SQLite only: its files, -wal and
staging copies (PostgreSQL keeps its own files)."""

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.server import ROOT, Server, process_tree, serving
from tests.test_faults import Client, assert_problem, ids_in, writable

# Client threads writing at once, as partners do: the server's threads each hold a
# write connection of their own.
WRITERS = 4


def kill_9(server: Server) -> None:
    """SIGKILL Granian and its workers, as a crash or the OOM killer would: nothing
    runs on the way out, no connection is closed."""
    for pid in process_tree(server.process.pid):
        os.kill(pid, signal.SIGKILL)
    server.process.wait(timeout=10)


def test_a_deleted_wal_loses_no_acknowledged_write(seeded_db: Path, tmp_path: Path) -> None:
    path, key = writable(seeded_db, tmp_path / "live")
    wal = Path(f"{path}-wal")
    acknowledged: list[str] = []
    after_deletion: dict[str, int] = {}
    deleted = threading.Event()
    with serving(path, tmp_path / "server.log") as server:
        client = Client(server, key)

        def write(writer: int) -> None:
            for n in range(40):
                event_id = f"ua-2024-06-01-wal-{writer}-{n}"
                # Only a write sent wholly after the deletion must be refused.
                sent_after = deleted.is_set()
                status, headers, body = client.create(event_id)
                if status == 201:
                    acknowledged.append(event_id)
                else:
                    assert_problem(status, headers, body, "/problems/database-unavailable")
                if sent_after:
                    after_deletion[event_id] = status

        threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
        for thread in threads:
            thread.start()
        while len(acknowledged) < 40:
            time.sleep(0.005)
        wal.unlink()
        deleted.set()
        for thread in threads:
            thread.join()
        assert after_deletion and set(after_deletion.values()) == {503}, after_deletion
        status, headers, body = client.call("GET", "/readyz")
        assert_problem(status, headers, body, "/problems/database-unavailable")
        assert "restart" in body["detail"] and "-wal" in body["detail"]
        kill_9(server)
    with serving(path, tmp_path / "restarted.log") as server:
        client = Client(server, key)
        assert client.call("GET", "/readyz")[0] == 200
        missing = [e for e in acknowledged if client.call("GET", f"/api/v1/events/{e}")[0] != 200]
        assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged writes lost"
        assert client.create("ua-2024-06-01-after-the-restart")[0] == 201
    assert {*acknowledged, "ua-2024-06-01-after-the-restart"} <= ids_in(path)


def cli(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m module args` as an operator runs it, under the usual umask 022."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT, capture_output=True, text=True, check=True, umask=0o022,
    )  # fmt: skip


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_salvo_creates_are_its_owners_only(seeded_db: Path, tmp_path: Path) -> None:
    seeded = tmp_path / "var" / "salvo.db"
    cli("seed", "--db", str(seeded))
    initialised = tmp_path / "init" / "salvo.db"
    cli("api", "--db", str(initialised), "init")
    backup = tmp_path / "backups" / "salvo.db"
    backup.parent.mkdir(mode=0o755)
    cli("api", "--db", str(seeded), "backup", str(backup))
    restored = tmp_path / "restored" / "salvo.db"
    cli("api", "--db", str(restored), "restore", str(backup))
    for path in (seeded, initialised, backup, restored):
        assert mode(path) == 0o600, path
    assert mode(seeded.parent) == mode(initialised.parent) == mode(restored.parent) == 0o700
    # SQLite makes the -wal and -shm when a connection opens them, with the file's mode.
    conn = sqlite3.connect(seeded)
    try:
        conn.execute("SELECT count(*) FROM events").fetchone()
        assert mode(Path(f"{seeded}-wal")) == mode(Path(f"{seeded}-shm")) == 0o600
    finally:
        conn.close()


def staging_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".salvo-*"))


def restore_until_staging(source: Path, live: Path) -> subprocess.Popen[str]:
    """`python -m api restore source` into live, once its staging copy is under way."""
    restoring = subprocess.Popen(
        [sys.executable, "-m", "api", "--db", str(live), "restore", str(source)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not any(f.stat().st_size > 2**20 for f in staging_files(live.parent) if f.exists()):
        assert restoring.poll() is None and time.monotonic() < deadline, restoring.communicate()
        time.sleep(0.005)
    return restoring


def test_a_restore_stopped_by_sigterm_leaves_nothing_behind(
    seeded_db: Path, synthetic_db: Path, tmp_path: Path
) -> None:
    live, _ = writable(seeded_db, tmp_path / "live")
    before = ids_in(live)
    restoring = restore_until_staging(synthetic_db, live)
    restoring.send_signal(signal.SIGTERM)
    _, stderr = restoring.communicate(timeout=60)
    assert restoring.returncode == 130, stderr
    assert "interrupted" in stderr and "no staging file is left" in stderr
    assert staging_files(live.parent) == []
    assert ids_in(live) == before


def test_a_killed_restores_staging_file_goes_with_the_next_one(
    seeded_db: Path, synthetic_db: Path, tmp_path: Path
) -> None:
    live, _ = writable(seeded_db, tmp_path / "live")
    restoring = restore_until_staging(synthetic_db, live)
    restoring.kill()
    restoring.communicate(timeout=60)
    left = staging_files(live.parent)
    assert left and left[0].stat().st_size > 2**20
    # A staging file of a process still running (this one) is another restore's.
    running = live.parent / f".salvo-{os.getpid()}-concurrent.db"
    running.write_bytes(b"")
    cli("api", "--db", str(live), "restore", str(seeded_db))
    assert staging_files(live.parent) == [running]
