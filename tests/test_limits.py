"""Rate limits: per key and per address, 429 problems with Retry-After, RateLimit-*
headers, and counters shared across processes through a real Redis server. A key's
own counter runs on both engines (the key is looked up in the database); the rest is
decided before any query, and runs on SQLite."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from api import create_app
from ops.redis import missing as missing_redis
from ops.redis import start_redis
from tests.engines import write_key


def limited_app(db: str | Path, **config: object) -> Flask:
    return create_app(
        {
            "DATABASE": str(db),
            "RATE_LIMIT_ANONYMOUS": "3/minute",
            "RATE_LIMIT_KEY": "5/minute",
            **config,
        }
    )


@pytest.fixture
def keyed_db(fresh_database: str) -> tuple[str, str, str]:
    return (
        fresh_database,
        write_key(fresh_database, "A", "read"),
        write_key(fresh_database, "B", "read"),
    )


def test_the_call_past_the_limit_is_a_429_problem_with_retry_after(seeded_db: Path) -> None:
    client = limited_app(seeded_db).test_client()
    for remaining in (2, 1, 0):
        response = client.get("/api/v1/event-types")
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "3"
        assert response.headers["RateLimit-Remaining"] == str(remaining)
        assert int(response.headers["RateLimit-Reset"]) > time.time()
    refused = client.get("/api/v1/events")
    assert refused.status_code == 429
    assert refused.content_type == "application/problem+json"
    assert refused.get_json()["status"] == 429
    # The window, in whole seconds rounded up from when the oldest counted call expires.
    assert 0 < int(refused.headers["Retry-After"]) <= 61
    assert refused.headers["RateLimit-Remaining"] == "0"


def test_a_key_has_its_own_counter_and_a_higher_limit(keyed_db: tuple[str, str, str]) -> None:
    path, key_a, key_b = keyed_db
    client = limited_app(path).test_client()
    for _ in range(3):
        assert client.get("/api/v1/event-types").status_code == 200
    assert client.get("/api/v1/event-types").status_code == 429
    with_a = {"Authorization": f"Bearer {key_a}"}
    statuses = [client.get("/api/v1/event-types", headers=with_a).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    with_b = {"Authorization": f"Bearer {key_b}"}
    assert client.get("/api/v1/event-types", headers=with_b).status_code == 200


def test_health_checks_are_not_limited(seeded_db: Path) -> None:
    client = limited_app(seeded_db).test_client()
    assert {client.get("/healthz").status_code for _ in range(10)} == {200}


def test_limits_can_be_switched_off(seeded_db: Path) -> None:
    client = limited_app(seeded_db, RATE_LIMITS_ENABLED=False).test_client()
    assert {client.get("/api/v1/event-types").status_code for _ in range(10)} == {200}


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on 127.0.0.1 for the length of the test, stopped by PID
    (ops/redis.py: the same starter as `make cluster`'s)."""
    reason = missing_redis()
    if reason is not None:
        pytest.skip(f"{reason}; CI installs it")
    server = start_redis(tmp_path)
    try:
        yield server.url
    finally:
        server.stop()


def test_counters_in_redis_hold_across_processes(seeded_db: Path, redis_url: str) -> None:
    # Two apps stand for two gunicorn workers (or two instances) behind one address.
    first = limited_app(seeded_db, RATE_LIMIT_STORAGE=redis_url).test_client()
    second = limited_app(seeded_db, RATE_LIMIT_STORAGE=redis_url).test_client()
    assert first.get("/api/v1/event-types").status_code == 200
    assert second.get("/api/v1/event-types").status_code == 200
    assert first.get("/api/v1/event-types").headers["RateLimit-Remaining"] == "0"
    refused = second.get("/api/v1/event-types")
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
