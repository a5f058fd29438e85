"""Rate limits count every request (issue 18, item 9): a bogus key's, and those to
paths or methods that match no route, against the caller's address."""

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.test_errors import unseeded_database

__all__ = ["unseeded_database"]

BOGUS = {"Authorization": "Bearer salvo_000000000000_" + "A" * 43}


@pytest.fixture
def client(database: str, open_app: Callable[..., Flask]) -> FlaskClient:
    """A client of an app on the seed that lets a caller without a key make 5 requests
    a minute."""
    return open_app(
        database, RATE_LIMITS_ENABLED=True, RATE_LIMIT_ANONYMOUS="5/minute"
    ).test_client()


def test_bogus_keys_meet_the_anonymous_limit(client: FlaskClient) -> None:
    for remaining in range(4, -1, -1):
        refused = client.get("/api/v1/events", headers=BOGUS)
        assert refused.status_code == 401
        assert refused.headers["RateLimit-Limit"] == "5"
        assert refused.headers["RateLimit-Remaining"] == str(remaining)
    over = client.get("/api/v1/events", headers=BOGUS)
    assert over.status_code == 429
    assert over.content_type == "application/problem+json"
    assert "Retry-After" in over.headers
    # The same address without a key has spent the same budget.
    assert client.get("/api/v1/events").status_code == 429


def test_unknown_paths_and_methods_count_too(client: FlaskClient) -> None:
    statuses = []
    for call in (client.get, client.get, client.put, client.put, client.get):
        response = call("/api/v1/no-such-thing" if call == client.get else "/api/v1/events")
        statuses.append(response.status_code)
        assert "RateLimit-Remaining" in response.headers
    assert statuses == [404, 404, 405, 405, 404]
    over = client.get("/api/v1/no-such-thing")
    assert over.status_code == 429 and over.content_type == "application/problem+json"


def test_a_malformed_key_is_refused_without_a_database_lookup(
    unseeded_database: str, open_app: Callable[..., Flask]
) -> None:
    # No Salvo database: a lookup would answer 503, database unavailable.
    client = open_app(unseeded_database, RATE_LIMITS_ENABLED=True).test_client()
    malformed = client.get("/api/v1/events", headers={"Authorization": "Bearer not-a-key"})
    assert malformed.status_code == 401
    assert client.get("/api/v1/events", headers=BOGUS).status_code == 503
