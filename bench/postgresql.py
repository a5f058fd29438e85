"""make bench, its PostgreSQL part (issue 22, item 8): the benchmark's events on a
throwaway PostgreSQL + PostGIS server, measured in one run against

- a floor running the same SQL through psycopg (bench/floor.py, the statements
  Salvo's planners build on PostgreSQL): every page case, >= 0.7x;
- Salvo on SQLite serving the same events (bench/run.py's database), per case;
- PostgreSQL's own full pass over the events table (the /stats shapes, within the
  bounds bench/run.py holds SQLite's to), the same aggregate over the events beside;
- one instance against two behind HAProxy (ops/cluster.py).

    .venv/bin/python bench/postgresql.py [--events 1000000] [--seconds 10]
    .venv/bin/python bench/postgresql.py --database postgresql://... --stats-only q=kharkiv

The events are loaded by `python -m seed synthetic` with bench/run.py's seed and end
date (the store's bulk load; its time is printed), so that both engines hold the
same events. `--database postgresql://...` measures a database already holding them
instead (read only: nothing is written to it but what `python -m api migrate` adds).
Servers listen on 127.0.0.1 only and are stopped by PID.
"""

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.store.filters import StatsArgs  # noqa: E402
from api.store.postgresql.dialect import Reading, execute  # noqa: E402
from api.store.sqlite import stats  # noqa: E402
from bench.run import (  # noqa: E402
    DEEP_ROW,
    DEEP_ROWS,
    STATS_CASES,
    _in_process_client,
    case_connections,
    cases_after,
    ensure_database,
    fetch,
    granian,
    parse,
    print_report,
    run_all,
    salvo_command,
    salvo_paths,
    server,
    statements_of,
    stats_rows,
    synthetic_command,
    verdict,
    wrk,
)
from ops import cluster, postgres  # noqa: E402

# The cases measured through the balancer, one instance against two.
CLUSTER_CASES = ("type_date", "first_page")
# The floor bound of every page case (bench/run.py holds type + date to it on SQLite).
FLOOR_BOUND = 0.7
# wrk runs per case and server, alternating (load_alternating), each --seconds long.
ROUNDS = 2
# Seconds of wrk on each server and case before its rounds, not counted.
WARM_UP_S = 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--sqlite-db",
        type=Path,
        help="bench/run.py's SQLite database of the same events (default var/bench.db "
        "at 1,000,000 events, else var/bench-N.db; built if missing)",
    )
    parser.add_argument(
        "--database", help="a postgresql:// URL already holding the events, used as it is"
    )
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument(
        "--stats-only",
        nargs="*",
        metavar="CASE",
        help="measure only these /stats cases in-process against the scan (all of them "
        "if none is named; e.g. q=kharkiv), with no server, no HTTP load and no SQLite",
    )
    args = parser.parse_args()
    reason = postgres.missing() or cluster.missing()
    if reason is not None:
        # As `make test` does: the SQLite part has run; say what was skipped and why.
        print(f"bench: PostgreSQL part skipped: {reason}")
        return 0
    if args.stats_only is not None:
        unknown = set(args.stats_only) - set(STATS_CASES)
        if unknown:
            parser.error(f"unknown cases {sorted(unknown)}; the cases: {list(STATS_CASES)}")
    elif not shutil.which("wrk"):
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    sqlite_db = args.sqlite_db or ROOT / "var" / (
        "bench.db" if args.events == 1_000_000 else f"bench-{args.events}.db"
    )
    if args.stats_only is None:
        ensure_database(sqlite_db, args.events)
    started: postgres.PostgresServer | None = None
    try:
        if args.database:
            url = args.database
        else:
            started = postgres.start_server()
            started.admin("CREATE DATABASE bench")
            url = started.url("bench")
            print(f"bench: loading {args.events:,} events into a throwaway PostgreSQL", flush=True)
            loading = time.perf_counter()
            subprocess.run(synthetic_command(url, args.events), cwd=ROOT, check=True)
            print(f"bench: loaded in {time.perf_counter() - loading:.1f} s", flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            (count,) = execute(conn, "SELECT count(*) FROM events").fetchone() or (0,)
            if count != args.events:
                print(f"bench: {url} holds {count:,} events, not {args.events:,}", file=sys.stderr)
                return 2
            if args.stats_only is not None:
                print_report(stats_against_postgresql(url, args.stats_only or list(STATS_CASES)))
                return 0
            cases = page_cases(conn, count)
            statements = statements_of(Reading(conn), cases)
        report = serve_and_load(url, sqlite_db, cases, statements, args.seconds)
        report += through_the_balancer(url, cases, args.seconds)
        report += stats_against_postgresql(url)
        print_report(report)
        return 0
    finally:
        if started is not None:
            postgres.stop_server_in(started.directory)


def page_cases(conn: psycopg.Connection[Any], events: int) -> dict[str, str]:
    """bench/run.py's HTTP cases on a PostgreSQL database of `events` events (as
    case_urls on SQLite): the deep page's cursor sits DEEP_ROWS in, or half-way."""
    deep = min(DEEP_ROWS, events // 2)
    return cases_after(*(execute(conn, DEEP_ROW, [deep - 1]).fetchone() or ()))


def serve_and_load(
    url: str,
    sqlite_db: Path,
    cases: dict[str, str],
    statements: dict[str, Any],
    seconds: int,
) -> list[tuple[str, str, str]]:
    """Salvo on PostgreSQL, its floor and Salvo on SQLite, side by side, under wrk in
    alternating rounds (load_alternating); the table, and a row per case and target."""
    paths = salvo_paths(cases)
    pages = [name for name in cases if not name.startswith("stats")]
    served: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cases_file = Path(tmp) / "cases.json"
        cases_file.write_bytes(orjson.dumps(statements))
        common = {**os.environ, "SALVO_RATE_LIMITS": "off", "PYTHONPATH": str(ROOT)}
        on_postgresql = {
            **common,
            "SALVO_DATABASE": url,
            "BENCH_DB": url,
            "BENCH_CASES": str(cases_file),
        }
        floor_paths = {name: f"/case/{name}" for name in cases}
        on_sqlite = {**common, "SALVO_DATABASE": str(sqlite_db)}
        ports = {name: postgres.free_port() for name in ("postgresql", "floor", "sqlite")}
        with contextlib.ExitStack() as servers:
            for name, command, environment in (
                ("postgresql", salvo_command, on_postgresql),
                ("floor", partial(granian, "bench.floor:app"), on_postgresql),
                ("sqlite", salvo_command, on_sqlite),
            ):
                port = ports[name]
                servers.enter_context(server(command(port), environment, port=port))
            for name in ("postgresql", "sqlite"):
                found = {n: orjson.loads(fetch(ports[name], paths[n]))["data"] for n in pages}
                served[name] = found
            # The floor answers the page query's rows (limit + 1) as a bare array.
            served["floor"] = {
                n: orjson.loads(fetch(ports["floor"], floor_paths[n]))[0] for n in pages
            }
            http = load_alternating(
                {
                    "postgresql": (ports["postgresql"], paths),
                    "floor": (ports["floor"], floor_paths),
                    "sqlite": (ports["sqlite"], paths),
                },
                seconds,
            )
    rows = []
    for name in pages:
        on_postgresql = served["postgresql"][name]
        # The same SQL gives the same documents; the engines hold the same events,
        # each stamped when it was loaded (updated_at), so their ids are compared.
        same_floor = bool(on_postgresql) and served["floor"][name][: len(on_postgresql)] == (
            on_postgresql
        )
        same_ids = [e["id"] for e in on_postgresql] == [e["id"] for e in served["sqlite"][name]]
        rows.append(
            (
                f"{name}: floor and SQLite serve the events Salvo on PostgreSQL serves",
                f"{'floor ' if same_floor else 'floor differs, '}"
                f"{'SQLite' if same_ids else 'SQLite differs'}",
                verdict(same_floor and same_ids),
            )
        )
    print_table(http)
    for name in cases:
        ratio = http["postgresql"][name]["rps"] / http["floor"][name]["rps"]
        paged = name in pages
        rows.append(
            (
                f"{name} req/s vs the floor on PostgreSQL"
                + (f" (>= {FLOOR_BOUND}x)" if paged else ""),
                f"{ratio:.2f}x",
                verdict(ratio >= FLOOR_BOUND) if paged else "",
            )
        )
    for name in cases:
        postgresql, sqlite = http["postgresql"][name]["rps"], http["sqlite"][name]["rps"]
        rows.append(
            (
                f"{name} req/s, Salvo on PostgreSQL vs on SQLite",
                f"{postgresql:,.0f} / {sqlite:,.0f} = {postgresql / sqlite:.2f}x",
                "",
            )
        )
    return rows


def load_alternating(
    servers: dict[str, tuple[int, dict[str, str]]], seconds: int
) -> dict[str, dict[str, dict[str, float]]]:
    """Each case under wrk (as bench/run.py's load_cases) on every server, in ROUNDS
    rounds whose order alternates (A B C, then C B A): the servers run side by side,
    idle but for the one loaded, so that a machine whose load drifts during the run
    weighs on each alike. Requests/s is the rounds' mean, p50 their median, p99 their
    highest."""
    names = list(servers)
    cases = list(next(iter(servers.values()))[1])
    measured: dict[str, dict[str, list[dict[str, float]]]] = {n: {} for n in names}
    for case in cases:
        connections = case_connections(case)
        for round_ in range(ROUNDS):
            for name in names if round_ % 2 == 0 else names[::-1]:
                port, paths = servers[name]
                url = f"http://127.0.0.1:{port}{paths[case]}"
                if round_ == 0:
                    # Check it works, then warm up: a fresh worker's first seconds
                    # open its pool's connections and prepare their statements.
                    fetch(port, paths[case])
                    wrk(url, WARM_UP_S, connections)
                measured[name].setdefault(case, []).append(wrk(url, seconds, connections))
    return {
        name: {
            case: {
                "rps": statistics.mean(r["rps"] for r in rounds),
                "p50": statistics.median(r["p50"] for r in rounds),
                "p99": max(r["p99"] for r in rounds),
            }
            for case, rounds in by_case.items()
        }
        for name, by_case in measured.items()
    }


def print_table(http: dict[str, dict[str, dict[str, float]]]) -> None:
    print(f"\nHTTP on PostgreSQL, wrk -t2 -c16 (stats: -c2), 127.0.0.1, {time.strftime('%F')}")
    names = {"postgresql": "salvo pg", "floor": "floor pg", "sqlite": "salvo sqlite"}
    header = f"{'case':<12}" + "".join(
        f"{names[s] + ' req/s':>20}{'p50 ms':>9}{'p99 ms':>9}" for s in http
    )
    print(header + f"{'pg/floor':>10}{'pg/sqlite':>11}")
    for case in http["postgresql"]:
        line = f"{case:<12}"
        for name in http:
            r = http[name][case]
            line += f"{r['rps']:>20,.0f}{r['p50']:>9.1f}{r['p99']:>9.1f}"
        salvo = http["postgresql"][case]["rps"]
        line += f"{salvo / http['floor'][case]['rps']:>10.2f}"
        line += f"{salvo / http['sqlite'][case]['rps']:>11.2f}"
        print(line)


def through_the_balancer(
    url: str, cases: dict[str, str], seconds: int
) -> list[tuple[str, str, str]]:
    """wrk through HAProxy to one instance, then to two (`python -m api serve
    --workers 1` each, as `make cluster` starts them), on the same database."""
    paths = salvo_paths(cases)
    rps: dict[int, dict[str, float]] = {}
    for instances in (1, 2):
        running = cluster.start_cluster(
            instances, database=url, environment={"SALVO_RATE_LIMITS": "off"}
        )
        try:
            rps[instances] = {
                name: wrk(running.url + paths[name], seconds, 16)["rps"] for name in CLUSTER_CASES
            }
        finally:
            running.stop()
    return [
        (
            f"{name} req/s through HAProxy, two instances vs one ({os.cpu_count()} cores)",
            f"{rps[2][name]:,.0f} / {rps[1][name]:,.0f} = {rps[2][name] / rps[1][name]:.2f}x",
            "",
        )
        for name in CLUSTER_CASES
    ]


def stats_against_postgresql(
    url: str, names: list[str] | None = None
) -> list[tuple[str, str, str]]:
    """bench/run.py's /stats cases (those named, or all) through the Flask test client
    on PostgreSQL, against PostgreSQL's full pass over the events table (count(*) by a
    sequential scan, the planner's indexes turned off for it: SQLite's NOT INDEXED),
    each with the same aggregate over the events table beside it (the planner's raw
    statement, which tests compare the rollups' answers with)."""
    median_ms, get = _in_process_client(url)
    with psycopg.connect(url, autocommit=True) as conn:
        for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
            conn.execute(f"SET {setting} = off")
        scan_sql = "SELECT count(*) FROM events"
        scan = median_ms(partial(run_all, Reading(conn), [(scan_sql, [])]), repeat=3)
    with psycopg.connect(url, autocommit=True) as conn:
        reading = Reading(conn)

        def aggregate(name: str, endpoint: float) -> str:
            args = parse(StatsArgs, STATS_CASES[name][0])
            run: Callable[[], None] = partial(
                run_all, reading, stats.statements(reading, args, raw=True)
            )
            over_events = median_ms(run, repeat=3)
            return f"; over the events {over_events:.0f} ms ({over_events / endpoint:.1f}x Salvo's)"

        return stats_rows(
            median_ms, get, names or list(STATS_CASES),
            (f"{scan_sql}, a seq scan (the yardstick)", scan), aggregate,
        )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
