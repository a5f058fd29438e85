"""Many instances (issue 22, item 5): the cluster `make cluster` starts (ops/cluster.py,
start_cluster: a throwaway PostgreSQL + PostGIS, Redis, two Salvo instances and HAProxy,
all real processes on 127.0.0.1), and what it must keep:
- a write through one instance is read through the other, and through the balancer,
  with the same ETag;
- the rate limit is one count across the instances (Redis), and each client behind
  the balancer has its own (X-Forwarded-For, from the balancer alone);
- killing an instance (SIGKILL) loses no acknowledged write, and the balancer routes
  around it;
- with a hot standby (`make cluster STANDBY=1`), the instances read from it, and a
  client reads its own write through the other instance (Salvo-Position).

Skipped, with a reason naming HAProxy or PostgreSQL, only where their binaries are
missing; `.ci/run` installs them.
"""

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ops import postgres
from ops.cluster import CHECK_INTERVAL_MS, FALL, Cluster, missing, start_cluster

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = json.loads((ROOT / "examples" / "new-events.json").read_text())["events"][0]
# Anonymous callers (the rate-limit test) get this few requests a minute; the writes
# and reads of the other tests carry a key, whose limit stays the default 600.
ANONYMOUS_LIMIT = 5


class Answer:
    """An HTTP answer: status, headers (names in lower case, as Granian sends them),
    body (an error status is an answer too)."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = {name.lower(): value for name, value in headers.items()}
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str,
    url: str,
    key: str | None = None,
    body: Any = None,
    host: str | None = None,
    position: str | None = None,
) -> Answer:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if position is not None:
        headers["Salvo-Position"] = position
    if host is not None:
        headers["Host"] = host
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    sent = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(sent, timeout=10) as answer:
            return Answer(answer.status, dict(answer.headers.items()), answer.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers.items()), error.read())


def event(event_id: str) -> dict[str, Any]:
    return {**EXAMPLE, "id": event_id, "notes": f"Written through the cluster as {event_id}."}


def post_event(base: str, key: str, event_id: str) -> Answer:
    return request("POST", f"{base}/api/v1/events", key, {"events": [event(event_id)]})


@contextmanager
def two_instances(
    environment: dict[str, str] | None = None, standby: bool = False
) -> Iterator[Cluster]:
    """Two instances behind HAProxy, as `make cluster` starts them; afterwards no
    process of theirs is left."""
    for reason in (postgres.missing(), missing()):
        if reason is not None:
            pytest.skip(f"{reason}; CI installs it")
    started = start_cluster(instances=2, environment=environment, standby=standby)
    try:
        yield started
    finally:
        started.stop()
    for instance in started.instances:
        assert not postgres.running(instance.pid)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """The cluster the tests that kill nothing share, with a low anonymous rate limit."""
    with two_instances({"SALVO_RATE_LIMIT_ANONYMOUS": f"{ANONYMOUS_LIMIT}/minute"}) as started:
        yield started


def make_write_key(database_url: str) -> str:
    """A write key, made as an operator makes one: `python -m api keys create`."""
    made = subprocess.run(
        [sys.executable, "-m", "api", "--db", database_url, "keys", "create",
         "--name", "cluster test", "--scope", "write"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return made.stdout.strip()


@pytest.fixture(scope="module")
def write_key(cluster: Cluster) -> str:
    return make_write_key(cluster.database_url)


def test_a_write_through_one_instance_is_read_through_the_other(
    cluster: Cluster, write_key: str
) -> None:
    first, second = cluster.instances
    # The throwaway database holds the curated events (make cluster seeds it).
    seeded = request("GET", f"{cluster.url}/api/v1/events", write_key).json()["meta"]["total"]
    assert seeded > 0
    for writer, reader in ((first, second), (second, first)):
        event_id = f"ua-2024-06-01-cluster-{writer.name}"
        created = post_event(writer.url, write_key, event_id)
        assert created.status == 201, created.body
        read = request("GET", f"{reader.url}/api/v1/events/{event_id}", write_key)
        assert read.status == 200, read.body
        assert read.json()["notes"] == event(event_id)["notes"]
        again = request("GET", f"{writer.url}/api/v1/events/{event_id}", write_key)
        assert read.headers["etag"] == again.headers["etag"]
        balanced = request("GET", f"{cluster.url}/api/v1/events/{event_id}", write_key)
        assert balanced.headers["etag"] == read.headers["etag"]
    # The page too: both instances list the same events under one ETag, given the
    # Host the balancer passes on (a page's links name the host it was asked of, so
    # each instance's own address would give other bytes, rightly another ETag).
    balancer_host = cluster.url.removeprefix("http://")
    pages = [
        request("GET", f"{i.url}/api/v1/events", write_key, host=balancer_host)
        for i in cluster.instances
    ]
    assert pages[0].headers["etag"] == pages[1].headers["etag"]
    assert pages[0].json()["meta"]["total"] == seeded + 2
    balanced_page = request("GET", f"{cluster.url}/api/v1/events", write_key)
    assert balanced_page.headers["etag"] == pages[0].headers["etag"]


def test_the_rate_limit_is_counted_once_across_instances(cluster: Cluster) -> None:
    first, second = cluster.instances
    # Anonymous requests from one address, alternating between the instances: each
    # is counted in Redis, so the limit is reached after ANONYMOUS_LIMIT in all,
    # where counters of their own would let 2 x ANONYMOUS_LIMIT through.
    answers = [
        request("GET", f"{(first, second)[number % 2].url}/api/v1/event-types")
        for number in range(ANONYMOUS_LIMIT + 1)
    ]
    assert [a.status for a in answers] == [200] * ANONYMOUS_LIMIT + [429]
    remaining = [int(a.headers["ratelimit-remaining"]) for a in answers[:ANONYMOUS_LIMIT]]
    assert remaining == list(range(ANONYMOUS_LIMIT - 1, -1, -1))
    assert "retry-after" in answers[-1].headers
    # And through the balancer, whichever instance answers.
    assert request("GET", f"{cluster.url}/api/v1/event-types").status == 429


def status_from(source: str, url: str, headers: dict[str, str] | None = None) -> int:
    """The status of a GET sent from the loopback address `source` (any of 127.0.0.0/8
    is this machine's), as a client elsewhere would send it."""
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    conn = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=10, source_address=(source, 0)
    )
    try:
        conn.request("GET", parts.path, headers=headers or {})
        answer = conn.getresponse()
        answer.read()
        return answer.status
    finally:
        conn.close()


def test_each_client_behind_the_balancer_has_its_own_limit(cluster: Cluster) -> None:
    # Through HAProxy every connection an instance sees comes from 127.0.0.1; the
    # balancer names the client in X-Forwarded-For, which the instances trust from it.
    url = f"{cluster.url}/api/v1/event-types"
    statuses = [status_from("127.0.0.2", url) for _ in range(ANONYMOUS_LIMIT + 1)]
    assert statuses == [200] * ANONYMOUS_LIMIT + [429]
    assert status_from("127.0.0.3", url) == 200
    # A client's own X-Forwarded-For is not believed: the balancer appends the address
    # it saw, and an instance reached directly trusts no header from a client.
    spoofed = {"X-Forwarded-For": "203.0.113.9"}
    assert status_from("127.0.0.2", url, spoofed) == 429
    direct = f"{cluster.instances[0].url}/api/v1/event-types"
    assert status_from("127.0.0.2", direct, spoofed) == 429


def test_killing_an_instance_loses_no_acknowledged_write() -> None:
    """A writer posts through the balancer without pause; one instance is SIGKILLed
    mid-stream. Every 201 is readable afterwards, and requests through the balancer
    keep answering: at most ONE fails, the request (if any) that was in flight on the
    killed instance (the writer sends one at a time). A request HAProxy sends to
    the dead instance before its checks mark it down (FALL checks, CHECK_INTERVAL_MS
    apart) fails to connect, on loopback at once, and is redispatched to the other
    instance (retries + option redispatch): it never reached the dead one, so
    resending it is safe even for a POST."""
    # A cluster of its own, so that the other tests keep both instances whatever
    # the order they run in.
    with two_instances() as cluster:
        kill_one_under_writes(cluster, make_write_key(cluster.database_url))


def kill_one_under_writes(cluster: Cluster, write_key: str) -> None:
    victim, survivor = cluster.instances
    acknowledged: list[str] = []
    failed: list[str] = []
    stop = threading.Event()

    def write() -> None:
        number = 0
        while not stop.is_set() and number < 400:
            event_id = f"ua-2024-06-01-cluster-kill-{number}"
            number += 1
            try:
                answer = post_event(cluster.url, write_key, event_id)
            except OSError as error:
                failed.append(f"{event_id}: {error}")
                continue
            if answer.status == 201:
                acknowledged.append(event_id)
            else:
                failed.append(f"{event_id}: {answer.status} {answer.body[:200]!r}")

    writer = threading.Thread(target=write)
    writer.start()
    try:
        deadline = time.monotonic() + 20
        while len(acknowledged) < 10 and writer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(acknowledged) >= 10, failed
        victim.kill()
        killed_at = len(acknowledged)
        # Long enough for the checks to mark it down several times over.
        detection = FALL * CHECK_INTERVAL_MS / 1000
        time.sleep(max(1.0, 4 * detection))
        while len(acknowledged) < killed_at + 10 and writer.is_alive():
            time.sleep(0.01)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert len(failed) <= 1, failed
    assert len(acknowledged) >= killed_at + 10
    # Reads through the balancer, now that only the survivor is up: all answer.
    reads = [
        request("GET", f"{cluster.url}/api/v1/events/{event_id}", write_key)
        for event_id in acknowledged[-20:]
    ]
    assert {r.status for r in reads} == {200}
    # Every acknowledged write is in the database, read directly from the survivor.
    missing_writes = [
        event_id
        for event_id in acknowledged
        if request("GET", f"{survivor.url}/api/v1/events/{event_id}", write_key).status != 200
    ]
    assert missing_writes == []
    assert not postgres.running(victim.pid)


def test_instances_read_from_the_standby_and_a_client_reads_its_own_write() -> None:
    """`make cluster STANDBY=1`: both instances read from a hot standby of the
    database. With replay paused there, a write through one instance is not yet
    seen by the other's plain read (the standby serves it), but is by a read that
    carries the write's Salvo-Position (the primary serves it); once replay resumes,
    the standby serves it too."""
    with two_instances(standby=True) as cluster:
        assert cluster.standby is not None
        key = make_write_key(cluster.database_url)
        first, second = cluster.instances
        for instance in cluster.instances:
            ready = request("GET", f"{instance.url}/readyz").json()
            assert (ready["reads"], ready["replica"]) == ("replica", "ok"), ready
        event_id = "ua-2024-06-01-cluster-standby"
        path = f"/api/v1/events/{event_id}"
        standby = cluster.standby.url("salvo")
        with psycopg.connect(standby, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
            try:
                while conn.execute("SELECT pg_get_wal_replay_pause_state()").fetchone() != (
                    "paused",
                ):
                    time.sleep(0.01)
                written = post_event(first.url, key, event_id)
                assert written.status == 201, written.body
                assert request("GET", f"{second.url}{path}", key).status == 404
                position = written.headers["salvo-position"]
                own = request("GET", f"{second.url}{path}", key, position=position)
                assert own.status == 200, own.body
                assert own.json()["notes"] == event(event_id)["notes"]
            finally:
                conn.execute("SELECT pg_wal_replay_resume()")
        deadline = time.monotonic() + 30
        while request("GET", f"{second.url}{path}", key).status != 200:
            assert time.monotonic() < deadline, "the standby did not replay the write in 30 s"
            time.sleep(0.05)
    assert not postgres.running(cluster.standby.pid)


def test_a_standby_is_made_of_the_throwaway_database_only() -> None:
    """`make cluster STANDBY=1` copies the cluster it starts; beside a database the
    user names it is refused before anything starts (that database's replica is
    given in SALVO_DATABASE_REPLICA)."""
    refused = subprocess.run(
        [sys.executable, "-m", "ops.cluster", "--standby",
         "--database", "postgresql://salvo@127.0.0.1:1/salvo"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "SALVO_DATABASE_REPLICA" in refused.stderr
    with pytest.raises(ValueError, match="SALVO_DATABASE_REPLICA"):
        start_cluster(database="postgresql://salvo@127.0.0.1:1/salvo", standby=True)
