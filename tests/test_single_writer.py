"""The single writer's contract (api/store/__init__.py; docs/design.md, "The single
writer"): one writer at a time, each change numbered after the highest taken, values
unique and committed in seq order, so that a mirror keeping the highest seq it
applied never misses a change. Checked on both engines with writers in several
processes and threads on one database while a mirror follows /changes, and against
the unique indexes themselves."""

import datetime
import itertools
import multiprocessing
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api import create_app
from api.store import StoreError, command_author, open_store
from api.store.postgresql import layout as postgresql_layout
from api.store.sqlite import writes as sqlite_writes
from schemas.event import EventSchema
from tests.engines import DATABASE_ERRORS, execute, rows

KHARKIV = "ua-2024-05-30-kharkiv-missile-strike"
PROCESSES, THREADS, ROUNDS = 2, 3, 8
# Each round: a POST of a new event and a PATCH of it; every other round a DELETE too.
CHANGES_PER_THREAD = ROUNDS * 2 + ROUNDS // 2


def _app(path: str) -> FlaskClient:
    return create_app({"DATABASE": path, "RATE_LIMITS_ENABLED": False}).test_client()


def retried(send: Callable[[], TestResponse], attempts: int = 20) -> TestResponse:
    """A write sent again while the database is busy with another writer (503 with
    Retry-After, after its wait for the lock), as a client retries it."""
    for _ in range(attempts):
        response: TestResponse = send()
        if response.status_code != 503:
            return response
        time.sleep(0.05)
    raise AssertionError(f"still busy: {response.get_json()}")


def write_rounds(
    api: FlaskClient,
    key: str,
    template: dict[str, Any],
    name: str,
    rounds: int = ROUNDS,
    attempts: int = 20,
) -> None:
    """`rounds` times: POST an event, PATCH it, and DELETE every other one, each
    retried while the database is busy; 2 * rounds + rounds // 2 changes."""
    headers = {"Authorization": f"Bearer {key}"}
    for round_ in range(rounds):
        event_id = f"ua-2024-06-01-{name}-{round_}"
        event = {**template, "id": event_id, "notes": f"Written by {name}."}

        def post(event: dict[str, Any] = event) -> TestResponse:
            return api.post("/api/v1/events", json={"events": [event]}, headers=headers)

        created = retried(post, attempts)
        assert created.status_code == 201, created.get_json()

        def patch(event_id: str = event_id) -> TestResponse:
            etag = api.get(f"/api/v1/events/{event_id}").headers["ETag"]
            return api.patch(
                f"/api/v1/events/{event_id}",
                data=orjson.dumps({"notes": f"Corrected by {name}."}),
                headers={
                    **headers,
                    "If-Match": etag,
                    "Content-Type": "application/merge-patch+json",
                },
            )

        assert retried(patch, attempts).status_code == 200
        if round_ % 2:

            def delete(event_id: str = event_id) -> TestResponse:
                etag = api.get(f"/api/v1/events/{event_id}").headers["ETag"]
                return api.delete(
                    f"/api/v1/events/{event_id}", headers={**headers, "If-Match": etag}
                )

            assert retried(delete, attempts).status_code == 204


def _writer_process(path: str, key: str, template: dict[str, Any], process: int) -> None:
    """THREADS writers in this process, each with its own connections to the file."""
    failures: list[BaseException] = []

    def run(thread: int) -> None:
        try:
            write_rounds(_app(path), key, template, f"p{process}-t{thread}")
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=(thread,)) for thread in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


class Mirror:
    """A partner's copy kept by /changes: the events by id, and the token to go on from."""

    def __init__(self, api: FlaskClient) -> None:
        self.api = api
        self.events: dict[str, Any] = {}
        self.since: str | None = None
        self.seqs: list[int] = []

    def sync(self) -> None:
        while True:
            query = "" if self.since is None else f"&since={self.since}"
            page = self.api.get(f"/api/v1/changes?limit=7{query}").get_json()
            for change in page["data"]:
                self.seqs.append(change["seq"])
                if change["change"] == "deleted":
                    self.events.pop(change["event_id"], None)
                else:
                    self.events[change["event_id"]] = change["event"]
            self.since = page["meta"]["since"]
            if page["links"]["next"] is None:
                return


def feed_changes(api: FlaskClient, after: int) -> list[dict[str, Any]]:
    """The changes after seq `after` that are still in the feed (not superseded)."""
    changes: list[dict[str, Any]] = []
    query = ""
    while True:
        page = api.get(f"/api/v1/changes?limit=100{query}").get_json()
        changes += [change for change in page["data"] if change["seq"] > after]
        if page["links"]["next"] is None:
            return changes
        query = f"&since={page['meta']['since']}"


def _highest_seq(database: str) -> int:
    """The highest seq taken, as the store says where the feed stands."""
    store = open_store(database)
    try:
        return store.feed_position().highest_seq
    finally:
        store.close()


@pytest.fixture
def writable(fresh_database: str) -> tuple[str, str]:
    """A writable copy of the seeded database, and a write key to it."""
    store = open_store(fresh_database)
    try:
        return fresh_database, store.create_key("Newsroom", "write")
    finally:
        store.close()


def test_concurrent_writers_take_unique_seqs_committed_in_order(
    writable: tuple[str, str], open_app: Callable[..., Flask]
) -> None:
    path, key = writable
    api = open_app(path).test_client()
    template = api.get(f"/api/v1/events/{KHARKIV}").get_json()
    for output_only in ("acled", "updated_at"):
        template.pop(output_only)
    first = _highest_seq(path)
    mirror = Mirror(api)
    mirror.sync()

    spawn = multiprocessing.get_context("spawn")
    processes = [
        spawn.Process(target=_writer_process, args=(path, key, template, number))
        for number in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    # The mirror follows the feed while they write, keeping the token of each page.
    while any(process.is_alive() for process in processes):
        mirror.sync()
        time.sleep(0.01)
    for process in processes:
        process.join()
        assert process.exitcode == 0
    during = len(mirror.seqs)
    mirror.sync()

    seqs = [seq for (seq,) in rows(
        path, "SELECT seq FROM events UNION ALL SELECT seq FROM event_tombstones")]  # fmt: skip
    stored = {
        event_id: orjson.loads(body)
        for event_id, body in rows(
            path, "SELECT e.id, d.body FROM events e JOIN event_documents d USING (row_id)"
        )
    }
    # Unique, and with no number lost: every acknowledged change took one, in turn.
    assert len(seqs) == len(set(seqs))
    changes = PROCESSES * THREADS * CHANGES_PER_THREAD
    assert _highest_seq(path) == first + changes
    # The feed from the start lists every stored change once, in order.
    feed = Mirror(api)
    feed.sync()
    assert feed.seqs == sorted(seqs)
    # The mirror that followed it during the writes missed nothing and repeated nothing.
    assert mirror.seqs == sorted(set(mirror.seqs))
    assert mirror.events == stored
    # It did follow them: changes reached it while the writers still wrote.
    assert during > 0
    # And the writers did write at once: the changes of every process and thread
    # interleave in seq order (each event's id names its writer).
    writers = [change["event_id"].split("-")[4:6] for change in feed_changes(api, first)]
    switches = sum(1 for a, b in itertools.pairwise(writers) if a != b)
    assert len({tuple(w) for w in writers}) == PROCESSES * THREADS
    assert switches > PROCESSES * THREADS, writers
    assert len(stored) == 17 + PROCESSES * THREADS * (ROUNDS - ROUNDS // 2)


def test_the_unique_indexes_refuse_a_repeated_seq(writable: tuple[str, str]) -> None:
    database, _ = writable
    # SQLite names the column (events.seq), PostgreSQL the index (events_seq).
    with pytest.raises(DATABASE_ERRORS, match=r"\bevents[._]seq"):
        execute(
            database,
            "UPDATE events SET seq = (SELECT max(seq) FROM events) WHERE id = ?",
            [KHARKIV],
        )
    stamp = datetime.datetime.now(datetime.UTC).isoformat()
    tombstone = "INSERT INTO event_tombstones VALUES (?, 1000, ?, '{}')"
    execute(database, tombstone, ["gone-1", stamp])
    with pytest.raises(DATABASE_ERRORS, match=r"event_tombstones[._]seq"):
        execute(database, tombstone, ["gone-2", stamp])


def test_a_writer_that_breaks_the_contract_is_stopped_by_the_index(
    writable: tuple[str, str],
    engine: str,
    open_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A writer taking a seq another change holds (as a second writer that did not
    wait for the first would) fails whole: its write is rolled back."""
    path, _ = writable
    api = open_app(path).test_client()
    event = api.get(f"/api/v1/events/{KHARKIV}").get_json()
    for output_only in ("acled", "updated_at"):
        event.pop(output_only)
    event = {**event, "id": "ua-2024-06-01-second-writer", "date": "2024-06-01"}
    taken = _highest_seq(path)
    if engine == "sqlite":
        monkeypatch.setattr(sqlite_writes, "next_seq", lambda conn: taken)
    else:
        # The counter read as it was before the last change took its number.
        monkeypatch.setattr(postgresql_layout, "lock_changes", lambda conn: taken - 1)
    store = open_store(path)
    now = datetime.datetime.now(datetime.UTC)
    try:
        with pytest.raises(StoreError) as refused, store.writer() as writer:
            writer.create_events([EventSchema().load(event)], command_author(), now, None)
    finally:
        store.close()
    assert re.search(r"\bevents[._]seq", str(refused.value.__cause__))
    assert api.get("/api/v1/events/ua-2024-06-01-second-writer").status_code == 404
    assert _highest_seq(path) == taken
