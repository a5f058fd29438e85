"""What slow, stalled or hostile clients cost the server as `make run` starts it (the
edge, api/edge.py): four slow readers, slow bodies, writers queued behind another
process's lock, a killed worker, secrets in query strings. What reaches the database
runs on both engines (`database`, `fresh_database`); what the edge decides alone
(the access log, URL forms) runs on SQLite, `make run`'s default."""

import asyncio
import concurrent.futures
import contextlib
import http.client
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask

from api.edge import Busy, Edge, Message, Pool, Settings, redacted
from api.openapi import contract_api
from tests.engines import holding_the_write_lock, write_key
from tests.server import Server, serving
from tests.test_faults import Client

PROBLEM = "application/problem+json"
NO_LIMITS = {"SALVO_RATE_LIMITS": "off"}


def _connection(server: Server, timeout: float = 30) -> http.client.HTTPConnection:
    host, port = server.url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def _answer_time(server: Server, path: str) -> float:
    """Seconds a GET of path took to answer 200 in full (a 1 s timeout)."""
    conn = _connection(server, timeout=1)
    started = time.monotonic()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        assert response.status == 200, path
    finally:
        conn.close()
    return time.monotonic() - started


@contextlib.contextmanager
def _slow_readers(server: Server, count: int) -> Iterator[list[http.client.HTTPResponse]]:
    """`count` clients that ask for the NDJSON export uncompressed and read 1 KB
    every 2 s, for the length of the block."""
    connections = [_connection(server) for _ in range(count)]
    responses = []
    for conn in connections:
        conn.request("GET", "/api/v1/events?format=ndjson", headers={"Accept-Encoding": "identity"})
        response = conn.getresponse()
        assert response.status == 200
        response.read(1024)
        responses.append(response)
    stop = threading.Event()

    def dribble() -> None:
        while not stop.wait(2):
            for response in responses:
                with contextlib.suppress(OSError, http.client.HTTPException):
                    response.read(1024)

    reader = threading.Thread(target=dribble)
    reader.start()
    try:
        yield responses
    finally:
        stop.set()
        reader.join()
        for conn in connections:
            conn.close()


def test_four_slow_readers_leave_health_and_pages_answering(
    synthetic_database: str, tmp_path: Path
) -> None:
    # 20,000 events: an NDJSON export of about 20 MB, far more than the socket buffers
    # hold, so each reader's stream stalls on it. Four per address are let through
    # here, so that all four stream; before the edge, they held all four threads.
    env = {**NO_LIMITS, "SALVO_EXPORTS_PER_ADDRESS": "4"}
    with (
        serving(synthetic_database, tmp_path / "log", env=env) as server,
        _slow_readers(server, 4),
    ):
        time.sleep(2)  # the streams fill the buffers and stall
        waits = []
        for _ in range(5):
            waits.append(_answer_time(server, "/healthz"))
            waits.append(_answer_time(server, "/api/v1/events?limit=20&event_type=drone_strike"))
            time.sleep(0.5)
    assert max(waits) < 1, waits


def test_a_stalled_reader_is_cut_at_the_send_deadline(
    synthetic_database: str, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    env = {**NO_LIMITS, "SALVO_SEND_DEADLINE_S": "1"}
    with serving(synthetic_database, log, env=env) as server:
        conn = _connection(server)
        conn.request("GET", "/api/v1/events?format=ndjson", headers={"Accept-Encoding": "identity"})
        response = conn.getresponse()
        response.read(1024)
        time.sleep(4)  # reads nothing: the server's chunk waits past its deadline
        # What was sent before the cut arrives, then the body ends without its last
        # chunk: the client knows it is incomplete.
        with pytest.raises(http.client.IncompleteRead):
            response.read()
        conn.close()
        assert server.access_log("cut a response", 1)
        # The cut stream gave its export slot back: this address may run two again.
        streams = [_connection(server) for _ in range(2)]
        for stream in streams:
            stream.request("GET", "/api/v1/events?format=ndjson")
            assert stream.getresponse().status == 200
            stream.close()


def _slow_body(server: Server, key: str, deadline: float) -> tuple[int, dict[str, str], bytes]:
    """A POST with a write key that announces 1,000 bytes and sends one every 0.2 s;
    the answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=deadline + 10) as sock:
        sock.sendall(
            b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + key.encode() + b"\r\nContent-Length: 1000\r\n\r\n{"
        )
        answered = threading.Event()

        def dribble() -> None:
            while not answered.wait(0.2):
                try:
                    sock.sendall(b" ")
                except OSError:
                    return

        sender = threading.Thread(target=dribble)
        sender.start()
        try:
            response = http.client.HTTPResponse(sock)
            response.begin()
            answer = response.status, {k.lower(): v for k, v in response.getheaders()}
            body = response.read()
        finally:
            answered.set()
            sender.join()
    return *answer, body


def test_a_body_slower_than_its_deadline_is_408(fresh_database: str, tmp_path: Path) -> None:
    key = write_key(fresh_database)
    env = {**NO_LIMITS, "SALVO_BODY_DEADLINE_S": "1"}
    with serving(fresh_database, tmp_path / "log", env=env) as server:
        started = time.monotonic()
        status, headers, body = _slow_body(server, key, 1)
        waited = time.monotonic() - started
    assert status == 408
    assert headers["content-type"] == PROBLEM
    assert orjson.loads(body)["type"] == "/problems/slow-request"
    assert waited < 3, waited
    # What every answer of the app carries: a browser app on another origin reads it.
    assert len(headers["x-request-id"]) == 32
    assert headers["access-control-allow-origin"] == "*"


def test_eight_slow_bodies_leave_health_answering(fresh_database: str, tmp_path: Path) -> None:
    key = write_key(fresh_database)
    with (
        serving(fresh_database, tmp_path / "log", env=NO_LIMITS) as server,
        concurrent.futures.ThreadPoolExecutor(8) as pool,
    ):
        bodies = [pool.submit(_slow_body, server, key, 10) for _ in range(8)]
        time.sleep(1)
        waits = [_answer_time(server, "/healthz") for _ in range(5)]
        waits.append(_answer_time(server, "/api/v1/events?limit=5"))
        statuses = [body.result()[0] for body in bodies]
    assert max(waits) < 1, waits
    assert statuses == [408] * 8


def test_writers_queue_on_their_own_thread_while_reads_go_on(
    fresh_database: str, tmp_path: Path
) -> None:
    key = write_key(fresh_database)
    with serving(fresh_database, tmp_path / "log", env=NO_LIMITS) as server:
        client = Client(server, key)
        with (
            holding_the_write_lock(fresh_database),
            concurrent.futures.ThreadPoolExecutor(8) as pool,
        ):
            writes = [pool.submit(client.create, f"ua-2024-06-01-queued-{n}") for n in range(8)]
            time.sleep(0.3)
            # While eight writers wait on a lock held by another process, reads
            # still have their threads.
            waits = [_answer_time(server, "/api/v1/events?limit=20") for _ in range(10)]
            answers = [write.result() for write in writes]
        after = client.create("ua-2024-06-01-after-the-lock")
    assert max(waits) < 1, waits
    for status, headers, body in answers:
        assert status == 503, body
        assert headers["content-type"] == PROBLEM
        assert body["type"] in ("/problems/database-busy", "/problems/server-busy")
        assert "retry-after" in headers
    assert after[0] == 201


def test_a_killed_worker_is_replaced(database: str, tmp_path: Path) -> None:
    with serving(database, tmp_path / "log", env=NO_LIMITS) as server:
        (worker,) = server.workers()
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError, http.client.HTTPException, AssertionError):
                if _answer_time(server, "/api/v1/events?limit=1") < 1:
                    break
            assert time.monotonic() < deadline, "no worker answered after the kill"
            time.sleep(0.2)
        assert server.process.poll() is None
        assert server.workers() != [worker]


def test_secrets_in_query_strings_are_not_logged(seeded_db: Path, tmp_path: Path) -> None:
    with serving(seeded_db, tmp_path / "log", env=NO_LIMITS) as server:
        secret = "salvo_0123456789ab_" + "s" * 43
        conn = _connection(server)
        conn.request("GET", f"/api/v1/events?limit=1&api_key={secret}&token=t0ps3cret")
        assert conn.getresponse().status == 400
        conn.close()
        (line,) = server.access_log('"GET /api/v1/events?limit=1', 1)
    assert secret not in line and "t0ps3cret" not in line
    assert "api_key=[redacted]&token=[redacted]" in line


@pytest.mark.parametrize(
    ("query", "logged"),
    [
        ("key=abc", "key=[redacted]"),
        ("limit=5&API_KEY=abc&q=x", "limit=5&API_KEY=[redacted]&q=x"),
        ("monkey=1&access_token=a%20b", "monkey=1&access_token=[redacted]"),
        ("", ""),
    ],
)
def test_redacted_hides_every_secret_parameter(query: str, logged: str) -> None:
    assert redacted(query) == logged


def test_an_address_runs_two_exports_at_once(app: Flask) -> None:
    client = app.test_client()
    running = [client.get("/api/v1/events?format=ndjson", buffered=False) for _ in range(2)]
    assert [response.status_code for response in running] == [200, 200]
    refused = client.get("/api/v1/events?format=csv")
    assert refused.status_code == 429
    assert refused.content_type == PROBLEM
    assert refused.json is not None and refused.json["type"] == "/problems/too-many-exports"
    assert refused.headers["Retry-After"] == "10"
    running.pop().close()  # the stream ends: its slot is free again
    again = client.get("/api/v1/events?format=csv", buffered=False)
    assert again.status_code == 200
    for response in (*running, again):
        response.close()
    assert client.get("/api/v1/events?format=ndjson").status_code == 200


@pytest.mark.parametrize(("path", "kind"), [("openapi.json", "json"), ("openapi.yaml", "yaml")])
def test_the_contract_is_rendered_once_per_process(app: Flask, path: str, kind: str) -> None:
    client = app.test_client()
    first = client.get(f"/api/v1/{path}")
    rendered = contract_api_of(app)._rendered[kind]
    second = client.get(f"/api/v1/{path}")
    assert first.status_code == second.status_code == 200
    assert first.data == second.data == rendered
    # The same bytes object: served from the first rendering, not rendered again.
    assert contract_api_of(app)._rendered[kind] is rendered
    assert first.headers["ETag"] == second.headers["ETag"]
    assert (
        client.get(f"/api/v1/{path}", headers={"If-None-Match": first.headers["ETag"]}).status_code
        == 304
    )


def contract_api_of(app: Flask) -> Any:
    with app.app_context():
        return contract_api()


def test_doubled_slashes_are_never_an_html_redirect(seeded_db: Path, tmp_path: Path) -> None:
    answers = {}
    with serving(seeded_db, tmp_path / "log", env=NO_LIMITS) as server:
        for path in ("//", "//api/v1/events", "/api/v1//events", "/api/v1/events/"):
            conn = _connection(server)
            conn.request("GET", path, headers={"Accept": "application/json"})
            response = conn.getresponse()
            answers[path] = response.status, response.getheader("Content-Type"), response.read()
            assert response.getheader("Location") is None, path
            conn.close()
    # werkzeug reads leading slashes as one: these are the landing page and the list.
    assert answers["//"][:2] == (200, "application/json")
    assert answers["//api/v1/events"][:2] == (200, "application/json")
    # Inside a path, a doubled or trailing slash names nothing.
    for path in ("/api/v1//events", "/api/v1/events/"):
        status, content_type, body = answers[path]
        assert (status, content_type) == (404, PROBLEM), path
        assert orjson.loads(body)["instance"] == path


def test_a_request_after_the_workers_shutdown_is_503_not_500(app: Flask) -> None:
    # Granian can hand a worker a request after its lifespan shutdown has ended the
    # edge's thread pools (seen when a server stopped under load): a 503 with
    # Retry-After, which a balancer or client retries elsewhere, not a traceback.
    edge = Edge(app, Settings())
    sent: list[Message] = []

    async def run() -> None:
        async def send(message: Message) -> None:
            sent.append(message)

        http_scope = {
            "type": "http", "method": "GET", "path": "/healthz", "raw_path": b"/healthz",
            "query_string": b"", "headers": [], "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000), "http_version": "1.1", "scheme": "http",
        }  # fmt: skip

        async def no_body() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        await edge(http_scope, no_body, send)  # the read pool, made and used
        lifespan = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

        async def receive() -> Message:
            return next(lifespan)

        await edge({"type": "lifespan"}, receive, send)
        sent.clear()
        await edge(http_scope, no_body, send)

    asyncio.run(run())
    start = sent[0]
    headers = dict(start["headers"])
    assert start["status"] == 503
    assert headers[b"retry-after"] == b"1"
    assert orjson.loads(sent[1]["body"])["status"] == 503


def test_a_call_queued_past_the_deadline_is_busy_and_never_runs() -> None:
    # The queue deadline bounds the wait for a thread, never the call: a call that
    # has started runs to its end; one still queued at the deadline is taken out of
    # the queue (Busy: the edge answers 503) and does not run when the thread frees.
    ran: list[str] = []
    release = threading.Event()

    def hold() -> str:
        release.wait(5)
        ran.append("held")
        return "held"

    async def scenario() -> float:
        pool = Pool("read", 1)
        try:
            held = asyncio.ensure_future(pool.run(0.1, hold))
            await asyncio.sleep(0.2)  # past its own deadline, and running: not cut
            began = time.monotonic()
            with pytest.raises(Busy):
                await pool.run(0.3, ran.append, "late")
            waited = time.monotonic() - began
            queued = asyncio.ensure_future(pool.run(5, ran.append, "queued"))
            await asyncio.sleep(0.05)
            release.set()
            assert await held == "held"
            await queued
            # Nothing is left counted: with the thread free a call starts at once.
            await pool.run(0.01, time.sleep, 0.05)
            return waited
        finally:
            pool.executor.shutdown(wait=True)

    waited = asyncio.run(scenario())
    assert 0.3 <= waited < 2
    assert ran == ["held", "queued"]


def test_a_queued_call_whose_caller_is_cancelled_never_runs() -> None:
    ran: list[str] = []
    release = threading.Event()

    async def scenario() -> None:
        pool = Pool("read", 1)
        try:
            held = asyncio.ensure_future(pool.run(5, release.wait, 5))
            await asyncio.sleep(0.05)
            queued = asyncio.ensure_future(pool.run(5, ran.append, "cancelled"))
            await asyncio.sleep(0.05)
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            release.set()
            await held
            await pool.run(5, ran.append, "after")
        finally:
            pool.executor.shutdown(wait=True)

    asyncio.run(scenario())
    assert ran == ["after"]
