"""Where a page's time goes, without HTTP: the CPU time (of this thread, so that other
work on a shared machine counts little) that Salvo's app and the floor app
(bench/floor.py, running the page statement Salvo's planner builds) take per request
of each page case, called as the edge calls them (api.edge._start), in alternating
rounds; and what the /events total costs when it is read from the rollups against
when it is kept (ReadConnection.total, SQLite); with --frozen, Salvo also with the
objects built before the first request frozen (gc.freeze), as api.edge's workers do.

    .venv/bin/python bench/inprocess.py [--database var/bench.db | postgresql://...]

On PostgreSQL the server's own time is not in these figures (it runs in its own
processes): the Python side of each statement is.
"""

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.edge import _environ, _start  # noqa: E402
from api.store import POSTGRESQL_SCHEMES  # noqa: E402
from api.store.filters import EventListArgs  # noqa: E402
from api.store.postgresql.dialect import Reading, execute  # noqa: E402
from api.store.sqlite import stats  # noqa: E402
from api.store.sqlite.connections import connect_read_only  # noqa: E402
from bench.postgresql import page_cases  # noqa: E402
from bench.run import case_urls, parse, statements_of  # noqa: E402

PAGES = ("type_date", "bbox", "first_page", "deep_page")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default=str(ROOT / "var" / "bench.db"))
    parser.add_argument("--requests", type=int, default=400, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--frozen",
        action="store_true",
        help="also Salvo with the objects the apps built frozen (gc.freeze), as the edge's "
        "workers serve it",
    )
    args = parser.parse_args()
    database = args.database
    if database.startswith(POSTGRESQL_SCHEMES):
        with psycopg.connect(database, autocommit=True) as conn:
            (count,) = execute(conn, "SELECT count(*) FROM events").fetchone() or (0,)
            cases = page_cases(conn, count)
            statements = statements_of(Reading(conn), cases)
    else:
        cases = case_urls(Path(database))
        statements = statements_of(connect_read_only(database), cases)
    with tempfile.TemporaryDirectory() as tmp:
        cases_file = Path(tmp) / "cases.json"
        cases_file.write_bytes(orjson.dumps(statements))
        os.environ.update(
            SALVO_DATABASE=database,
            SALVO_RATE_LIMITS="off",
            BENCH_DB=database,
            BENCH_CASES=str(cases_file),
        )
        from api import create_app
        from bench.floor import app as floor

        salvo = create_app()
        calls = {}
        for name in PAGES:
            calls[name, "salvo"] = _call(salvo, "/api/v1/events", cases[name])
            calls[name, "floor"] = _call(floor, f"/case/{name}", "")
        spent: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
        if args.frozen:
            spent.update({(name, "frozen"): [] for name in PAGES})
        for call in calls.values():
            for _ in range(50):
                call()  # warm: connections, prepared statements, caches
        for _ in range(args.rounds):
            for key, call in calls.items():
                spent[key].append(_cpu_us(call, args.requests))
                if args.frozen and key[1] == "salvo":
                    gc.freeze()
                    spent[key[0], "frozen"].append(_cpu_us(call, args.requests))
                    gc.unfreeze()
    print(
        f"CPU per request in-process, median of {args.rounds} alternating rounds of "
        f"{args.requests} ({'PostgreSQL' if database.startswith(POSTGRESQL_SCHEMES) else 'SQLite'})"
    )
    print(f"{'case':<12}{'salvo us':>10}{'floor us':>10}{'floor/salvo':>13}", end="")
    print(f"{'frozen us':>11}" if args.frozen else "")
    for name in PAGES:
        ours = statistics.median(spent[name, "salvo"])
        theirs = statistics.median(spent[name, "floor"])
        print(f"{name:<12}{ours:>10.0f}{theirs:>10.0f}{theirs / ours:>12.2f}x", end="")
        print(f"{statistics.median(spent[name, 'frozen']):>11.0f}" if args.frozen else "")
    if not database.startswith(POSTGRESQL_SCHEMES):
        print_totals(database, cases, args.requests)
    return 0


def print_totals(database: str, cases: dict[str, str], number: int) -> None:
    """Each page case's total read from the rollups, and kept (a page after the first)."""
    conn = connect_read_only(database)
    print(f"\n{'total of':<12}{'read us':>10}{'kept us':>10}")
    for name in PAGES:
        args = parse(EventListArgs, cases[name])
        key = stats.total_key(args)

        def read(args: dict[str, Any] = args) -> Any:
            return stats.event_total(conn, args)

        def kept(args: dict[str, Any] = args, key: str = key) -> Any:
            return conn.total(key, lambda: stats.event_total(conn, args))

        kept()
        print(f"{name:<12}{_cpu_us(read, number):>10.0f}{_cpu_us(kept, number):>10.0f}")


def _call(app: Any, path: str, query: str) -> Callable[[], Any]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1:8000")],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "http_version": "1.1",
    }

    def call() -> None:
        started = _start(app, _environ(scope, b""))
        assert started.status == 200, (path, query, started.status)

    return call


def _cpu_us(call: Callable[[], Any], number: int) -> float:
    began = time.thread_time()
    for _ in range(number):
        call()
    return (time.thread_time() - began) / number * 1e6


if __name__ == "__main__":
    sys.exit(main())
