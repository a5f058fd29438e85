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
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.store.sqlite import rollups  # noqa: E402
from api.store.sqlite.keys import create_key  # noqa: E402
from api.store.sqlite.layout import open_for_writing  # noqa: E402
from tests.server import serving  # noqa: E402

EVENTS = 100_000
UNTIL = "2026-11-26"
EXAMPLE = json.loads((ROOT / "examples" / "new-events.json").read_text())["events"][0]
# Every status the API documents (docs/problems.md) for these requests.
DOCUMENTED = {200, 201, 204, 304, 400, 404, 408, 409, 410, 412, 428, 429, 503, 507}
# Seconds after the worker is killed in which connections may fail: Granian starts
# another after 1 s, which takes about a second to boot.
RESPAWN_WINDOW_S = 5
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
        # When each failed connection (status 0) failed, by the monotonic clock.
        self.failed_at: list[float] = []

    def add(self, kind: str, status: int, seconds: float, problem: str = "") -> None:
        with self.lock:
            if status == 0:
                self.failed_at.append(time.monotonic())
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
    subprocess.run(
        [sys.executable, "-m", "seed", "--db", str(path), "synthetic", "--events", str(EVENTS),
         "--until", UNTIL],
        cwd=ROOT, check=True,
    )  # fmt: skip


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--db", type=Path, default=ROOT / "var" / "soak.db")
    args = parser.parse_args()
    ensure_database(args.db)
    live, key = live_copy(args.db, "soak-live.db", "Soak", "admin")

    tally = Tally()
    created: list[str] = []
    races: list[tuple[int, int]] = []
    stop = time.monotonic() + args.seconds
    env = {"SALVO_RATE_LIMIT_KEY": "1000000/minute", **EDGE}
    killed_at: list[float] = []
    with serving(live, live.with_suffix(".log"), env=env) as server:
        since = synced_token(Client(server.url, key, Tally()))

        def reader(seed: int) -> None:
            client, rng = Client(server.url, key, tally), random.Random(seed)
            while time.monotonic() < stop:
                client.call("read", "GET", rng.choice(READS))

        def writer(seed: int) -> None:
            client, n = Client(server.url, key, tally), 0
            while time.monotonic() < stop:
                event = {**copy.deepcopy(EXAMPLE), "id": f"soak-{seed}-{n}"}
                status, _, _ = client.call("create", "POST", "/api/v1/events", {"events": [event]})
                if status == 201:
                    created.append(event["id"])
                n += 1

        def racer(seed: int) -> None:
            client = Client(server.url, key, tally)
            other = Client(server.url, key, tally)
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
            client = Client(server.url, key, tally)
            while time.monotonic() < stop:
                client.call("export", "GET", "/api/v1/events?format=ndjson&event_type=drone_strike")

        def slow_reader() -> None:
            while time.monotonic() < stop:
                status, seconds = slow_read(server.url, stop)
                tally.add("slowread", status, seconds)
                if status == 0:
                    time.sleep(0.1)  # no worker yet: try again shortly, not in a spin

        def slow_body() -> None:
            while time.monotonic() < stop:
                status, seconds = slow_post(server.url, key)
                tally.add("slowbody", status, seconds)
                if status == 0:
                    time.sleep(0.1)

        def killer() -> None:
            time.sleep(args.seconds / 2)
            (worker,) = server.workers()
            killed_at.append(time.monotonic())
            os.kill(worker, signal.SIGKILL)

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
        threads += [threading.Thread(target=slow_reader) for _ in range(4)]
        threads += [threading.Thread(target=slow_body) for _ in range(4)]
        threads.append(threading.Thread(target=killer))
        threads += [threading.Thread(target=writer, args=(i,)) for i in range(2)]
        threads += [threading.Thread(target=racer, args=(i,)) for i in range(1)]
        threads.append(threading.Thread(target=exporter))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        feed = Client(server.url, key, Tally())
        in_feed = set()
        url = f"/api/v1/changes?limit=1000&since={since}"
        while url:
            status, _, data = feed.call("feed", "GET", url)
            assert status == 200, (status, data[:300])
            page = json.loads(data)
            in_feed |= {change["event_id"] for change in page["data"]}
            following = page["links"]["next"]
            url = f"{urlsplit(following).path}?{urlsplit(following).query}" if following else ""

    conn = sqlite3.connect(live, isolation_level=None)
    stored = {row[0] for row in conn.execute("SELECT id FROM events WHERE id LIKE 'soak-%'")}
    drifted = rollups_drifted(conn)
    conn.close()
    if killed_at:
        after_kill = [t - killed_at[0] for t in tally.failed_at]
        failing = max(after_kill, default=0)
        print(f"\nworker killed: connections failed for {failing:.1f} s after it")
        outside = sum(1 for t in after_kill if not 0 <= t <= RESPAWN_WINDOW_S)
    else:
        outside = len(tally.failed_at)
    return report(tally, created, stored, in_feed, races, drifted, outside, args.seconds)


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
    tally: Tally,
    created: list[str],
    stored: set[str],
    in_feed: set[str],
    races: list[tuple[int, int]],
    drifted: list[str],
    failed_outside_the_kill: int,
    seconds: float,
) -> int:
    print(f"\nsoak: {seconds:g} s, mixed load on 127.0.0.1")
    print(f"{'kind':<8}{'requests':>10}{'p50 ms':>9}{'p99 ms':>9}  statuses")
    unexpected = Counter[int]()
    for kind in sorted(tally.statuses):
        statuses, latencies = tally.statuses[kind], sorted(tally.latencies[kind])
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        shown = ", ".join(f"{status}: {count:,}" for status, count in sorted(statuses.items()))
        print(f"{kind:<8}{sum(statuses.values()):>10,}{p50:>9.1f}{p99:>9.1f}  {shown}")
        # Status 0 is a failed connection, checked apart below.
        unexpected.update({s: c for s, c in statuses.items() if s not in DOCUMENTED | {0}})
    lost = set(created) - stored
    unsynced = set(created) - in_feed
    two_winners = sum(1 for won, _ in races if won > 1)
    checks = [
        ("statuses outside the documented set", sum(unexpected.values()), dict(unexpected)),
        ("acknowledged writes missing from the database", len(lost), sorted(lost)[:5]),
        ("acknowledged writes missing from /changes", len(unsynced), sorted(unsynced)[:5]),
        ("PATCH races with two winners", two_winners, ""),
        ("stats rollups that differ from a rebuild", len(drifted), drifted),
        ("connections failed but just after the kill", failed_outside_the_kill, ""),
    ]
    for problem, count in sorted(tally.problems.items()):
        print(f"  problems: {problem}: {count:,}")
    print(f"\n{len(created):,} events acknowledged (201), {len(races):,} PATCH races")
    for name, count, detail in checks:
        print(f"{name:<50}{count:>6}  {'ok' if count == 0 else f'FAILED {detail}'}")
    return 0 if all(count == 0 for _, count, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
