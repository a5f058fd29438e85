"""Many Salvo instances on one PostgreSQL database, behind HAProxy, on loopback:
`python -m ops.cluster` (`make cluster`).

It starts, in this order, each on 127.0.0.1 and a free port unless told otherwise:
- PostgreSQL + PostGIS: a throwaway cluster (ops/postgres.py), or the database named
  by SALVO_DATABASE=postgresql://... (or --database), which is used as it is;
- `python -m api migrate` on that database (creates or upgrades the layout);
- with `--standby`, a hot standby of the throwaway cluster (ops/postgres.py,
  start_standby: `pg_basebackup -R`, streaming replication), which the instances
  read from (SALVO_DATABASE_REPLICA); a replica of a database the user named is
  given as SALVO_DATABASE_REPLICA=postgresql://... instead, passed on as it is;
- redis-server (ops/redis.py): the rate-limit counters every instance shares;
- N instances, `python -m api serve --workers 1`, each with SALVO_DATABASE,
  SALVO_RATE_LIMIT_STORAGE and SALVO_TRUSTED_PROXIES (the balancer), each waited for
  until its /readyz answers 200;
- HAProxy (Debian's package), round robin over the instances, checking each one's
  /readyz and naming each client in X-Forwarded-For; waited for until it answers
  through the balancer.

Everything it started is stopped by PID on Ctrl-C or SIGTERM (Cluster.stop), and its
temporary directory removed. Why HAProxy, and the health-check timings: docs/operations.md,
"Many instances". tests/test_cluster.py starts the cluster through start_cluster, as
`make cluster` does.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from ops.postgres import PostgresServer, free_port, start_server, start_standby, stop_server_in
from ops.redis import RedisServer, start_redis

ROOT = Path(__file__).resolve().parents[1]
HAPROXY = "haproxy"

# How HAProxy checks each instance's /readyz: every CHECK_INTERVAL_MS, and FALL
# failures in a row mark it down. A killed instance refuses connections at once on
# loopback, so it is down within FALL x CHECK_INTERVAL_MS (+ one check's round trip);
# meanwhile a request sent to it fails to connect and is redispatched to another
# instance (retries + option redispatch), which is safe for any method: it never
# reached the dead one. RISE successes bring an instance back.
CHECK_INTERVAL_MS = 250
FALL = 2
RISE = 2
# How long one check may take. Without it HAProxy allows a check CHECK_INTERVAL_MS,
# and an instance busy serving (its /readyz waits for a read thread like any request)
# was taken out of rotation: under `make soak-postgresql`, with the other instance
# killed, the survivor went down too and HAProxy answered thousands of 503s itself.
# A dead instance is still found at once: its port refuses the connection.
CHECK_TIMEOUT_MS = 2000


def missing() -> str | None:
    """What this machine lacks to start a cluster (besides PostgreSQL), or None."""
    if shutil.which(HAPROXY) is None:
        return "HAProxy is not installed (apt-get install haproxy)"
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    return None


@dataclass
class Instance:
    """One Salvo instance: `python -m api serve`, leader of its own process group (so
    that Granian's worker process goes with it when the group is signalled)."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the instance's process group by its PID (a crash: nothing finishes)."""
        _signal_group(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        _wait_group_gone(self.pid, timeout=10)

    def stop(self) -> None:
        """SIGTERM: Granian stops accepting and lets requests in flight finish (30 s
        at most, api/__main__.py); SIGKILL after 40 s."""
        _signal_group(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
            _wait_group_gone(self.pid, timeout=10)
        except (subprocess.TimeoutExpired, TimeoutError):
            self.kill()


@dataclass
class Cluster:
    """A running cluster: what to reach, and everything to stop."""

    directory: Path
    database_url: str
    redis: RedisServer
    instances: list[Instance]
    balancer_port: int
    balancer: subprocess.Popen[bytes] | None = None
    postgres: PostgresServer | None = None
    standby: PostgresServer | None = None
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        """The balancer's address: what clients use."""
        return f"http://127.0.0.1:{self.balancer_port}"

    def stop(self) -> None:
        """Stop everything by PID, the balancer first (no new requests), then the
        instances (requests in flight finish), Redis, and the throwaway PostgreSQL
        (its standby first); each even if one before it failed to stop."""
        if self.stopped:
            return
        self.stopped = True
        try:
            if self.balancer is not None and self.balancer.poll() is None:
                # haproxy -db: SIGTERM stops it at once (SIGUSR1 would drain).
                self.balancer.terminate()
                self.balancer.wait(timeout=10)
        finally:
            try:
                for instance in self.instances:
                    if instance.process.poll() is None:
                        instance.stop()
                    else:
                        _wait_group_gone(instance.pid, timeout=10)
            finally:
                try:
                    self.redis.stop()
                finally:
                    _stop_servers(self.standby, self.postgres)
                    shutil.rmtree(self.directory, ignore_errors=True)


def standby_refusal(database: str | None, standby: bool) -> str | None:
    """Why a standby cannot be made (it copies the throwaway cluster only), or None."""
    if standby and database is not None:
        return (
            "a standby is made of the throwaway cluster only: name your database's "
            "replica in SALVO_DATABASE_REPLICA"
        )
    return None


def start_cluster(
    instances: int = 2,
    database: str | None = None,
    balancer_port: int | None = None,
    environment: Mapping[str, str] | None = None,
    standby: bool = False,
) -> Cluster:
    """Start the cluster and return it once the balancer answers; everything started
    is stopped again if a later step fails. `database` is a postgresql:// URL to use
    instead of a throwaway cluster; `environment` adds variables to every instance's
    (e.g. SALVO_RATE_LIMIT_ANONYMOUS); `standby` adds a hot standby of the throwaway
    cluster that the instances read from."""
    if instances < 1:
        raise ValueError("a cluster needs at least one instance")
    refusal = standby_refusal(database, standby)
    if refusal is not None:
        raise ValueError(refusal)
    directory = Path(tempfile.mkdtemp(prefix="salvo-cluster-"))
    postgres: PostgresServer | None = None
    replica: PostgresServer | None = None
    redis: RedisServer | None = None
    cluster: Cluster | None = None
    try:
        if database is None:
            postgres = start_server()
            postgres.admin("CREATE DATABASE salvo")
            database = postgres.url("salvo")
        _python(["-m", "api", "--db", database, "migrate"], directory / "migrate.log")
        if postgres is not None:
            # A throwaway database gets the curated events, as `make run` seeds its
            # file; a database the user named is only migrated, never written to.
            _python(["-m", "seed", "--db", database], directory / "seed.log")
        if postgres is not None and standby:
            # Copied once the layout and the seed are in; it streams every write after.
            replica = start_standby(postgres)
        redis = start_redis(directory)
        cluster = Cluster(directory, database, redis, [], balancer_port or free_port())
        cluster.postgres, cluster.standby = postgres, replica
        env = {
            **os.environ,
            **(environment or {}),
            # The instances import this checkout's api, wherever the venv points.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "SALVO_DATABASE": database,
            "SALVO_RATE_LIMIT_STORAGE": redis.url,
            # The balancer connects from loopback and names the client in
            # X-Forwarded-For (option forwardfor): limits count each client's own.
            "SALVO_TRUSTED_PROXIES": "127.0.0.1",
        }
        if replica is not None:
            env["SALVO_DATABASE_REPLICA"] = replica.url("salvo")
        for number in range(1, instances + 1):
            cluster.instances.append(_start_instance(f"instance-{number}", directory, env))
        deadline = time.monotonic() + 60
        for instance in cluster.instances:
            _wait_answers(f"{instance.url}/readyz", deadline, instance.process, instance.log)
        config = directory / "haproxy.cfg"
        config.write_text(haproxy_config(cluster.balancer_port, cluster.instances))
        log = directory / "haproxy.log"
        with log.open("wb") as out:
            cluster.balancer = subprocess.Popen(
                [HAPROXY, "-f", str(config), "-db"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_answers(f"{cluster.url}/readyz", deadline, cluster.balancer, log)
        return cluster
    except BaseException:
        if cluster is not None:
            cluster.stop()
        else:
            try:
                if redis is not None:
                    redis.stop()
            finally:
                _stop_servers(replica, postgres)
                shutil.rmtree(directory, ignore_errors=True)
        raise


def _stop_servers(*servers: PostgresServer | None) -> None:
    """Stop each throwaway PostgreSQL server given, in order, even if one fails."""
    if not servers:
        return
    first, *rest = servers
    try:
        if first is not None:
            stop_server_in(first.directory)
    finally:
        _stop_servers(*rest)


def haproxy_config(port: int, instances: list[Instance]) -> str:
    """HAProxy's configuration: HTTP mode, round robin, /readyz checks (see the
    constants above), and a connection refused by a dead instance retried on another."""
    servers = "\n".join(
        f"    server {instance.name} 127.0.0.1:{instance.port}" for instance in instances
    )
    return f"""\
global
    maxconn 2000

defaults
    mode http
    timeout connect 2s
    timeout client 300s
    # Exports of a whole dataset stream for minutes; pages answer in milliseconds.
    timeout server 300s
    timeout http-request 30s
    timeout check {CHECK_TIMEOUT_MS}ms
    retries 3
    option redispatch 1
    # The client's address, appended to X-Forwarded-For (api/proxies.py reads it).
    option forwardfor

frontend salvo
    bind 127.0.0.1:{port}
    default_backend instances

backend instances
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server check inter {CHECK_INTERVAL_MS}ms fall {FALL} rise {RISE}
{servers}
"""


def _start_instance(name: str, directory: Path, env: Mapping[str, str]) -> Instance:
    port = free_port()
    log = directory / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", str(port), "--workers", "1"],
            cwd=ROOT,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own process group: Ctrl-C in the terminal reaches only this
            # orchestrator, which stops the instances in order; and killing the group
            # takes Granian's worker along with its parent.
            start_new_session=True,
        )
    return Instance(name, port, process, log)


def _python(argv: list[str], log: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        result = subprocess.run(
            [sys.executable, *argv], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    if result.returncode != 0:
        raise RuntimeError(f"python {' '.join(argv[:3])} failed:\n{log.read_text()}")


def _wait_answers(url: str, deadline: float, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll `url` until it answers 200; fail if the process serving it exits first."""
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"{process.args!r} exited ({process.returncode}):\n{log.read_text()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 in time:\n{log.read_text()}")
        time.sleep(0.05)


def _signal_group(pid: int, signum: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pid, signum)


def _group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid`, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """Wait until no process of the group is left (Granian's worker may outlive its
    parent by a moment)."""
    deadline = time.monotonic() + timeout
    while _group_members(pgid):
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes {_group_members(pgid)} of group {pgid} still run")
        time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.cluster", description=__doc__)
    parser.add_argument("--instances", type=int, default=2, help="Salvo instances (default 2)")
    parser.add_argument("--port", type=int, default=8080, help="the balancer's port (8080)")
    parser.add_argument(
        "--database",
        default=os.environ.get("SALVO_DATABASE"),
        help="a postgresql:// URL to serve (default: $SALVO_DATABASE if it is one, else a "
        "throwaway PostgreSQL cluster, removed at the end)",
    )
    parser.add_argument(
        "--standby",
        action="store_true",
        help="add a hot standby of the throwaway cluster (pg_basebackup, streaming "
        "replication) and read from it (SALVO_DATABASE_REPLICA)",
    )
    args = parser.parse_args(argv)
    database = args.database
    if database and not database.startswith(("postgresql://", "postgres://")):
        database = None  # a SQLite path: many instances need PostgreSQL
    refusal = standby_refusal(database, args.standby)
    if refusal is not None:
        parser.error(refusal)
    reason = missing()
    if reason is not None:
        print(f"cluster: {reason}", file=sys.stderr)
        return 2

    def stop_on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # SIGTERM is handled as Ctrl-C is: the finally below stops everything by PID.
    # SIGINT is set too, since a shell that starts us in the background ignores it.
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    cluster: Cluster | None = None
    try:
        print(f"cluster: starting {args.instances} instances...", file=sys.stderr, flush=True)
        cluster = start_cluster(args.instances, database, args.port, standby=args.standby)
        if cluster.standby is not None:
            print(f"cluster: standby PID {cluster.standby.pid} on port {cluster.standby.port}")
        for instance in cluster.instances:
            print(f"cluster: {instance.name} PID {instance.pid} on {instance.url}")
        print(f"cluster: logs in {cluster.directory}")
        print(
            f"Salvo on {cluster.url}/ ({args.instances} instances behind HAProxy). Ctrl-C stops it."
        )
        sys.stdout.flush()
        reported: set[str] = set()
        while True:
            # An instance that dies stays listed: stop() still waits for its group.
            for instance in cluster.instances:
                if instance.process.poll() is not None and instance.name not in reported:
                    reported.add(instance.name)
                    print(f"cluster: {instance.name} exited ({instance.process.returncode})")
            if cluster.balancer is not None and cluster.balancer.poll() is not None:
                print(f"cluster: HAProxy exited ({cluster.balancer.returncode})", file=sys.stderr)
                return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("cluster: stopping", file=sys.stderr)
        return 0
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
