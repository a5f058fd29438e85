"""Fixtures: a database seeded by the real seed command, and the app on top of it, on
each engine.

`engine` is "sqlite" or "postgresql", and every test that reaches a database through
it (`database`, `fresh_database`, `open_app`, `app`, `client`) runs once on each: one
contract, two engines. The PostgreSQL runs use the session's throwaway server
(tests/postgres.py); without PostgreSQL installed they are skipped with a reason
naming it, and the run ends by saying how many were. A test of what only one engine
has (SQLite's files, WAL, FTS5 plans, the CSV import's bulk path) asks for that
engine's own fixture (`seeded_db`, a SQLite file; `fresh_postgres_url`) and its
module's docstring names the feature.
"""

from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from shutil import copyfile
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.db import close_store
from ops.postgres import PostgresServer, missing
from seed.__main__ import main as seed_main
from tests.postgres import (
    fresh_postgres_url,
    new_database,
    postgres_server,
    postgres_url,
    scratch_database,
)

__all__ = ["fresh_postgres_url", "postgres_server", "postgres_url"]

ENGINES = ("sqlite", "postgresql")
_copies = count(1)

# An app for tests: rate limits are tested on apps of their own (tests/test_limits.py);
# the others send hundreds of requests a second from one address.
TEST_CONFIG = {"TESTING": True, "RATE_LIMITS_ENABLED": False}


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The curated events loaded into a fresh SQLite file (read-only for tests)."""
    path = tmp_path_factory.mktemp("seeded") / "salvo.db"
    assert seed_main(["--db", str(path)]) == 0
    return path


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The engine a test runs on: a test that uses it runs on both."""
    name: str = request.param
    if name == "postgresql" and (reason := missing()) is not None:
        pytest.skip(f"{reason}; CI installs it")
    return name


@pytest.fixture(scope="session")
def seeded_postgres_template(postgres_server: PostgresServer) -> str:
    """The name of a PostgreSQL database holding the curated events that no one
    connects to after the seed, so that CREATE DATABASE ... TEMPLATE can copy it."""
    name = "salvo_seeded_template"
    assert seed_main(["--db", new_database(postgres_server, name)]) == 0
    return name


@pytest.fixture(scope="session")
def database(engine: str, request: pytest.FixtureRequest) -> str:
    """The curated events on the test's engine (read-only for tests): a SQLite path or
    a postgresql:// URL, what $SALVO_DATABASE would hold."""
    if engine == "sqlite":
        return str(request.getfixturevalue("seeded_db"))
    template = request.getfixturevalue("seeded_postgres_template")
    return new_database(request.getfixturevalue("postgres_server"), "salvo_seeded", template)


@pytest.fixture
def fresh_database(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A copy of the curated events on the test's engine, for one test to write to."""
    if engine == "sqlite":
        path = tmp_path / "salvo.db"
        copyfile(request.getfixturevalue("seeded_db"), path)
        yield str(path)
        return
    template = request.getfixturevalue("seeded_postgres_template")
    with scratch_database(request.getfixturevalue("postgres_server"), template) as url:
        yield url


@pytest.fixture(scope="session")
def seeded_copy(
    engine: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], str]:
    """`seeded_copy()`: a new copy of the curated events on the engine, for a module's
    fixture to write to (`fresh_database` is one test's). Copies last the session."""
    if engine == "sqlite":
        seeded: Path = request.getfixturevalue("seeded_db")

        def copy_file() -> str:
            path = tmp_path_factory.mktemp("copy") / "salvo.db"
            copyfile(seeded, path)
            return str(path)

        return copy_file
    template = request.getfixturevalue("seeded_postgres_template")
    server = request.getfixturevalue("postgres_server")
    return lambda: new_database(server, f"salvo_copy_{next(_copies)}", template)


@pytest.fixture
def open_app() -> Iterator[Callable[..., Flask]]:
    """`open_app(database, **config)`: a test app on `database`, its store closed when
    the test ends (a PostgreSQL store holds a pool of connections and its threads)."""
    opened: list[Flask] = []

    def open_on(database: str, **config: Any) -> Flask:
        app = create_app({"DATABASE": database, **TEST_CONFIG, **config})
        opened.append(app)
        return app

    yield open_on
    for app in opened:
        close_store(app)


@pytest.fixture(scope="session")
def app(database: str) -> Iterator[Flask]:
    app = create_app({"DATABASE": database, **TEST_CONFIG})
    yield app
    close_store(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


SYNTHETIC = ["synthetic", "--events", "20000", "--until", "2026-11-26"]


@pytest.fixture(scope="session")
def synthetic_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 synthetic events in a SQLite file, enough for the query planner's
    statistics to look like a large database's."""
    path = tmp_path_factory.mktemp("synthetic") / "salvo.db"
    assert seed_main(["--db", str(path), *SYNTHETIC, "--workers", "1"]) == 0
    return path


@pytest.fixture(scope="session")
def synthetic_database(engine: str, request: pytest.FixtureRequest) -> str:
    """The same 20,000 synthetic events on the test's engine (read-only for tests)."""
    if engine == "sqlite":
        return str(request.getfixturevalue("synthetic_db"))
    url = new_database(request.getfixturevalue("postgres_server"), "salvo_synthetic")
    assert seed_main(["--db", url, *SYNTHETIC]) == 0
    return url


def pytest_unconfigure(config: pytest.Config) -> None:
    """End the run, after pytest's own summary, by saying when PostgreSQL was
    skipped and why: `make test` without the server installed runs SQLite alone."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = [
        str(report.longrepr[-1])
        for report in reporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and "PostgreSQL" in str(report.longrepr[-1])
    ]
    if skipped:
        reporter.write_line(
            f"PostgreSQL was skipped: {len(skipped)} tests did not run on it. {skipped[0]}",
            yellow=True,
            bold=True,
        )
