"""A throwaway redis-server on 127.0.0.1 (a free port, no persistence), stopped by its
PID: the shared rate-limit counters of the tests (tests/test_limits.py) and of
`make cluster` (ops/cluster.py)."""

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ops.postgres import free_port


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM by PID (redis-server exits at once without persistence), then wait."""
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=10)


def missing() -> str | None:
    """Why a redis-server cannot be started here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    return None


def start_redis(directory: Path) -> RedisServer:
    """Start redis-server on a free loopback port, working in `directory`, and wait
    until it accepts connections (10 s at most)."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError(missing())
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        # Its own session: Ctrl-C in a terminal reaches the caller, which stops the
        # server after the clients that use it (make cluster's instances).
        start_new_session=True,
    )  # fmt: skip
    redis = RedisServer(process, port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return redis
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
    except BaseException:
        redis.stop()
        raise
