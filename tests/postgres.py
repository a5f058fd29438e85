"""A real PostgreSQL 15 + PostGIS server for the tests: the throwaway cluster of
ops/postgres.py (initdb in a temporary directory, 127.0.0.1 on a free port, password
authentication, run as the `postgres` OS user when root, stopped by its PID), started
once per session and stopped at the end. ops/postgres.py is the one way to start one:
`make cluster` uses it too. Without the binaries the tests that need the server are
skipped with a reason naming PostgreSQL (`.ci/run` installs them).

Use: `postgres_url` (session) is a database with PostGIS; `fresh_postgres_url` is a
new empty database (with PostGIS) for one test, dropped after it. tests/conftest.py
makes them every module's fixtures, and builds the engine-parametrised ones on them.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count

import psycopg
import pytest

from ops.postgres import PostgresServer, missing, start_server, stop_server_in


def _skip_without_postgres() -> None:
    reason = missing()
    if reason is not None:
        pytest.skip(f"{reason}; CI installs it")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server, with a template database holding PostGIS."""
    _skip_without_postgres()
    server = start_server()
    try:
        server.admin("CREATE DATABASE salvo_template")
        with psycopg.connect(server.url("salvo_template"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        new_database(server, "salvo")
        yield server
    finally:
        stop_server_in(server.directory)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of the session's database (with PostGIS), shared by the session's tests."""
    return postgres_server.url("salvo")


_numbers = count(1)


def new_database(server: PostgresServer, name: str, template: str = "salvo_template") -> str:
    """Database `name`, a copy of `template` (PostGIS, or a seeded database no one is
    connected to), made on `server`; its URL."""
    server.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
    return server.url(name)


@contextmanager
def scratch_database(server: PostgresServer, template: str) -> Iterator[str]:
    """A numbered copy of `template` for one test, dropped after it (connections a
    test left open are ended: WITH (FORCE))."""
    name = f"salvo_test_{next(_numbers)}"
    url = new_database(server, name, template)
    try:
        yield url
    finally:
        server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new, empty database with PostGIS for one test, dropped after it."""
    with scratch_database(postgres_server, "salvo_template") as url:
        yield url
