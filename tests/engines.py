"""What a test needs to look inside a database of either engine, given what
$SALVO_DATABASE would hold (a SQLite path or a postgresql:// URL): its rows, and the
errors its engine raises. Tests reach the data through the API where they can; these
are for what the API does not show (the audit log's own table, the counter) and for
proving what a database refuses (the audit log's append-only trigger)."""

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from api.store import POSTGRESQL_SCHEMES, database_file, open_store
from api.store.postgresql.dialect import to_pyformat

# What either engine raises for a statement it refuses (a trigger, a constraint).
DATABASE_ERRORS = (sqlite3.DatabaseError, psycopg.Error)


def on_postgresql(database: str) -> bool:
    return database.startswith(POSTGRESQL_SCHEMES)


def rows(database: str | Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows of one statement written with `?` parameters, read in a transaction
    of its own."""
    database = str(database)
    if on_postgresql(database):
        with psycopg.connect(database) as pg:
            return pg.execute(to_pyformat(sql), list(params)).fetchall()
    conn = sqlite3.connect(database_file(database))
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def execute(database: str, sql: str, params: Sequence[Any] = ()) -> None:
    """Run and commit one statement written with `?` parameters; the engine's error,
    one of DATABASE_ERRORS, if it is refused."""
    if on_postgresql(database):
        with psycopg.connect(database) as pg:
            pg.execute(to_pyformat(sql), list(params))
        return
    conn = sqlite3.connect(database_file(database))
    try:
        with conn:
            conn.execute(sql, params)
    finally:
        conn.close()


def write_key(database: str, name: str = "Tests", scope: str = "write") -> str:
    """A new API key of `scope` on the database, made as `python -m api keys create`
    makes it (through the store)."""
    store = open_store(database)
    try:
        return store.create_key(name, scope)
    finally:
        store.close()


@contextmanager
def holding_the_write_lock(database: str) -> Iterator[None]:
    """Another process's transaction holding what every write must take first, for the
    length of the block: SQLite's file lock (BEGIN EXCLUSIVE), PostgreSQL's change
    counter row (FOR UPDATE)."""
    if on_postgresql(database):
        with psycopg.connect(database) as pg, pg.transaction(force_rollback=True):
            pg.execute("SELECT 1 FROM change_counter WHERE singleton = 1 FOR UPDATE")
            yield
        return
    conn = sqlite3.connect(database_file(database), isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()
