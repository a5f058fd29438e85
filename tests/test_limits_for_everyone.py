"""Rate limits count every request (issue 18, item 9): a bogus key's, and those to
paths or methods that match no route, against the caller's address."""

from pathlib import Path

from flask import Flask

from api import create_app

BOGUS = {"Authorization": "Bearer salvo_000000000000_" + "A" * 43}


def small_limits(db: Path) -> Flask:
    return create_app({"DATABASE": str(db), "RATE_LIMIT_ANONYMOUS": "5/minute"})


def test_bogus_keys_meet_the_anonymous_limit(seeded_db: Path) -> None:
    client = small_limits(seeded_db).test_client()
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


def test_unknown_paths_and_methods_count_too(seeded_db: Path) -> None:
    client = small_limits(seeded_db).test_client()
    statuses = []
    for call in (client.get, client.get, client.put, client.put, client.get):
        response = call("/api/v1/no-such-thing" if call == client.get else "/api/v1/events")
        statuses.append(response.status_code)
        assert "RateLimit-Remaining" in response.headers
    assert statuses == [404, 404, 405, 405, 404]
    over = client.get("/api/v1/no-such-thing")
    assert over.status_code == 429 and over.content_type == "application/problem+json"


def test_a_malformed_key_is_refused_without_a_database_lookup(tmp_path: Path) -> None:
    # No database at all: a lookup would answer 503, database unavailable.
    client = create_app({"DATABASE": str(tmp_path / "absent.db")}).test_client()
    malformed = client.get("/api/v1/events", headers={"Authorization": "Bearer not-a-key"})
    assert malformed.status_code == 401
    assert client.get("/api/v1/events", headers=BOGUS).status_code == 503
