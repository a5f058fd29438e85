"""The server as `make run` starts it: slow clients cost nothing, SIGTERM lets
requests in flight finish, one access-log line per request, compressed responses,
and one honest rate limit. Every test reaching the database runs on both engines;
the default limit runs on SQLite, as the default `make run` serves it."""

import gzip
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import brotli
import pytest
from backports import zstd

from api.__main__ import main as api_main
from tests.server import Server, serving, slow_clients


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("server") / "server.log"
    with serving(database, log, env={"SALVO_RATE_LIMITS": "off"}) as running:
        yield running


def get(
    server: Server, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_fifty_slow_clients_do_not_delay_a_normal_request(server: Server) -> None:
    with slow_clients(server.url, 50):
        time.sleep(1.5)
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            status, _, body = get(server, "/api/v1/events?limit=5")
            timings.append(time.perf_counter() - started)
            assert status == 200 and body
        assert max(timings) < 1.0, timings


@pytest.mark.parametrize(
    ("coding", "decode"),
    [("zstd", zstd.decompress), ("br", brotli.decompress), ("gzip", gzip.decompress)],
)
def test_responses_are_compressed_as_negotiated(
    server: Server, coding: str, decode: object
) -> None:
    _, _, plain = get(server, "/api/v1/events")
    status, headers, body = get(server, "/api/v1/events", {"Accept-Encoding": coding})
    assert status == 200
    assert headers["content-encoding"] == coding
    assert "Accept-Encoding" in headers["vary"]
    assert decode(body) == plain  # type: ignore[operator]
    assert len(body) * 5 < len(plain)


def test_a_browser_offer_gets_zstd(server: Server) -> None:
    _, headers, _ = get(server, "/api/v1/events", {"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert headers["content-encoding"] == "zstd"


def test_each_encoding_has_its_own_etag_and_revalidates(server: Server) -> None:
    etags = {}
    for coding in ("identity", "zstd", "gzip"):
        _, headers, _ = get(server, "/api/v1/events", {"Accept-Encoding": coding})
        etags[coding] = headers["etag"]
        status, again, body = get(
            server, "/api/v1/events", {"Accept-Encoding": coding, "If-None-Match": etags[coding]}
        )
        assert (status, body) == (304, b"")
        assert again["etag"] == etags[coding]
    assert len(set(etags.values())) == 3
    # A validator of the gzip bytes does not validate the zstd ones.
    status, _, _ = get(
        server, "/api/v1/events", {"Accept-Encoding": "zstd", "If-None-Match": etags["gzip"]}
    )
    assert status == 200


def test_small_bodies_are_left_alone(server: Server) -> None:
    status, headers, body = get(server, "/healthz", {"Accept-Encoding": "zstd, gzip"})
    assert status == 200
    assert len(body) < 1024
    assert "content-encoding" not in headers


@pytest.mark.parametrize("chosen", ["csv", "ndjson"])
def test_exports_are_compressed_as_they_stream(
    synthetic_database: str, tmp_path: Path, chosen: str
) -> None:
    with serving(synthetic_database, tmp_path / "log", env={"SALVO_RATE_LIMITS": "off"}) as running:
        _, _, plain = get(running, f"/api/v1/events?format={chosen}")
        status, headers, body = get(
            running, f"/api/v1/events?format={chosen}", {"Accept-Encoding": "gzip"}
        )
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert headers["transfer-encoding"] == "chunked"
    assert gzip.decompress(body) == plain
    assert plain.count(b"\n") >= 20_000


def test_sigterm_lets_a_request_in_flight_finish(synthetic_database: str, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with serving(synthetic_database, log, env={"SALVO_RATE_LIMITS": "off"}) as running:
        host, port = running.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", "/api/v1/events?format=ndjson")
        response = conn.getresponse()
        first = response.read(1000)
        assert response.status == 200
        stopped = threading.Thread(target=running.stop)
        stopped.start()
        time.sleep(0.5)
        rest = response.read()
        stopped.join()
        conn.close()
        assert running.process.returncode == 0
        with pytest.raises(OSError):
            socket.create_connection((host, int(port)), timeout=2).close()
    lines = (first + rest).splitlines()
    assert len(lines) == 20_000


def test_the_access_log_has_one_line_per_request(database: str, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with serving(database, log, env={"SALVO_RATE_LIMITS": "off"}) as running:
        for path in ("/api/v1/events?limit=1", "/api/v1/nowhere", "/api/v1/stats"):
            get(running, path)
        requests = running.access_log('"GET /api/v1/', 3)
    assert len(requests) == 3
    assert '"GET /api/v1/events?limit=1 HTTP/1.1" 200' in requests[0]
    # Without a query string, no `?`: the line shows the request as it was sent.
    assert '"GET /api/v1/nowhere HTTP/1.1" 404' in requests[1]


def test_the_default_limit_lets_exactly_600_through(seeded_db: Path, tmp_path: Path) -> None:
    # The default `make run`: limits on, Open-Meteo's 600 a minute (5,000 an hour,
    # 10,000 a day) per address, counted in memory.
    with serving(seeded_db, tmp_path / "log") as running:
        host, port = running.url.removeprefix("http://").split(":")
        statuses, limits = [], set()
        for _ in range(601):
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            conn.request("GET", "/api/v1/event-types")
            response = conn.getresponse()
            statuses.append(response.status)
            limits.add(response.getheader("RateLimit-Limit"))
            conn.close()
    # A moving window: no boundary inside the loop can refill the budget.
    assert statuses == [200] * 600 + [429]
    # The minute's window is the one with the fewest requests left throughout.
    assert limits == {"600"}


def test_serve_refuses_several_workers_counting_limits_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SALVO_RATE_LIMITS", raising=False)
    monkeypatch.delenv("SALVO_RATE_LIMIT_STORAGE", raising=False)
    assert api_main(["serve", "--workers", "2"]) == 2
    assert "SALVO_RATE_LIMIT_STORAGE=redis://" in capsys.readouterr().err
