"""A throwaway pgbouncer (Debian's package) in front of a throwaway PostgreSQL server
(ops/postgres.py), for the tests of transaction pooling (tests/test_postgresql_pgbouncer.py):
listening on 127.0.0.1 (a free port, SCRAM authentication with the server's password),
in a temporary directory, stopped by its PID and the directory removed.

pgbouncer refuses to run as root: as root it runs as the `postgres` OS user, as the
server does.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ops.postgres import (
    ROLE,
    PostgresServer,
    as_server_user,
    database_url,
    free_port,
    running,
    wait_gone,
)

BINARY = Path("/usr/sbin/pgbouncer")


@dataclass
class Bouncer:
    directory: Path
    port: int
    password: str
    pid: int

    def url(self, database: str) -> str:
        return database_url(self.port, self.password, database)


def missing() -> str | None:
    """Why pgbouncer cannot be started here (what to install), or None."""
    if not BINARY.exists():
        return f"pgbouncer is not installed ({BINARY} is missing: apt-get install pgbouncer)"
    return None


def start_bouncer(server: PostgresServer, pool_mode: str = "transaction", size: int = 2) -> Bouncer:
    """pgbouncer in `pool_mode` with `size` server connections per database, in front
    of `server`; waited for until it accepts connections."""
    directory = Path(
        tempfile.mkdtemp(prefix="salvo-pgbouncer-", dir="/tmp" if os.geteuid() == 0 else None)
    )
    port = free_port()
    (directory / "userlist.txt").write_text(f'"{ROLE}" "{server.password}"\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        f"""[databases]
* = host=127.0.0.1 port={server.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {directory / "userlist.txt"}
pool_mode = {pool_mode}
default_pool_size = {size}
max_client_conn = 500
logfile = {directory / "pgbouncer.log"}
pidfile = {directory / "pgbouncer.pid"}
"""
    )
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
        for path in directory.iterdir():
            shutil.chown(path, "postgres", "postgres")
    try:
        # -d: it detaches once listening, and writes its PID.
        subprocess.run(
            as_server_user([str(BINARY), "-d", str(config)]), check=True, capture_output=True
        )
        pidfile = directory / "pgbouncer.pid"
        deadline = time.monotonic() + 10
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int(pidfile.read_text().split()[0])
        return Bouncer(directory, port, server.password, pid)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def stop_bouncer(bouncer: Bouncer) -> None:
    """SIGINT (a fast shutdown: clients are cut), waited for; the directory removed."""
    if running(bouncer.pid):
        os.kill(bouncer.pid, signal.SIGINT)
        wait_gone(bouncer.pid)
    shutil.rmtree(bouncer.directory, ignore_errors=True)
