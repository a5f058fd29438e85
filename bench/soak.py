"""make soak: a bounded mixed load on a 100,000-event database, then a check that
nothing acknowledged was lost.

For --seconds (default 60) against the server as `make run` starts it, on 127.0.0.1:
readers page, filter, search and aggregate; writers POST new events; pairs of
editors PATCH the same event with the same ETag (exactly one may win); an exporter
streams NDJSON. Hostile clients join them: four slow readers of the NDJSON export
(1 KB every 2 s, cut by the send deadline and starting again), four slow bodies (a
byte every 0.5 s, answered 408), and half-way through, the worker process is killed
with SIGKILL (Granian starts another). It prints the count of every status per kind
of request, p50/p99 latencies, and then checks that every event acknowledged with a
201 is in the database file and in /changes, that every race had at most one winner,
that no status fell outside the documented set, and that no connection failed but
in the seconds after the kill. Exit 1 if any check fails.

A mirror follows /changes all through the load, as a partner's copy polls it; at the
end it must hold every event written since it started at the seq the database holds
it at (no change skipped: a gap), having been served no seq twice or out of order.

With --postgresql (`make soak-postgresql`) the same load and checks run on a
throwaway PostgreSQL of 100,000 events with two instances behind HAProxy
(ops/cluster.py), and half-way through one instance is killed instead of a worker;
the rollups are compared with the same rollups refilled from every event.
"""

import argparse
import copy
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.store.cursors import decode_cursor  # noqa: E402
from api.store.postgresql import rollups as postgresql_rollups  # noqa: E402
from api.store.postgresql.dialect import execute  # noqa: E402
from api.store.postgresql.store import PostgresStore  # noqa: E402
from api.store.postgresql.writes import fold_rollups, run  # noqa: E402
from api.store.sqlite import rollups  # noqa: E402
from api.store.sqlite.keys import create_key  # noqa: E402
from api.store.sqlite.layout import open_for_writing  # noqa: E402
from api.v1.changes import TOKEN  # noqa: E402
from bench.run import synthetic_command  # noqa: E402
from ops.cluster import missing as cluster_missing  # noqa: E402
from ops.cluster import start_cluster  # noqa: E402
from ops.postgres import missing as postgres_missing  # noqa: E402
from ops.postgres import start_server, stop_server_in  # noqa: E402
from tests.server import serving  # noqa: E402

EVENTS = 100_000
EXAMPLE = json.loads((ROOT / "examples" / "new-events.json").read_text())["events"][0]
# Every status the API documents (docs/problems.md) for these requests.
DOCUMENTED = {200, 201, 204, 304, 400, 404, 408, 409, 410, 412, 428, 429, 503, 507}
# Seconds after the crash in which connections may fail: Granian starts another
# worker after 1 s, which takes about a second to boot; HAProxy marks a killed
# instance down within 0.5 s (ops/cluster.py).
RESPAWN_WINDOW_S = 5
# A failed request: 0, the connection failed; 502, HAProxy's answer to a request the
# killed instance had taken and never answered. Either is allowed only just after the
# crash.
FAILED = {0, 502}
# An error without Salvo's problem body: HAProxy's own 503 when it holds no instance
# up (each failed its /readyz checks), which no client of one instance would get.
NOT_SALVOS = "not Salvo's: no problem body (the balancer's own answer)"
# The edge's bounds for the soak: slow readers are cut after 5 s without progress,
# and the address the soak runs from may hold all of its streams.
EDGE = {"SALVO_SEND_DEADLINE_S": "5", "SALVO_EXPORTS_PER_ADDRESS": "8"}
READS = [
    "/api/v1/events?limit=100",
    "/api/v1/events?event_type=missile_strike&date_from=2024-01-01&limit=100",
    "/api/v1/events?bbox=35.5,49.5,37.5,50.5&limit=50",
    "/api/v1/events?q=infrastructure&limit=20",
    "/api/v1/events?actor=russia&limit=20",
    "/api/v1/events?sort=-killed&limit=20",
    "/api/v1/events?format=geojson&limit=50",
    "/api/v1/stats?interval=month&event_type=drone_strike",
    "/api/v1/locations?limit=100",
    "/api/v1/changes?limit=100",
]


class Tally:
    """Statuses and latencies per kind of request, from many threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)
        self.problems: Counter[str] = Counter()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        # When each failed request (FAILED) failed, by the monotonic clock, its kind,
        # status and how long it had taken.
        self.failed_at: list[tuple[float, str, int, float]] = []
        # When each other error that Salvo did not answer came (NOT_SALVOS).
        self.not_salvos_at: list[float] = []

    def add(self, kind: str, status: int, seconds: float, problem: str = "") -> None:
        with self.lock:
            if status in FAILED:
                self.failed_at.append((time.monotonic(), kind, status, seconds))
            elif problem == NOT_SALVOS:
                self.not_salvos_at.append(time.monotonic())
            self.statuses[kind][status] += 1
            self.latencies[kind].append(seconds)
            if problem:
                self.problems[f"{status} {problem}"] += 1


class Client:
    """One keep-alive connection per thread, with the soak's write key."""

    def __init__(self, url: str, key: str, tally: Tally) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port, self.key, self.tally = host, int(port), key, tally
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(
        self,
        kind: str,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        sent = {"Authorization": f"Bearer {self.key}", **(headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=payload, headers=sent)
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.tally.add(kind, 0, time.perf_counter() - started)
            return 0, {}, b""
        found = {k.lower(): v for k, v in response.getheaders()}
        problem = ""
        if found.get("content-type") == "application/problem+json":
            problem = json.loads(data)["type"]
        elif response.status >= 500:
            problem = NOT_SALVOS
        self.tally.add(kind, response.status, time.perf_counter() - started, problem)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def ensure_database(path: Path) -> None:
    if path.exists():
        conn = sqlite3.connect(path)
        (count,) = conn.execute("SELECT count(*) FROM events WHERE id LIKE 'syn-%'").fetchone()
        conn.close()
        if count == EVENTS:
            return
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"soak: building {path} ({EVENTS:,} synthetic events)", flush=True)
    subprocess.run(synthetic_command(str(path), EVENTS), cwd=ROOT, check=True)


def live_copy(built: Path, name: str, key_name: str, scope: str) -> tuple[Path, str]:
    """A fresh copy of the built database beside it, named `name`, and a new key of
    `scope` for it: each run starts from the built file, so that what it acknowledged
    is its own."""
    live = built.with_name(name)
    for stale in live.parent.glob(live.name + "*"):
        stale.unlink()
    source = sqlite3.connect(built)
    target = sqlite3.connect(live)
    source.backup(target)
    source.close()
    target.close()
    db = open_for_writing(str(live))
    key = create_key(db, key_name, scope)
    db.close()
    return live, key


@dataclass
class Target:
    """Where the soak runs, while its context is open: the URL its clients use, a
    key of the admin scope, how to crash part of it half-way, what crashing leaves
    to Granian or HAProxy, and what the database holds afterwards."""

    name: str
    url: str
    key: str
    crash: Callable[[], str]
    # Events and tombstones written after a change number, each at its latest: {id: seq}.
    written_after: Callable[[int], dict[str, int]]
    # The rollups whose maintained rows differ from the same rollups rebuilt.
    rollups_drifted: Callable[[], list[str]]


@contextmanager
def on_sqlite(built: Path) -> Iterator[Target]:
    """The server as `make run` starts it, on a fresh copy of the built file; the
    crash is its worker process killed (Granian starts another)."""
    ensure_database(built)
    live, key = live_copy(built, "soak-live.db", "Soak", "admin")
    env = {"SALVO_RATE_LIMIT_KEY": "1000000/minute", **EDGE}
    with serving(live, live.with_suffix(".log"), env=env) as server:

        def crash() -> str:
            (worker,) = server.workers()
            os.kill(worker, signal.SIGKILL)
            return f"worker {worker} killed"

        def written_after(seq: int) -> dict[str, int]:
            conn = sqlite3.connect(f"file:{live}?mode=ro", uri=True)
            try:
                return dict(conn.execute(WRITTEN_AFTER, [seq, seq]).fetchall())
            finally:
                conn.close()

        def drifted() -> list[str]:
            conn = sqlite3.connect(live, isolation_level=None)
            try:
                return rollups_drifted(conn)
            finally:
                conn.close()

        yield Target(f"SQLite, {live.name}", server.url, key, crash, written_after, drifted)


@contextmanager
def on_postgresql(events: int) -> Iterator[Target]:
    """A throwaway PostgreSQL holding `events` synthetic events, and two instances
    behind HAProxy (ops/cluster.py, as `make cluster` starts them); the crash is one
    instance killed (SIGKILL to its process group), which the balancer routes around."""
    postgres = start_server()
    try:
        postgres.admin("CREATE DATABASE soak")
        url = postgres.url("soak")
        print(f"soak: loading {events:,} synthetic events into a throwaway PostgreSQL", flush=True)
        subprocess.run(synthetic_command(url, events), cwd=ROOT, check=True)
        store = PostgresStore(url)
        key = store.create_key("Soak", "admin")
        store.close()
        env = {"SALVO_RATE_LIMIT_KEY": "1000000/minute", **EDGE}
        cluster = start_cluster(2, database=url, environment=env)
        try:

            def crash() -> str:
                victim = cluster.instances[-1]
                victim.kill()
                return f"{victim.name} killed (of {len(cluster.instances)})"

            def written_after(seq: int) -> dict[str, int]:
                with psycopg.connect(url, autocommit=True) as conn:
                    return dict(execute(conn, WRITTEN_AFTER, [seq, seq]).fetchall())

            def drifted() -> list[str]:
                with psycopg.connect(url, autocommit=True) as conn:
                    return postgresql_rollups_drifted(conn)

            yield Target(
                "PostgreSQL, 2 instances behind HAProxy", cluster.url, key, crash,
                written_after, drifted,
            )  # fmt: skip
        finally:
            # What the balancer saw of the instances (its health checks' verdicts),
            # read before stop() removes its log.
            log = cluster.directory / "haproxy.log"
            for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
                if " is DOWN" in line or " is UP" in line:
                    print(f"haproxy: {line.strip()}")
            # And what the instances logged of their faults: a 500 is explained here.
            for instance in cluster.instances:
                for fault in faults(instance.log):
                    print(f"{instance.name}: {fault}")
            cluster.stop()
    finally:
        stop_server_in(postgres.directory)


def faults(log: Path) -> list[str]:
    """What an instance's log holds besides its access log: each traceback (its last
    line, the exception, and the frame in Salvo's code nearest to it), and the count
    of responses the edge cut (a client that took no data for the send deadline)."""
    if not log.exists():
        return []
    found, cut, frame = [], 0, ""
    lines = log.read_text(errors="replace").splitlines()
    in_traceback = False
    for line in lines:
        if line.startswith("Traceback (most recent call last)"):
            in_traceback, frame = True, ""
        elif in_traceback and line.startswith("  File "):
            if "/site-packages/" not in line:
                frame = line.strip()
        elif in_traceback and not line.startswith(" "):
            in_traceback = False
            found.append(f"{line.strip()} ({frame})")
        elif line.startswith("api: cut a response"):
            cut += 1
    if cut:
        found.append(f"{cut} responses cut (their clients took no data for the send deadline)")
    return found


WRITTEN_AFTER = (
    "SELECT id, seq FROM events WHERE seq > ? UNION ALL "
    "SELECT id, seq FROM event_tombstones WHERE seq > ?"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--db", type=Path, default=ROOT / "var" / "soak.db")
    parser.add_argument(
        "--postgresql",
        action="store_true",
        help="on a throwaway PostgreSQL with two instances behind HAProxy (`make soak-postgresql`)",
    )
    args = parser.parse_args()
    if args.postgresql:
        reason = postgres_missing() or cluster_missing()
        if reason is not None:
            print(f"soak: {reason}", file=sys.stderr)
            return 2
    with on_postgresql(EVENTS) if args.postgresql else on_sqlite(args.db) as target:
        return soak(target, args.seconds)


def soak(target: Target, seconds: float) -> int:
    """The mixed load on the target for `seconds`, a mirror following the change feed
    all through it, then the checks; 0 if every one passed."""
    tally = Tally()
    created: list[str] = []
    races: list[tuple[int, int]] = []
    killed_at: list[float] = []
    key = target.key
    since = synced_token(Client(target.url, key, Tally()))
    mirror = Mirror(Client(target.url, key, Tally()), since)
    # Timed from here: the first sync pages through every event (seconds at 100,000).
    began = time.monotonic()
    stop = began + seconds

    def reader(seed: int) -> None:
        client, rng = Client(target.url, key, tally), random.Random(seed)
        while time.monotonic() < stop:
            client.call("read", "GET", rng.choice(READS))

    def writer(seed: int) -> None:
        client, n = Client(target.url, key, tally), 0
        while time.monotonic() < stop:
            event = {**copy.deepcopy(EXAMPLE), "id": f"soak-{seed}-{n}"}
            status, _, _ = client.call("create", "POST", "/api/v1/events", {"events": [event]})
            if status == 201:
                created.append(event["id"])
            n += 1

    def racer(seed: int) -> None:
        client = Client(target.url, key, tally)
        other = Client(target.url, key, tally)
        n = 0
        while time.monotonic() < stop:
            event_id = f"soak-race-{seed}-{n}"
            n += 1  # a failed create may have been written (the kill): a new id
            event = {**copy.deepcopy(EXAMPLE), "id": event_id}
            status, _, _ = client.call("create", "POST", "/api/v1/events", {"events": [event]})
            if status != 201:
                continue
            created.append(event_id)
            status, headers, _ = client.call("read", "GET", f"/api/v1/events/{event_id}")
            if status != 200:
                continue
            outcomes = race([client, other], event_id, headers["etag"])
            races.append((outcomes.count(200), outcomes.count(412)))

    def exporter() -> None:
        client = Client(target.url, key, tally)
        while time.monotonic() < stop:
            client.call("export", "GET", "/api/v1/events?format=ndjson&event_type=drone_strike")

    def slow_reader() -> None:
        while time.monotonic() < stop:
            status, taken = slow_read(target.url, stop)
            tally.add("slowread", status, taken)
            if status == 0:
                time.sleep(0.1)  # no worker yet: try again shortly, not in a spin

    def slow_body() -> None:
        while time.monotonic() < stop:
            status, taken = slow_post(target.url, key)
            tally.add("slowbody", status, taken)
            if status == 0:
                time.sleep(0.1)

    def killer() -> None:
        time.sleep(seconds / 2)
        killed_at.append(time.monotonic())
        print(f"soak: {target.crash()}", flush=True)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=slow_reader) for _ in range(4)]
    threads += [threading.Thread(target=slow_body) for _ in range(4)]
    threads.append(threading.Thread(target=killer))
    threads += [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    threads += [threading.Thread(target=racer, args=(i,)) for i in range(1)]
    threads.append(threading.Thread(target=exporter))
    following = threading.Thread(target=mirror.follow)
    following.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    mirror.done.set()  # one last pass to the end of the feed, then it returns
    following.join()

    written = target.written_after(mirror.base)
    drifted = target.rollups_drifted()
    if tally.not_salvos_at:
        crash = f"; the crash at {killed_at[0] - began:.1f} s" if killed_at else ""
        print(
            f"\n{len(tally.not_salvos_at):,} errors Salvo did not answer, from "
            f"{tally.not_salvos_at[0] - began:.1f} s to {tally.not_salvos_at[-1] - began:.1f} s "
            f"into the soak{crash}"
        )
    if killed_at:
        after_kill = [
            (t - killed_at[0], kind, status, taken) for t, kind, status, taken in tally.failed_at
        ]
        failing = max((t for t, _, _, _ in after_kill), default=0)
        print(f"\n{target.name}: connections failed for {failing:.1f} s after the crash")
        outside = [f for f in after_kill if not 0 <= f[0] <= RESPAWN_WINDOW_S]
        for t, kind, status, taken in outside:
            print(f"  {kind} failed ({status}) {t:+.1f} s from the crash, after {taken:.1f} s")
    else:
        outside = tally.failed_at
    return report(
        target.name, tally, created, written, mirror, races, drifted, len(outside), seconds
    )


class Mirror:
    """A partner's copy following /changes all through the load, as a mirror polls
    it: each event's latest seq, and every seq in the order the feed served it."""

    def __init__(self, client: Client, since: str) -> None:
        self.client, self.since = client, since
        # The change the soak starts after: what the database holds beyond it is
        # what the mirror must end with.
        self.base = int(decode_cursor(since, TOKEN, (str, int), param="since")[1])
        self.seqs: dict[str, int] = {}
        self.served: list[int] = []
        self.pages = 0
        self.done = threading.Event()

    def follow(self) -> None:
        """Poll until told `done`, then read to the end of the feed once more (retrying
        for up to a minute if the target fails to answer)."""
        deadline = None
        while True:
            finishing = self.done.is_set()
            caught_up = self.catch_up()
            if finishing and caught_up:
                return
            if finishing:
                deadline = deadline or time.monotonic() + 60
                if time.monotonic() > deadline:
                    return
            time.sleep(0.2)

    def catch_up(self) -> bool:
        """Read the feed from the mirror's token to its end; False if a page failed."""
        while True:
            status, _, data = self.client.call(
                "feed", "GET", f"/api/v1/changes?limit=1000&since={self.since}"
            )
            if status != 200:
                return False
            page = json.loads(data)
            self.pages += 1
            for change in page["data"]:
                self.served.append(change["seq"])
                self.seqs[change["event_id"]] = change["seq"]
            self.since = page["meta"]["since"]
            if not page["links"]["next"]:
                return True


def postgresql_rollups_drifted(conn: psycopg.Connection[Any]) -> list[str]:
    """As rollups_drifted, on PostgreSQL, which has no rebuild of its own: every
    rollup emptied and refilled from every event by the writers' own statements
    (each event's contribution recorded, then folded), in a transaction rolled back."""

    def rows(table: str) -> Counter[tuple[Any, ...]]:
        return Counter(rollups.table_rows(cast(Any, conn), table))

    maintained = {table: rows(table) for table in rollups.TABLES}
    with conn.transaction(force_rollback=True):
        for table in rollups.TABLES:
            conn.execute(f"DELETE FROM {table}")
        every = [event_id for (event_id,) in conn.execute("SELECT id FROM events")]
        run(conn, postgresql_rollups.ADD, [every] * 3)
        fold_rollups(conn, removed=False)
        return [table for table in rollups.TABLES if rows(table) != maintained[table]]


def slow_read(url: str, stop: float) -> tuple[int, float]:
    """One slow reader's export: the NDJSON export uncompressed, 1 KB every 2 s until
    the server cuts it (or it ends, or the soak does); its status and duration."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    started = time.perf_counter()
    try:
        conn.request("GET", "/api/v1/events?format=ndjson", headers={"Accept-Encoding": "identity"})
        response = conn.getresponse()
        if response.status != 200:
            response.read()
            return response.status, time.perf_counter() - started
        while time.monotonic() < stop and response.read(1024):
            time.sleep(2)
        return 200, time.perf_counter() - started
    except http.client.IncompleteRead:
        return 200, time.perf_counter() - started  # cut by the send deadline
    except (OSError, http.client.HTTPException):
        return 0, time.perf_counter() - started
    finally:
        conn.close()


def slow_post(url: str, key: str) -> tuple[int, float]:
    """A POST with the write key whose body comes a byte every 0.5 s; its status (408
    once the body deadline passes) and duration."""
    host, port = url.removeprefix("http://").split(":")
    started = time.perf_counter()
    try:
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            sock.sendall(
                b"POST /api/v1/events HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json"
                b"\r\nAuthorization: Bearer " + key.encode() + b"\r\nContent-Length: 1000\r\n\r\n{"
            )
            sock.settimeout(0.5)
            answer = b""
            while not answer:
                try:
                    answer = sock.recv(65536)
                except TimeoutError:
                    sock.sendall(b" ")
                    continue
                if not answer:
                    return 0, time.perf_counter() - started
            return int(answer.split(b" ", 2)[1]), time.perf_counter() - started
    except (OSError, ValueError, IndexError):
        return 0, time.perf_counter() - started


def rollups_drifted(conn: sqlite3.Connection) -> list[str]:
    """The rollups whose rows, maintained by every write of the soak, differ from the
    same rollups rebuilt from the events (rebuilt in a transaction rolled back)."""
    maintained = {table: rollups.table_rows(conn, table) for table in rollups.TABLES}
    conn.execute("BEGIN")
    try:
        rollups.rebuild(conn)
        return [t for t in rollups.TABLES if rollups.table_rows(conn, t) != maintained[t]]
    finally:
        conn.execute("ROLLBACK")


def race(editors: list[Client], event_id: str, etag: str) -> list[int]:
    """The statuses of the editors' PATCHes of one event with the same ETag, sent at
    the same moment."""
    outcomes: list[int] = []

    def edit(who: Client, notes: str) -> None:
        status, _, _ = who.call(
            "patch", "PATCH", f"/api/v1/events/{event_id}", {"notes": notes}, {"If-Match": etag}
        )
        outcomes.append(status)

    pair = [
        threading.Thread(target=edit, args=(who, f"Editor {n}.")) for n, who in enumerate(editors)
    ]
    for thread in pair:
        thread.start()
    for thread in pair:
        thread.join()
    return outcomes


def synced_token(client: Client) -> str:
    """Page through the whole change feed, as a partner's first sync does, and return
    the token to continue from."""
    url, since = "/api/v1/changes?limit=1000", ""
    while url:
        status, _, data = client.call("feed", "GET", url)
        assert status == 200, (status, data[:300])
        page = json.loads(data)
        since = page["meta"]["since"]
        following = page["links"]["next"]
        url = f"{urlsplit(following).path}?{urlsplit(following).query}" if following else ""
    return str(since)


def report(
    target: str,
    tally: Tally,
    created: list[str],
    written: dict[str, int],
    mirror: "Mirror",
    races: list[tuple[int, int]],
    drifted: list[str],
    failed_outside_the_kill: int,
    seconds: float,
) -> int:
    print(f"\nsoak: {seconds:g} s, mixed load on 127.0.0.1, {target}")
    print(f"{'kind':<8}{'requests':>10}{'p50 ms':>9}{'p99 ms':>9}  statuses")
    unexpected = Counter[int]()
    for kind in sorted(tally.statuses):
        statuses, latencies = tally.statuses[kind], sorted(tally.latencies[kind])
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        shown = ", ".join(f"{status}: {count:,}" for status, count in sorted(statuses.items()))
        print(f"{kind:<8}{sum(statuses.values()):>10,}{p50:>9.1f}{p99:>9.1f}  {shown}")
        # Failed requests are checked apart below.
        unexpected.update({s: c for s, c in statuses.items() if s not in DOCUMENTED | FAILED})
    lost = set(created) - set(written)
    unsynced = set(created) - set(mirror.seqs)
    # The mirror's copy against the database: an event whose latest change it lacks
    # (a gap: a change became visible below a seq the feed had already served), or
    # holds at another seq.
    missed = {i for i in set(written) | set(mirror.seqs) if written.get(i) != mirror.seqs.get(i)}
    served = mirror.served
    repeated = len(served) - len(set(served))
    unordered = sum(1 for before, after in pairwise(served) if after <= before)
    two_winners = sum(1 for won, _ in races if won > 1)
    checks = [
        # A soak that wrote nothing proves nothing of the checks below.
        ("soaks in which no write was acknowledged", int(not created), ""),
        ("statuses outside the documented set", sum(unexpected.values()), dict(unexpected)),
        ("errors Salvo did not answer (no problem body)", len(tally.not_salvos_at), ""),
        ("acknowledged writes missing from the database", len(lost), sorted(lost)[:5]),
        ("acknowledged writes missing from /changes", len(unsynced), sorted(unsynced)[:5]),
        ("events the mirror of /changes holds otherwise", len(missed), sorted(missed)[:5]),
        ("changes the feed served twice or out of order", repeated + unordered, ""),
        ("PATCH races with two winners", two_winners, ""),
        ("stats rollups that differ from a rebuild", len(drifted), drifted),
        ("connections failed but just after the kill", failed_outside_the_kill, ""),
    ]
    for problem, count in sorted(tally.problems.items()):
        print(f"  problems: {problem}: {count:,}")
    print(
        f"\n{len(created):,} events acknowledged (201), {len(races):,} PATCH races; the "
        f"mirror followed {len(served):,} changes in {mirror.pages:,} pages"
    )
    for name, count, detail in checks:
        print(f"{name:<50}{count:>6}  {'ok' if count == 0 else f'FAILED {detail}'}")
    return 0 if all(count == 0 for _, count, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
