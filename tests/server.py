"""The API served as `make run` serves it (`python -m api serve`, Granian), on a free
port of 127.0.0.1, for the tests that need real HTTP; stopped by PID."""

import os
import signal
import socket
import subprocess
import sys
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

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(db: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`python -m api serve --port P *args` on `db`, ready when /healthz answers."""
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
