"""What the edge (api/edge.py) costs a request: Salvo as `python -m api serve` runs it
(Granian's ASGI interface, the Flask app on the edge's pools) against the same app on
Granian's WSGI interface as it ran before the edge (`--interface wsgi --factory
api:create_app`, Granian's access log), in alternating rounds on one database.

    .venv/bin/python bench/edge.py [--seconds 10] [--rounds 2] [--workers 2] [--threads 4]

Prints requests/s and p50/p99 per case and server, and the edge's throughput as a
ratio of WSGI's measured in the same run. The database is var/soak.db (100,000
synthetic events, built by `make soak` or here on first use).
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.__main__ import ACCESS_LOG_FORMAT  # noqa: E402
from bench.run import server, wrk  # noqa: E402
from bench.soak import ensure_database  # noqa: E402

CASES = {
    "type_date": "/api/v1/events?event_type=missile_strike&date_from=2024-01-01"
    "&date_to=2024-06-30&limit=100",
    "first_page": "/api/v1/events?limit=20",
    "one_event": "/api/v1/event-types",
    "health": "/healthz",
}


def commands(port: int, workers: int, threads: int) -> dict[str, list[str]]:
    bin_dir = Path(sys.executable).parent
    return {
        "edge (asgi)": [
            sys.executable, "-m", "api", "serve", "--port", str(port),
            "--workers", str(workers), "--threads", str(threads),
        ],
        "wsgi (before)": [
            str(bin_dir / "granian"), "--interface", "wsgi", "--factory", "api:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--blocking-threads", str(threads), "--log-level", "warning",
            "--access-log", "--access-log-fmt", ACCESS_LOG_FORMAT,
        ],
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    # Two processes for the two cores; four (read) threads each, `make run`'s default.
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--db", type=Path, default=ROOT / "var" / "soak.db")
    args = parser.parse_args()
    ensure_database(args.db)
    env = {**os.environ, "SALVO_DATABASE": str(args.db), "SALVO_RATE_LIMITS": "off"}
    port = 8811
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    for _ in range(args.rounds):
        for name, command in commands(port, args.workers, args.threads).items():
            with server(command, env, port=port, quiet=True):
                for case, path in CASES.items():
                    measured = wrk(f"http://127.0.0.1:{port}{path}", args.seconds, 16)
                    results.setdefault(name, {}).setdefault(case, []).append(measured)
    print(
        f"\nwrk -t2 -c16, {args.seconds} s a case, {args.rounds} alternating rounds, median; "
        f"{args.workers} workers of {args.threads} (read) threads"
    )
    print(f"{'case':<12}{'server':<16}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for case in CASES:
        medians = {}
        for name in results:
            runs = results[name][case]
            medians[name] = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
            m = medians[name]
            print(f"{case:<12}{name:<16}{m['rps']:>9.0f}{m['p50']:>9.2f}{m['p99']:>9.2f}")
        edge, before = medians["edge (asgi)"]["rps"], medians["wsgi (before)"]["rps"]
        print(f"{'':<12}edge / wsgi: {edge / before:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
