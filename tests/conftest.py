"""Fixtures: a database seeded by the real seed command, and the app on top of it."""

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from seed.__main__ import main as seed_main


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The curated events loaded into a fresh SQLite file (read-only for tests)."""
    path = tmp_path_factory.mktemp("seeded") / "salvo.db"
    assert seed_main(["--db", str(path)]) == 0
    return path


@pytest.fixture(scope="session")
def app(seeded_db: Path) -> Flask:
    # Rate limits are tested on apps of their own (tests/test_limits.py); this one
    # serves hundreds of requests a second from one address.
    return create_app({"DATABASE": str(seeded_db), "TESTING": True, "RATE_LIMITS_ENABLED": False})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def synthetic_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 synthetic events, enough for the query planner's statistics to look like
    a large database's."""
    path = tmp_path_factory.mktemp("synthetic") / "salvo.db"
    argv = ["--db", str(path), "synthetic", "--events", "20000", "--until", "2026-11-26"]
    assert seed_main([*argv, "--workers", "1"]) == 0
    return path
