"""Files and faults (issue 18): a -wal deleted under a serving database loses no
acknowledged write, and the files Salvo makes are private to their owner and never
left behind half-made."""

import os
import signal
import threading
import time
from pathlib import Path

from tests.server import Server, serving
from tests.test_faults import Client, assert_problem, ids_in, writable

# Client threads writing at once, as partners do: the server's threads each hold a
# write connection of their own.
WRITERS = 4


def process_tree(pid: int) -> list[int]:
    """pid and every process descending from it (Linux /proc), parents first."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            pending += [int(child) for child in (task / "children").read_text().split()]
    return found


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
