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
        return database_url(self.port, self.password, database)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction in the `postgres` database."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)


def database_url(port: int, password: str, database: str) -> str:
    """A database on 127.0.0.1:port (the server's, or a pooler's in front of it), as
    the role ROLE."""
    return f"postgresql://{ROLE}:{password}@127.0.0.1:{port}/{database}"


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


def as_server_user(argv: list[str]) -> list[str]:
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
            as_server_user(argv), stdout=out, stderr=subprocess.STDOUT, check=False
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
                as_server_user(
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


# Point-in-time recovery (docs/operations.md, "Point-in-time recovery on PostgreSQL"):
# WAL archiving on a running throwaway cluster, a base backup of it, and a new cluster
# recovered from the two up to a moment.


def archive_wal(server: PostgresServer, archive: Path) -> None:
    """Turn WAL archiving on for the running throwaway cluster: each finished WAL
    segment is copied into `archive` (never over a file already there, as
    PostgreSQL's documentation recommends). archive_mode takes a restart: pg_ctl
    restart reuses the options the cluster was started with; `server.pid` follows."""
    archive.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(archive, "postgres", "postgres")
    server.admin("ALTER SYSTEM SET archive_mode = 'on'")
    server.admin(
        f"ALTER SYSTEM SET archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f'"
    )
    _run(
        [str(BIN / "pg_ctl"), "restart", "-w", "-t", "60", "-m", "fast", "-D", str(server.data),
         "-l", str(server.directory / "server.log")],
        server.directory / "server.log",
    )  # fmt: skip
    wait_gone(server.pid)
    server.pid = int((server.data / "postmaster.pid").read_text().split()[0])


def archived_now(server: PostgresServer, timeout: float = 30) -> None:
    """Close the current WAL segment (pg_switch_wal) and wait until the archiver has
    copied it: everything committed before the call is then in the archive."""
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        assert row is not None
        deadline = time.monotonic() + timeout
        while True:
            done = conn.execute(
                "SELECT last_archived_wal >= %s FROM pg_stat_archiver", [row[0]]
            ).fetchone()
            if done and done[0]:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"WAL segment {row[0]} was not archived within {timeout} s")
            time.sleep(0.05)


def base_backup(server: PostgresServer) -> Path:
    """A base backup of the running cluster (pg_basebackup, a fast checkpoint) into a
    new temporary directory laid out as start_server's (`data/`, the password file):
    the directory, for recover_to."""
    directory = Path(
        tempfile.mkdtemp(prefix="salvo-basebackup-", dir="/tmp" if os.geteuid() == 0 else None)
    )
    try:
        (directory / "password").write_text(server.password + "\n")
        log = directory / "server.log"
        log.touch()
        if os.geteuid() == 0:
            for path in (directory, directory / "password", log):
                shutil.chown(path, "postgres", "postgres")
        _run(
            [str(BIN / "pg_basebackup"), "-d", server.url("postgres"), "-D",
             str(directory / "data"), "--checkpoint=fast", "--no-sync"],
            log,
        )  # fmt: skip
        return directory
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def recover_to(directory: Path, archive: Path, target_time: str) -> PostgresServer:
    """Start the base backup in `directory` (base_backup's) as a cluster of its own on
    a free port, replaying the WAL of `archive` up to the last transaction committed
    at or before `target_time` (restore_command, recovery_target_time,
    recovery.signal), then promoted to a primary of a new timeline; returned once it
    accepts writes. Its archiving is off: it must not write into the archive of the
    cluster it was recovered from."""
    started = time.monotonic()
    data = directory / "data"
    with (data / "postgresql.auto.conf").open("a") as settings:
        settings.write(
            f"restore_command = 'cp {archive}/%f %p'\n"
            f"recovery_target_time = '{target_time}'\n"
            "recovery_target_action = 'promote'\n"
        )
    (data / "recovery.signal").touch()
    if os.geteuid() == 0:
        shutil.chown(data / "recovery.signal", "postgres", "postgres")
    port = free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} "
        f"-c unix_socket_directories={directory} -c fsync=off "
        "-c synchronous_commit=off -c archive_mode=off"
    )
    try:
        _run(
            [str(BIN / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(data),
             "-l", str(directory / "server.log"), "-o", options],
            directory / "server.log",
        )  # fmt: skip
        pid = int((data / "postmaster.pid").read_text().split()[0])
        server = PostgresServer(
            directory, port, (directory / "password").read_text().strip(), pid, 0.0
        )
        # pg_ctl returns once the server accepts (read-only) connections in recovery.
        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(server.url("postgres")) as conn:
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if row is not None and not row[0]:
                    break
            except psycopg.OperationalError:
                pass
            if time.monotonic() > deadline:
                log = (directory / "server.log").read_text()
                raise RuntimeError(f"the cluster was not promoted within 60 s:\n{log}")
            time.sleep(0.05)
        server.seconds_to_start = time.monotonic() - started
        return server
    except BaseException:
        stop_server_in(directory)
        raise


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
        as_server_user([str(BIN / "pg_ctl"), "stop", "-m", "fast", "-W", "-D", str(server.data)]),
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
