"""A throwaway PostgreSQL 15 + PostGIS cluster: made by initdb in a temporary
directory, listening on 127.0.0.1 (a free port, password authentication) and on a Unix
socket in that directory, stopped by its PID (pg_ctl stop -m fast), its directory
removed. Used by the tests (tests/postgres.py) and by `make cluster` (ops/cluster.py).

PostgreSQL refuses to run as root: run as root (CI, this machine), initdb and
pg_ctl run as the `postgres` OS user (made by Debian's postgresql-common) through
runuser, and the directory is handed to it.

The cluster's default collation is ICU's en-US, as many managed servers have it, so
that a statement which leans on the database's collation, rather than the layout's
`COLLATE "C"`, sorts ids differently here and fails its test.
"""

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

BIN = Path("/usr/lib/postgresql/15/bin")
POSTGIS_CONTROL = Path("/usr/share/postgresql/15/extension/postgis.control")
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


def missing() -> str | None:
    """Why a throwaway cluster cannot be started here (what to install), or None."""
    if not (BIN / "initdb").exists():
        return (
            f"PostgreSQL 15 is not installed ({BIN / 'initdb'} is missing: apt-get install "
            "postgresql-15 postgresql-15-postgis-3)"
        )
    if not POSTGIS_CONTROL.exists():
        return (
            "PostGIS for PostgreSQL 15 is not installed (apt-get install postgresql-15-postgis-3)"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "PostgreSQL refuses to run as root, and runuser is missing"
    return None


def _as_server_user(argv: list[str]) -> list[str]:
    """The command, run as the `postgres` OS user when we are root."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def free_port() -> int:
    """A port nothing listens on now on 127.0.0.1 (the kernel's pick)."""
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
        port = free_port()
        # Throwaway: durability across a crash of the server itself is not what it is
        # for, so no fsync (a Salvo instance killed is not PostgreSQL killed: its
        # commits stay).
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
            wait_gone(pid)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def wait_gone(pid: int, timeout: float = 30) -> None:
    """Wait until the process `pid` has ended (or is a zombie), at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running(pid):
            return
        time.sleep(0.02)
    raise RuntimeError(f"process {pid} did not stop within {timeout} s")


def running(pid: int) -> bool:
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


def start_standby(primary: PostgresServer) -> PostgresServer:
    """A hot standby of the running throwaway cluster `primary`, kept by streaming
    replication: `pg_basebackup -R` (as the `postgres` OS user) copies the primary's
    data into a new temporary directory and writes `primary_conninfo` and
    standby.signal there; the standby is started on a free port like the primary and
    stopped the same way (stop_server_in), or stopped and started again on its port
    (stop_keeping, start_again). It serves reads once consistent, which `pg_ctl
    start -w` waits for (a hot standby accepts connections from then on).

    What it needs of the primary, all initdb's defaults here: `wal_level=replica`,
    free WAL senders (max_wal_senders 10), a pg_hba `host replication` line for
    127.0.0.1 (initdb writes one with --auth-host), and a role with REPLICATION
    (ROLE is the cluster's superuser). The password reaches pg_basebackup in its
    connection string, which -R copies into the standby's primary_conninfo."""
    started = time.monotonic()
    directory = Path(
        tempfile.mkdtemp(prefix="salvo-standby-", dir="/tmp" if os.geteuid() == 0 else None)
    )
    try:
        log = directory / "server.log"
        log.touch()
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
            shutil.chown(log, "postgres", "postgres")
        conninfo = (
            f"host=127.0.0.1 port={primary.port} user={ROLE} password={primary.password} "
            "application_name=salvo_standby"
        )
        _run(
            [str(BIN / "pg_basebackup"), "-d", conninfo, "-D", str(directory / "data"),
             "-R", "-X", "stream", "-c", "fast", "--no-sync"],
            log,
        )  # fmt: skip
        port = free_port()
        # The standby's own settings (the primary's came with the copy), written
        # beside -R's primary_conninfo rather than given on pg_ctl's command line, so
        # that start_again starts it as it was.
        with (directory / "data" / "postgresql.auto.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {port}\n"
                f"unix_socket_directories = '{directory}'\nhot_standby = on\n"
                "fsync = off\nfull_page_writes = off\n"
            )
        standby = PostgresServer(directory, port, primary.password, 0, 0.0)
        standby = start_again(standby)
        standby.seconds_to_start = time.monotonic() - started
        return standby
    except BaseException:
        stop_server_in(directory)
        raise


def stop_keeping(server: PostgresServer) -> None:
    """Stop a standby of start_standby by its PID (pg_ctl stop -m fast), keeping its
    directory for start_again: a replica that goes away and comes back."""
    subprocess.run(
        _as_server_user([str(BIN / "pg_ctl"), "stop", "-m", "fast", "-W", "-D", str(server.data)]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    wait_gone(server.pid)


def start_again(server: PostgresServer) -> PostgresServer:
    """Start a standby of start_standby (stopped by stop_keeping) on its port, as
    its postgresql.auto.conf says; `server` with the new PID."""
    _run(
        [str(BIN / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(server.data),
         "-l", str(server.directory / "server.log")],
        server.directory / "server.log",
    )  # fmt: skip
    server.pid = int((server.data / "postmaster.pid").read_text().split()[0])
    return server
