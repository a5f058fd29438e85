"""The API served as `make run` serves it (`python -m api serve`, Granian), on a free
port of 127.0.0.1, for the tests that need real HTTP; stopped by PID."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def access_log(self, containing: str, count: int, timeout: float = 10) -> list[str]:
        """The log's lines containing `containing`, once there are `count` of them (or
        the timeout passed). Read while serving: a worker stopped by SIGTERM may not
        flush its last line."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.log.read_text().splitlines() if containing in line]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.1)

    def workers(self) -> list[int]:
        """The PIDs of Granian's worker processes: the children of its main process."""
        return children(self.process.pid)

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@contextmanager
def slow_clients(url: str, count: int = 50) -> Iterator[None]:
    """For the length of the block, `count` connections to the server at `url` that
    send a request line and then one header byte every half second, never finishing
    their request (what slow or hostile clients do to a server's workers)."""
    host, port = url.removeprefix("http://").split(":")
    stop = threading.Event()
    slow = [socket.create_connection((host, int(port))) for _ in range(count)]

    def dribble() -> None:
        for sock in slow:
            sock.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: slow\r\n")
        while not stop.wait(0.5):
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X")

    dribbler = threading.Thread(target=dribble)
    dribbler.start()
    try:
        yield
    finally:
        stop.set()
        dribbler.join()
        for sock in slow:
            sock.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(
    db: str | Path, log: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """`python -m api serve --port P *args` on `db` (a SQLite path or a postgresql://
    URL), ready when /healthz answers."""
    port = free_port()
    environ = {**os.environ, "SALVO_DATABASE": str(db), **(env or {})}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", str(port), *args],
            cwd=ROOT,
            env=environ,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/healthz", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield server
    finally:
        server.stop()


def children(pid: int) -> list[int]:
    """The processes pid started (Linux /proc): those of each of its threads, skipping
    a thread that ends while they are read."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def process_tree(pid: int) -> list[int]:
    """pid and every process descending from it, parents first."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending += children(current)
    return found
