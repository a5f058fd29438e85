"""The floor: a minimal Flask + sqlite3 + orjson app that runs exactly the SQL Salvo
runs for each benchmark case (read from $BENCH_CASES) on the same file, with no
parsing, validation, problem handling, caching headers or CORS. Salvo's overhead is
measured against it."""

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson
from flask import Flask, Response

app = Flask(__name__)
CASES = orjson.loads(Path(os.environ["BENCH_CASES"]).read_bytes())
_thread = threading.local()


def db() -> sqlite3.Connection:
    """One read-only connection per thread, reused, as Salvo does."""
    if not hasattr(_thread, "conn"):
        _thread.conn = sqlite3.connect(f"file:{os.environ['BENCH_DB']}?mode=ro", uri=True)
    return _thread.conn


@app.get("/case/<name>")
def run_case(name: str) -> Response:
    case = CASES[name]
    results: list[list[Any]] = []
    for sql, params in case["statements"]:
        cursor = db().execute(sql, params)
        rows = cursor.fetchall()
        if case["documents"]:
            # Event pages: the stored documents, embedded as they are.
            body = [column[0] for column in cursor.description].index("body")
            results.append([orjson.Fragment(row[body]) for row in rows])
        else:
            results.append([tuple(row) for row in rows])
    return Response(orjson.dumps(results), mimetype="application/json")
