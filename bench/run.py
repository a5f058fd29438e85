"""make bench: Salvo against its floor and Datasette on a 1,000,000-event database,
on the server it ships with (Granian, `python -m api serve`) and on gunicorn's sync
workers, compressed and not.

Everything is measured in one run on this machine, and every target is a ratio
against a baseline measured in the same run, or a bound printed beside the
figure. Servers listen on 127.0.0.1 only and are stopped by PID; each load is
bounded in time.
"""

import argparse
import contextlib
import datetime
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api import create_app  # noqa: E402
from api.__main__ import ACCESS_LOG_FORMAT  # noqa: E402
from api.store import filters  # noqa: E402
from api.store.cursors import decode_cursor, encode_cursor  # noqa: E402
from api.store.filters import EventListArgs, StatsArgs  # noqa: E402
from api.store.sqlite import stats  # noqa: E402
from api.store.sqlite.connections import connect_read_only  # noqa: E402
from api.store.sqlite.layout import open_for_writing, outdated_objects  # noqa: E402
from api.store.sqlite.query import EventPages  # noqa: E402
from tests.server import slow_clients  # noqa: E402

VENV_BIN = Path(sys.executable).parent
UNTIL = "2026-11-26"  # fixed, so that every run builds the same database

QUERIES = {
    "type_date": "event_type=missile_strike&date_from=2024-01-01&date_to=2024-06-30&limit=100",
    "bbox": "bbox=35.5,49.5,37.5,50.5&limit=100",
}
DATASETTE_QUERIES = {
    "type_date": "event_type=missile_strike&date__gte=2024-01-01&date__lte=2024-06-30"
    "&_sort_desc=date&_size=100",
    "bbox": "latitude__gte=49.5&latitude__lte=50.5&longitude__gte=35.5&longitude__lte=37.5"
    "&_sort_desc=date&_size=100",
}
DEEP_ROWS = 500_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=ROOT / "var" / "bench.db")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument(
        "--datasette", type=Path, default=ROOT / ".venv-bench" / "bin" / "datasette"
    )
    parser.add_argument(
        "--stats-only",
        nargs="*",
        metavar="CASE",
        help="measure only these /stats cases in-process against the scan (all of them "
        "if none is named; e.g. q=kharkiv), with no server and no HTTP load",
    )
    args = parser.parse_args()
    if args.stats_only is not None:
        unknown = set(args.stats_only) - set(STATS_CASES)
        if unknown:
            parser.error(f"unknown cases {sorted(unknown)}; the cases: {list(STATS_CASES)}")
        ensure_database(args.db, args.events)
        print_report(in_process_stats(args.db, args.stats_only or list(STATS_CASES)))
        return 0
    if not shutil.which("wrk"):
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2

    ensure_database(args.db, args.events)
    cases = case_urls(args.db)
    report: list[tuple[str, str, str]] = []

    with tempfile.TemporaryDirectory() as tmp:
        cases_file = Path(tmp) / "cases.json"
        cases_file.write_bytes(orjson.dumps(floor_cases(args.db, cases)))
        # Rate limits off: wrk sends thousands of requests a second from one address;
        # the figures are those of serving (docs/design.md gives the limiter's cost).
        env = {
            **os.environ,
            "SALVO_RATE_LIMITS": "off",
            "SALVO_DATABASE": str(args.db),
            "BENCH_DB": str(args.db),
            "BENCH_CASES": str(cases_file),
            "PYTHONPATH": str(ROOT),
        }

        http = {}
        pages = [name for name in cases if not name.startswith("stats")]
        paths = salvo_paths(cases)
        with server(salvo_command(8801), env, port=8801) as salvo:
            salvo_pages = {name: fetch(8801, paths[name]) for name in pages}
            http["salvo"] = load_cases(8801, paths, args.seconds)
            workers_rss = [rss_mb(pid) for pid in descendants(salvo.pid)]
            compression = compressed_load(8801, paths["type_date"], args.seconds)
            slow_delay = {"granian": slow_clients_delay(8801)}
        with server(gunicorn("api:create_app()", 8805), env):
            http["gunicorn"] = load_cases(8805, paths, args.seconds, only=GUNICORN_CASES)
            slow_delay["gunicorn"] = slow_clients_delay(8805)
        with server(granian("bench.floor:app", 8802), env, port=8802):
            floor_pages = {name: fetch(8802, f"/case/{name}") for name in pages}
            http["floor"] = load_cases(
                8802, {name: f"/case/{name}" for name in cases}, args.seconds
            )
        for name in pages:
            # The floor answers the page query's rows (limit + 1) as a bare array.
            served = orjson.loads(salvo_pages[name])["data"]
            (rows,) = orjson.loads(floor_pages[name])
            assert served and rows[: len(served)] == served, f"{name}: the floor serves other data"
        if args.datasette.exists():
            command = [
                str(args.datasette),
                "serve",
                "--immutable",
                str(args.db),
                "--port",
                "8803",
                "--setting",
                "sql_time_limit_ms",
                "20000",
                "--setting",
                "max_returned_rows",
                "1000",
            ]
            with server(command, env, port=8803, quiet=True):
                http["datasette"] = load_cases(8803, datasette_paths(args.db, cases), args.seconds)
                datasette_csv = stream_rate(
                    8803, f"/{args.db.stem}/events.csv?_stream=on&_size=max"
                )
        else:
            print(f"bench: {args.datasette} not found; Datasette columns left empty")
            datasette_csv = None

        print_http_table(http)
        print_compression_table(compression)
        report += http_targets(http)
        report += compression_targets(compression)
        report += slow_client_rows(slow_delay)
        report.append(
            (
                "Granian worker RSS after the load (< 100 MB)",
                ", ".join(f"{r:.0f} MB" for r in workers_rss),
                verdict(max(workers_rss) < 100),
            )
        )

        with server(salvo_command(8804, workers=1), env, port=8804) as single:
            (worker,) = descendants(single.pid)
            for fmt in ("csv", "ndjson"):
                before = rss_mb(worker)
                rate = stream_rate(8804, f"/api/v1/events?format={fmt}")
                growth = peak_rss_mb(worker) - before
                report.append(
                    (
                        f"{fmt.upper()} stream (>= 50,000 events/s)",
                        f"{rate:,.0f} events/s",
                        verdict(rate >= 50_000),
                    )
                )
                report.append(
                    (
                        f"{fmt.upper()} worker RSS growth over 1M events (< 50 MB)",
                        f"{growth:.1f} MB",
                        verdict(growth < 50),
                    )
                )
        if datasette_csv is not None:
            report.append(
                (
                    "Datasette CSV stream (_stream=on), for comparison",
                    f"{datasette_csv:,.0f} events/s",
                    "",
                )
            )

    report += in_process(args.db, cases)
    print_report(report)
    return 0


def print_report(report: list[tuple[str, str, str]]) -> None:
    print()
    width = max(len(name) for name, _, _ in report)
    for name, figure, result in report:
        print(f"{name:<{width}}  {figure:>24}  {result}")


def ensure_database(path: Path, events: int) -> None:
    """Build the benchmark database unless one with this many events and the current
    table layout is already there."""
    if path.exists():
        conn = sqlite3.connect(path)
        (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
        if count == events and not outdated_objects(conn):
            conn.close()
            open_for_writing(str(path)).close()  # adds tables and indexes added since
            print(f"bench: using {path} ({count:,} events)")
            return
        conn.close()
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    command = synthetic_command(str(path), events)
    print("bench: building", path, "with", " ".join(command[1:]))
    subprocess.run(command, check=True, cwd=ROOT)


def synthetic_command(database: str, events: int) -> list[str]:
    """The load of the benchmark's events into a SQLite file or a postgresql:// URL:
    the same seed and end date, so that both engines hold the same events."""
    return [
        sys.executable, "-m", "seed", "--db", database, "synthetic", "--events", str(events),
        "--seed", "1", "--until", UNTIL,
    ]  # fmt: skip


# The event DEEP_ROWS into the default order (-date), whose cursor the deep page takes.
DEEP_ROW = "SELECT date, id FROM events ORDER BY date DESC, id DESC LIMIT 1 OFFSET ?"


def case_urls(db: Path) -> dict[str, str]:
    """Salvo query strings of the HTTP cases; the deep page's cursor sits DEEP_ROWS in."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    return cases_after(*conn.execute(DEEP_ROW, [DEEP_ROWS - 1]).fetchone())


def cases_after(date: str, event_id: str) -> dict[str, str]:
    """The HTTP cases, the deep page's cursor after the event (date, event_id)."""
    return {
        **QUERIES,
        "first_page": "limit=100",
        "deep_page": f"limit=100&cursor={encode_cursor('-date', [date, event_id])}",
        "stats_month": "interval=month",
    }


def parse(schema: Any, query: str) -> dict[str, Any]:
    """A case's query string (percent-encoded, each parameter once) as the endpoint's
    arguments."""
    raw: dict[str, Any] = dict(urllib.parse.parse_qsl(query))
    return schema().load(raw)


def floor_cases(db: Path, cases: dict[str, str]) -> dict[str, Any]:
    """The exact SQL Salvo runs for each case, for the floor app."""
    return statements_of(connect_read_only(str(db)), cases)


def statements_of(conn: Any, cases: dict[str, str]) -> dict[str, Any]:
    """The statements Salvo's planners build for each case on `conn` (a SQLite
    connection, or PostgreSQL's Reading: each engine's own SQL, `?` parameters)."""
    result = {}
    for name, query in cases.items():
        if name.startswith("stats"):
            statements = stats.statements(conn, parse(StatsArgs, query))
            result[name] = {"statements": statements, "documents": False}
        else:
            args = parse(EventListArgs, query)
            pages = EventPages(conn, args)
            after = (
                decode_cursor(args["cursor"], args["sort"], (str, str))
                if "cursor" in args
                else None
            )
            # The statement of a page, as EventPages.page runs it.
            statement = pages.sql(after, args["limit"] + 1, versioned=True)
            result[name] = {"statements": [statement], "documents": True}
    return result


def salvo_paths(cases: dict[str, str]) -> dict[str, str]:
    return {
        name: ("/api/v1/stats?" if name.startswith("stats") else "/api/v1/events?") + query
        for name, query in cases.items()
    }


def datasette_paths(db: Path, cases: dict[str, str]) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    date, row_id = conn.execute(
        "SELECT date, row_id FROM events ORDER BY date DESC, row_id DESC LIMIT 1 OFFSET ?",
        [DEEP_ROWS - 1],
    ).fetchone()
    table = f"/{db.stem}/events.json?_shape=array&_nofacet=1&"
    stats_sql = (
        "select substr(date, 1, 7) as month, count(*) as events, sum(killed_best) as killed, "
        "sum(injured_best) as injured from events group by month"
    )
    return {
        **{name: table + query for name, query in DATASETTE_QUERIES.items()},
        "first_page": table + "_sort_desc=date&_size=100",
        "deep_page": table + f"_sort_desc=date&_size=100&_next={date},{row_id}",
        "stats_month": f"/{db.stem}.json?_shape=array&sql=" + urllib.parse.quote(stats_sql),
    }


# Salvo as production runs it, with the rate limiter off (see main): two worker
# processes for the two cores.
SALVO_WORKERS = 2
SALVO_THREADS = 1
# Cases gunicorn is measured on beside Granian (the stats case takes seconds a call).
GUNICORN_CASES = ("type_date", "first_page")
SLOW_CLIENTS = 50


def salvo_command(port: int, workers: int = SALVO_WORKERS) -> list[str]:
    return [
        sys.executable, "-m", "api", "serve", "--port", str(port),
        "--workers", str(workers), "--threads", str(SALVO_THREADS),
    ]  # fmt: skip


def granian(app: str, port: int, workers: int = SALVO_WORKERS) -> list[str]:
    """Another WSGI app (the floor) on the same server and settings as Salvo, its
    access log included (it costs each request a Python logging call)."""
    return [
        str(VENV_BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers),
        "--blocking-threads", str(SALVO_THREADS), "--log-level", "warning",
        "--access-log", "--access-log-fmt", ACCESS_LOG_FORMAT, app,
    ]  # fmt: skip


def gunicorn(app: str, port: int, workers: int = 2) -> list[str]:
    return [
        str(VENV_BIN / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        app,
    ]


class server:
    """A server process for the length of a with-block, stopped by PID."""

    def __init__(
        self, command: list[str], env: dict[str, str], port: int | None = None, quiet: bool = False
    ) -> None:
        self.command, self.env, self.quiet = command, env, quiet
        self.port = port or int(re.search(r"127\.0\.0\.1:(\d+)", " ".join(command)).group(1))  # type: ignore[union-attr]

    def __enter__(self) -> subprocess.Popen[bytes]:
        output = subprocess.DEVNULL if self.quiet else None
        self.process = subprocess.Popen(
            self.command, env=self.env, cwd=ROOT, stdout=output, stderr=output
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                time.sleep(1)  # let every worker boot
                return self.process
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"{self.command[0]} did not start on port {self.port}")

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def fetch(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as response:
        assert response.status == 200, (path, response.status)
        return response.read()


def load_cases(
    port: int, paths: dict[str, str], seconds: int, only: tuple[str, ...] | None = None
) -> dict[str, dict[str, float]]:
    results = {}
    for name, path in paths.items():
        if only is not None and name not in only:
            continue
        fetch(port, path)  # warm up, and check it works
        results[name] = wrk(f"http://127.0.0.1:{port}{path}", seconds, case_connections(name))
    return results


def case_connections(name: str) -> int:
    """wrk's connections for a case: aggregates over a million rows take seconds
    each, so the /stats cases get fewer."""
    return 2 if name.startswith("stats") else 16


def wrk(
    url: str, seconds: int, connections: int, headers: tuple[str, ...] = ()
) -> dict[str, float]:
    options = [f"--header={header}" for header in headers]
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "--latency"]
    output = subprocess.run(
        [*command, *options, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latency = {
        m[0]: _ms(m[1]) for m in re.findall(r"^\s+(50|99)%\s+([\d.]+[a-z]+)\s*$", output, re.M)
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error responses")
    return {"rps": rps, "p50": latency["50"], "p99": latency["99"]}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def print_http_table(http: dict[str, dict[str, dict[str, float]]]) -> None:
    servers = list(http)
    print(f"\nHTTP, wrk -t2 -c16 (stats: -c2), 127.0.0.1, {datetime.date.today()}")
    header = f"{'case':<12}" + "".join(
        f"{s + ' req/s':>16}{'p50 ms':>9}{'p99 ms':>9}" for s in servers
    )
    print(header + f"{'salvo/floor':>13}{'salvo/datasette':>17}")
    for case in http["salvo"]:
        line = f"{case:<12}"
        for name in servers:
            r = http[name].get(case)
            line += f"{r['rps']:>16,.0f}{r['p50']:>9.1f}{r['p99']:>9.1f}" if r else " " * 34
        salvo = http["salvo"][case]["rps"]
        line += f"{salvo / http['floor'][case]['rps']:>13.2f}"
        if "datasette" in http and case in http["datasette"]:
            line += f"{salvo / http['datasette'][case]['rps']:>17.2f}"
        print(line)


def print_compression_table(results: dict[str, dict[str, float]]) -> None:
    print("\nCompression, type + date page of 100 events, Granian, wrk -t2 -c16")
    print(f"{'encoding':<10}{'req/s':>10}{'p99 ms':>9}{'bytes':>10}{'vs identity':>13}")
    plain = results["identity"]
    for coding, r in results.items():
        print(
            f"{coding:<10}{r['rps']:>10,.0f}{r['p99']:>9.1f}{r['bytes']:>10,.0f}"
            f"{r['rps'] / plain['rps']:>12.2f}x"
        )


def compression_targets(results: dict[str, dict[str, float]]) -> list[tuple[str, str, str]]:
    plain, zstd = results["identity"], results["zstd"]
    ratio = zstd["rps"] / plain["rps"]
    smaller = plain["bytes"] / zstd["bytes"]
    return [
        ("zstd req/s vs uncompressed (>= 0.85x)", f"{ratio:.2f}x", verdict(ratio >= 0.85)),
        (
            "bytes per 100-event page, uncompressed / zstd (>= 10x)",
            f"{plain['bytes']:,.0f} / {zstd['bytes']:,.0f} = {smaller:.1f}x",
            verdict(smaller >= 10),
        ),
    ]


def slow_client_rows(delays: dict[str, float]) -> list[tuple[str, str, str]]:
    return [
        (
            f"slowest normal request beside {SLOW_CLIENTS} slow clients, Granian (< 1 s)",
            f"{delays['granian'] * 1000:.0f} ms",
            verdict(delays["granian"] < 1),
        ),
        (
            "the same on gunicorn sync, 2 workers, for comparison (cap 15 s)",
            f"{delays['gunicorn'] * 1000:,.0f} ms",
            "",
        ),
    ]


def http_targets(http: dict[str, dict[str, dict[str, float]]]) -> list[tuple[str, str, str]]:
    salvo, floor = http["salvo"]["type_date"], http["floor"]["type_date"]
    rows = [
        (
            "type+date req/s vs floor (>= 0.7x)",
            f"{salvo['rps'] / floor['rps']:.2f}x",
            verdict(salvo["rps"] >= 0.7 * floor["rps"]),
        ),
        (
            "type+date p99 with 16 connections (< 25 ms)",
            f"{salvo['p99']:.1f} ms",
            verdict(salvo["p99"] < 25),
        ),
    ]
    if "datasette" in http:
        ratio = salvo["rps"] / http["datasette"]["type_date"]["rps"]
        rows.append(("type+date req/s vs Datasette (>= 5x)", f"{ratio:.1f}x", verdict(ratio >= 5)))
    on_gunicorn = http["gunicorn"]["type_date"]["rps"]
    rows.append(
        (
            "type+date req/s, Granian vs gunicorn sync (2 workers each)",
            f"{salvo['rps']:,.0f} / {on_gunicorn:,.0f} = {salvo['rps'] / on_gunicorn:.2f}x",
            "",
        )
    )
    return rows


def descendants(pid: int) -> list[int]:
    """The worker processes under a server's main process (Granian's workers are its
    children; `python -m api serve` execs into Granian, so it is the same PID)."""
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def compressed_load(port: int, path: str, seconds: int) -> dict[str, dict[str, float]]:
    """The type + date page identity, zstd and gzip encoded: req/s, p99 and bytes."""
    url = f"http://127.0.0.1:{port}{path}"
    results = {}
    for coding in ("identity", "zstd", "gzip"):
        request = urllib.request.Request(url, headers={"Accept-Encoding": coding})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.headers.get("Content-Encoding", "identity") == coding
            size = len(response.read())
        load = wrk(url, seconds, 16, headers=(f"Accept-Encoding: {coding}",))
        results[coding] = {**load, "bytes": size}
    return results


def slow_clients_delay(port: int, timeout: float = 15.0) -> float:
    """Seconds the slowest of 5 normal requests took while SLOW_CLIENTS connections
    send their headers a byte at a time (capped at `timeout`)."""
    slowest = 0.0
    with slow_clients(f"http://127.0.0.1:{port}", SLOW_CLIENTS):
        time.sleep(1)
        for _ in range(5):
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v1/events?limit=5", timeout=timeout
                ) as response:
                    response.read()
                slowest = max(slowest, time.perf_counter() - started)
            except OSError:
                return timeout
    return slowest


def rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmRSS") / 1024


def peak_rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmHWM") / 1024


def _status_kb(pid: int, field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(match.group(1))  # type: ignore[union-attr]


def stream_rate(port: int, path: str) -> float:
    """Events per second of a full export, counted as lines received."""
    started = time.perf_counter()
    lines = 0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=600) as response:
        while chunk := response.read(1 << 20):
            lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    if path.startswith("/api/") and "csv" in path:
        lines -= 1  # the header
    return lines / seconds


def in_process(db: Path, cases: dict[str, str]) -> list[tuple[str, str, str]]:
    """Figures measured through the Flask test client, without HTTP in between."""
    median_ms, get = _in_process_client(db)
    rows = []
    bbox = median_ms(get("/api/v1/events?" + cases["bbox"]))
    rows.append(("bbox median, in-process (< 5 ms)", f"{bbox:.2f} ms", verdict(bbox < 5)))
    first = median_ms(get("/api/v1/events?" + cases["first_page"]))
    deep = median_ms(get("/api/v1/events?" + cases["deep_page"]))
    rows.append(
        (
            f"deep page ({DEEP_ROWS:,} rows in) vs first page (<= 1.5x)",
            f"{deep:.2f} / {first:.2f} ms = {deep / first:.2f}x",
            verdict(deep <= 1.5 * first),
        )
    )
    rows += stats_against_the_scan(db, median_ms, get, list(STATS_CASES))
    return rows


def in_process_stats(db: Path, names: list[str]) -> list[tuple[str, str, str]]:
    """The /stats cases named, against the scan, through the Flask test client."""
    return stats_against_the_scan(db, *_in_process_client(db), names)


def median_ms(call: Callable[[], Any], repeat: int = 21) -> float:
    """The median of `repeat` calls, after one to warm up, in milliseconds."""
    call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _in_process_client(
    db: Path | str,
) -> tuple[Callable[..., float], Callable[[str], Callable[[], Any]]]:
    """A timer (the median of repeated calls, after one to warm up) and a GET that
    checks for a 200, on the app serving db in-process."""
    client = create_app(
        {"DATABASE": str(db), "RATE_LIMITS_ENABLED": False, "QUERY_BUDGET_S": 60.0}
    ).test_client()

    def get(path: str) -> Callable[[], Any]:
        def call() -> None:
            response = client.get(path)
            assert response.status_code == 200, response.get_data()

        return call

    return median_ms, get


# /stats cases of issue 12: every shape with no filter or rollup-served filters must
# answer within one scan of the events table; with a place, actor or text filter,
# within five. Beside each, the aggregate Datasette would run for it (its SQL over
# the events table, timed on the same connection).
STATS_CASES = {
    "total": ("", 1, "SELECT count(*), sum(killed_best), sum(injured_best) FROM events"),
    "interval=day": ("interval=day", 1, "date"),
    "interval=week": ("interval=week", 1, "strftime('%Y-W%W', date)"),
    "interval=month": ("interval=month", 1, "substr(date, 1, 7)"),
    "group_by=admin1": ("group_by=admin1", 1, "admin1"),
    "group_by=event_type": ("group_by=event_type", 1, "event_type"),
    "filtered month": (
        "interval=month&event_type=drone_strike,missile_strike&weapon=drone&country=UA"
        "&date_from=2023-03-15&date_to=2024-06-10",
        1,
        "substr(date, 1, 7)",
    ),
    "admin1 by day": (
        "interval=day&admin1=Kharkiv%20Oblast&date_from=2023-01-01&date_to=2023-12-31",
        1,
        "date",
    ),
    "bbox (Kharkiv) by month": ("interval=month&bbox=36.1,49.9,36.3,50.1", 5, "substr(date, 1, 7)"),
    "bbox (Kharkiv) by day": ("interval=day&bbox=36.1,49.9,36.3,50.1", 5, "date"),
    "bbox (all Ukraine) by month": ("interval=month&bbox=22,44,41,53", 5, "substr(date, 1, 7)"),
    # The shapes of issue 20: a yearly series, a weekly country + weapon slice, small
    # multiples (a series per group), the map's places of a filtered view.
    "interval=year": ("interval=year", 1, "substr(date, 1, 4)"),
    "weekly country + weapon": (
        "interval=week&country=UA&weapon=drone,missile",
        1,
        "strftime('%Y-W%W', date)",
    ),
    "admin1 by month (small multiples)": ("group_by=admin1&interval=month", 1, None),
    "event_type by week (small multiples)": ("group_by=event_type&interval=week", 1, None),
    "near (Kharkiv)": ("near=49.9935,36.2304&radius_km=30", 5, None),
    "actor=france": ("actor=france", 5, None),
    # A common term (12% of the events) and its complement: each sums the search's
    # 5,000 most recent matches (api/store/filters.py, SEARCH_TOTALS_CAP).
    "q=kharkiv": ("q=kharkiv", 5, None),
    "q=kharkiv by month": ("interval=month&q=kharkiv", 5, None),
    "q=-kharkiv": ("q=-kharkiv", 5, None),
}


def stats_against_the_scan(
    db: Path,
    median_ms: Callable[..., float],
    get: Callable[[str], Callable[[], Any]],
    names: list[str],
) -> list[tuple[str, str, str]]:
    conn = connect_read_only(str(db))
    scan_sql = "SELECT count(*) FROM events NOT INDEXED"
    scan = median_ms(partial(run_all, conn, [(scan_sql, [])]), repeat=3)

    def datasettes(name: str, endpoint: float) -> str:
        datasette = STATS_CASES[name][2]
        if datasette is None:
            return ""
        sql = (
            datasette
            if datasette.startswith("SELECT")
            else (
                f"SELECT {datasette}, count(*), sum(killed_best), sum(injured_best) "
                "FROM events GROUP BY 1"
            )
        )
        aggregate = median_ms(partial(run_all, conn, [(sql, [])]), repeat=3)
        return f"; Datasette's SQL {aggregate:.0f} ms ({aggregate / endpoint:.0f}x slower)"

    return stats_rows(median_ms, get, names, (f"{scan_sql} (the yardstick)", scan), datasettes)


def stats_rows(
    median_ms: Callable[..., float],
    get: Callable[[str], Callable[[], Any]],
    names: list[str],
    yardstick: tuple[str, float],
    beside: Callable[[str, float], str],
) -> list[tuple[str, str, str]]:
    """Each /stats case named against one full pass over the events table (the
    yardstick: its statement and median ms, measured by the caller on its engine),
    within the case's bound; `beside` adds what else the engine's caller measured of
    a case, given its median ms."""
    what, scan = yardstick
    rows = [(what, f"{scan:.0f} ms", "")]
    for name in names:
        query, allowed, _ = STATS_CASES[name]
        endpoint = median_ms(get(f"/api/v1/stats?{query}"), repeat=3)
        extra = beside(name, endpoint)
        if "q" in urllib.parse.parse_qs(query):
            # What the cap saves: the same request summing every match, in this run.
            with every_match():
                whole = median_ms(get(f"/api/v1/stats?{query}"), repeat=3)
            extra = f"; every match summed {whole:.0f} ms ({whole / scan:.2f}x)"
        rows.append(
            (
                f"/stats {name} vs the scan (<= {allowed}x)",
                f"{endpoint:.0f} / {scan:.0f} ms = {endpoint / scan:.2f}x{extra}",
                verdict(endpoint <= allowed * scan),
            )
        )
    if names != list(STATS_CASES):
        return rows
    # The other aggregates: a page of places or sources, each with its event count.
    for path in (
        "/api/v1/locations?limit=100",
        "/api/v1/locations?event_type=missile_strike,drone_strike&date_from=2024-01-01&limit=100",
        "/api/v1/sources?limit=100",
    ):
        endpoint = median_ms(get(path), repeat=3)
        rows.append(
            (
                f"{path} vs the scan (<= 1x)",
                f"{endpoint:.1f} / {scan:.0f} ms = {endpoint / scan:.2f}x",
                verdict(endpoint <= scan),
            )
        )
    return rows


@contextlib.contextmanager
def every_match() -> Iterator[None]:
    """Searches' totals without their cap (api/store/filters.py, SEARCH_TOTALS_CAP)."""
    cap = filters.SEARCH_TOTALS_CAP
    filters.SEARCH_TOTALS_CAP = 10**12  # more events than any database holds
    try:
        yield
    finally:
        filters.SEARCH_TOTALS_CAP = cap


def run_all(conn: Any, statements: Iterable[tuple[str, list[Any]]]) -> None:
    """Run the statements on a connection taking `?` parameters (sqlite3's, or
    PostgreSQL's Reading), fetching every row."""
    for sql, params in statements:
        conn.execute(sql, params).fetchall()


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


if __name__ == "__main__":
    sys.exit(main())
