"""A real PostgreSQL 15 + PostGIS server for the tests: a throwaway cluster made by
initdb in a temporary directory, listening on 127.0.0.1 (a free port, password
authentication) and on a Unix socket in that directory, started once per session and
stopped by its PID at the end (pg_ctl stop -m fast), its directory removed.

PostgreSQL refuses to run as root: run as root (CI, this machine), initdb and
pg_ctl run as the `postgres` OS user (made by Debian's postgresql-common) through
runuser, and the directory is handed to it. Without the binaries the tests that need
the server are skipped with a reason naming PostgreSQL (`.ci/run` installs them).

The cluster's default collation is ICU's en-US, as many managed servers have it, so
that a statement which leans on the database's collation, rather than the layout's
`COLLATE "C"`, sorts ids differently here and fails its test.

Use: `postgres_url` (session) is a database with PostGIS; `fresh_postgres_url` is a
new empty database (with PostGIS) for one test, dropped after it. A test module that
uses them imports them and lists them in `__all__`.
"""

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import psycopg
import pytest

BIN = Path("/usr/lib/postgresql/15/bin")
ROLE = "salvo"


@dataclass
class PostgresServer:
    """A running throwaway cluster: where it lives, how to reach it, its PID."""

    directory: Path
    port: int
    password: str
    pid: int
    seconds_to_start: float

    def url(self, database: str) -> str:
        return f"postgresql://{ROLE}:{self.password}@127.0.0.1:{self.port}/{database}"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction in the `postgres` database."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)


def _as_server_user(argv: list[str]) -> list[str]:
    """The command, run as the `postgres` OS user when we are root."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(argv: list[str], log: Path) -> None:
    with log.open("ab") as out:
        result = subprocess.run(
            _as_server_user(argv), stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])} failed ({result.returncode}):\n{log.read_text()}")


def start_server() -> PostgresServer:
    """initdb into a new temporary directory and start the cluster on a free port."""
    started = time.monotonic()
    # Under /tmp itself when root, not pytest's basetemp (or a TMPDIR) whose parent is
    # root's and mode 0700, which the postgres user could not pass.
    directory = Path(
        tempfile.mkdtemp(prefix="salvo-postgres-", dir="/tmp" if os.geteuid() == 0 else None)
    )
    try:
        password = secrets.token_hex(16)
        (directory / "password").write_text(password + "\n")
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
            shutil.chown(directory / "password", "postgres", "postgres")
        log = directory / "server.log"
        log.touch()
        if os.geteuid() == 0:
            shutil.chown(log, "postgres", "postgres")
        _run(
            [str(BIN / "initdb"), "-D", str(directory / "data"), "-U", ROLE,
             f"--pwfile={directory / 'password'}", "--auth-host=scram-sha-256",
             "--auth-local=peer", "--encoding=UTF8", "--locale=C.UTF-8",
             "--locale-provider=icu", "--icu-locale=en-US", "--no-sync"],
            log,
        )  # fmt: skip
        port = _free_port()
        # Throwaway: durability is not tested here, so no fsync.
        settings = (
            f"-c listen_addresses=127.0.0.1 -c port={port} "
            f"-c unix_socket_directories={directory} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        _run(
            [str(BIN / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(directory / "data"),
             "-l", str(log), "-o", settings],
            log,
        )  # fmt: skip
        pid = int((directory / "data" / "postmaster.pid").read_text().split()[0])
        return PostgresServer(directory, port, password, pid, time.monotonic() - started)
    except BaseException:
        stop_server_in(directory)
        raise


def stop_server_in(directory: Path) -> None:
    """Stop the cluster in `directory` by the PID its postmaster.pid holds (pg_ctl
    stop -m fast: running statements are cancelled, connections closed), wait for
    that process to end (polled here: pg_ctl's own wait polls once a second), and
    remove the directory."""
    pid_file = directory / "data" / "postmaster.pid"
    try:
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            subprocess.run(
                _as_server_user(
                    [str(BIN / "pg_ctl"), "stop", "-m", "fast", "-W", "-D", str(directory / "data")]
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            _wait_gone(pid)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _wait_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _running(pid):
            return
        time.sleep(0.02)
    raise RuntimeError(f"PostgreSQL (PID {pid}) did not stop within {timeout} s")


def _running(pid: int) -> bool:
    """Whether the process runs: not gone, and not a zombie (the postmaster's parent,
    pg_ctl, has exited, and whoever inherits it may take a while to reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _skip_without_postgres() -> None:
    if not (BIN / "initdb").exists():
        pytest.skip(
            f"PostgreSQL 15 is not installed ({BIN / 'initdb'} is missing: apt-get install "
            "postgresql-15 postgresql-15-postgis-3); CI installs it"
        )
    if not Path("/usr/share/postgresql/15/extension/postgis.control").exists():
        pytest.skip(
            "PostGIS for PostgreSQL 15 is not installed (apt-get install "
            "postgresql-15-postgis-3); CI installs it"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("PostgreSQL refuses to run as root, and runuser is missing")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server, with a template database holding PostGIS."""
    _skip_without_postgres()
    server = start_server()
    try:
        server.admin("CREATE DATABASE salvo_template")
        with psycopg.connect(server.url("salvo_template"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        server.admin("CREATE DATABASE salvo TEMPLATE salvo_template")
        yield server
    finally:
        stop_server_in(server.directory)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of the session's database (with PostGIS), shared by the session's tests."""
    return postgres_server.url("salvo")


_numbers = count(1)


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new, empty database with PostGIS for one test, dropped after it."""
    name = f"salvo_test_{next(_numbers)}"
    postgres_server.admin(f"CREATE DATABASE {name} TEMPLATE salvo_template")
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
