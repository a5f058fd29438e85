"""The floor: a minimal Flask + orjson app that runs exactly the SQL Salvo runs for
each benchmark case (read from $BENCH_CASES) on the same database ($BENCH_DB: a
SQLite file through sqlite3, or a postgresql:// URL through psycopg), with no
parsing, validation, problem handling, caching headers or CORS. Salvo's overhead is
measured against it."""

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson
import psycopg
from flask import Flask, Response

from api.store.postgresql.dialect import to_pyformat

app = Flask(__name__)
CASES = orjson.loads(Path(os.environ["BENCH_CASES"]).read_bytes())
DATABASE = os.environ["BENCH_DB"]
ON_POSTGRESQL = DATABASE.startswith(("postgresql://", "postgres://"))
_thread = threading.local()


def db() -> Any:
    """One read-only connection per thread, reused, as Salvo does (on PostgreSQL in
    autocommit, as the connections of Salvo's pool: one statement, no transaction)."""
    if not hasattr(_thread, "conn"):
        if ON_POSTGRESQL:
            _thread.conn = psycopg.connect(DATABASE, autocommit=True)
        else:
            _thread.conn = sqlite3.connect(f"file:{DATABASE}?mode=ro", uri=True)
    return _thread.conn


@app.get("/case/<name>")
def run_case(name: str) -> Response:
    case = CASES[name]
    results: list[list[Any]] = []
    for sql, params in case["statements"]:
        # Salvo's statements take `?` parameters; psycopg takes them as Salvo's
        # PostgreSQL store passes them (to_pyformat, cached per statement).
        if ON_POSTGRESQL:
            # As Salvo reads a page of documents: in binary (PostgreSQLDialect.tuples).
            cursor = db().execute(to_pyformat(sql), params, binary=case["documents"])
        else:
            cursor = db().execute(sql, params)
        rows = cursor.fetchall()
        if case["documents"]:
            # Event pages: the stored documents, embedded as they are.
            body = [column[0] for column in cursor.description].index("body")
            results.append([orjson.Fragment(row[body]) for row in rows])
        else:
            results.append([tuple(row) for row in rows])
    return Response(orjson.dumps(results), mimetype="application/json")
