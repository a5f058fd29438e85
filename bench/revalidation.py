"""What a 304 revalidation costs beside the full answer (200) it stands for, and what
the anonymous rate limit's three windows cost beside one: the figures behind
api/limits.py's choice not to count a 304 (issue 20, item 5).

    .venv/bin/python bench/revalidation.py [--requests 300] [--db var/soak.db]

Three tables, each a ratio against a baseline measured in the same run:
- server time: each case served in-process (the Flask app, rate limits on as they
  ship), the median of 200s and of 304s (If-None-Match with the 200's ETag) sent in
  alternation;
- HTTP: the same requests over 127.0.0.1 to `python -m api serve`, alternating on
  one keep-alive connection, with the bytes each answer puts on the wire;
- rate-limit cost: RateLimit-Remaining before and after each answer, under the
  default anonymous limits; and the limiter's own time per request with Open-Meteo's
  three windows against one 60-a-minute window, each window full.

The database is var/soak.db (100,000 synthetic events, built by `make soak` or here
on first use).
"""

import argparse
import http.client
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from limits import parse_many  # noqa: E402
from limits.storage import MemoryStorage  # noqa: E402
from limits.strategies import MovingWindowRateLimiter  # noqa: E402

from api import create_app  # noqa: E402
from api.config import DEFAULT_RATE_LIMIT_ANONYMOUS  # noqa: E402
from bench.run import server  # noqa: E402
from bench.soak import ensure_database  # noqa: E402

# What a dashboard asks for and revalidates: a filtered page, a GeoJSON page for its
# map, a monthly series for its chart, the small list of event types.
CASES = {
    "events_page": "/api/v1/events?event_type=missile_strike&date_from=2024-01-01"
    "&date_to=2024-06-30&limit=100",
    "geojson_page": "/api/v1/events?format=geojson&limit=100",
    "stats_month": "/api/v1/stats?interval=month&event_type=drone_strike",
    "event_types": "/api/v1/event-types",
}
# As a browser sends it: the ETag it holds is the zstd body's.
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}
PORT = 8823


def seconds(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def median_us(call: Callable[[], object], number: int) -> float:
    return statistics.median(seconds(call) for _ in range(number)) * 1e6


def server_time(db: Path, number: int) -> dict[str, tuple[float, float]]:
    """Median microseconds of a 200 and of a 304 per case, in-process, the two
    alternating request by request so that the machine's other load falls on both."""
    app = create_app({"DATABASE": str(db), "RATE_LIMIT_ANONYMOUS": "100000000/minute"})
    client = app.test_client()
    results = {}
    for case, path in CASES.items():
        first = client.get(path, headers=BROWSER)
        assert first.status_code == 200, (path, first.status_code)
        conditional = {**BROWSER, "If-None-Match": first.headers["ETag"]}
        assert client.get(path, headers=conditional).status_code == 304
        full, revalidated = [], []
        for _ in range(number):
            full.append(seconds(partial(client.get, path, headers=BROWSER)))
            revalidated.append(seconds(partial(client.get, path, headers=conditional)))
        results[case] = statistics.median(full) * 1e6, statistics.median(revalidated) * 1e6
    return results


def over_http(db: Path, number: int) -> dict[str, tuple[float, float, int, int]]:
    """Per case, over one keep-alive connection to `python -m api serve`: the median
    milliseconds of a 200 and of a 304, sent in alternation, and their bytes (body
    and headers) on the wire."""
    env = {**os.environ, "SALVO_DATABASE": str(db), "SALVO_RATE_LIMITS": "off"}
    command = [sys.executable, "-m", "api", "serve", "--port", str(PORT)]
    results = {}
    with server(command, env, port=PORT, quiet=True):
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)

        def get(path: str, headers: dict[str, str]) -> tuple[float, int, str]:
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            took = time.perf_counter() - started
            wire = len(body) + sum(len(k) + len(v) + 4 for k, v in response.getheaders())
            return took, wire, response.getheader("ETag", "")

        for case, path in CASES.items():
            _, full_bytes, etag = get(path, BROWSER)
            conditional = {**BROWSER, "If-None-Match": etag}
            _, revalidated_bytes, _ = get(path, conditional)
            full, revalidated = [], []
            for _ in range(number):
                full.append(get(path, BROWSER)[0])
                revalidated.append(get(path, conditional)[0])
            results[case] = (
                statistics.median(full) * 1e3,
                statistics.median(revalidated) * 1e3,
                full_bytes,
                revalidated_bytes,
            )
        conn.close()
    return results


def rate_limit_cost(db: Path) -> tuple[int, int]:
    """How much of the default anonymous budget a 200 and a 304 take."""
    client = create_app({"DATABASE": str(db)}).test_client()
    path = CASES["events_page"]
    first = client.get(path)
    before = int(first.headers["RateLimit-Remaining"])
    full = client.get(path)
    after_full = int(full.headers["RateLimit-Remaining"])
    revalidated = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert revalidated.status_code == 304
    return before - after_full, after_full - int(revalidated.headers["RateLimit-Remaining"])


def limiter_us(spec: str) -> float:
    """The limiter's time for one request (check every window, count it, read the
    headers' window), each window holding as many entries as it allows."""
    limiter = MovingWindowRateLimiter(MemoryStorage())
    windows = parse_many(spec)
    for window in windows:
        for _ in range(window.amount):
            limiter.hit(window, "address")

    def one_request() -> None:
        for window in windows:
            limiter.test(window, "address")
        for window in windows:
            limiter.hit(window, "address")
        for window in windows:
            limiter.get_window_stats(window, "address")

    return median_us(one_request, 20_000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--db", type=Path, default=ROOT / "var" / "soak.db")
    args = parser.parse_args()
    ensure_database(args.db)

    print(f"\nServer time in-process, median of {args.requests} of each, alternating; zstd as "
          "browsers ask")  # fmt: skip
    print(f"{'case':<14}{'200 us':>9}{'304 us':>9}{'304/200':>9}")
    for case, (full, revalidated) in server_time(args.db, args.requests).items():
        print(f"{case:<14}{full:>9.0f}{revalidated:>9.0f}{revalidated / full:>8.2f}x")

    print(f"\nHTTP, python -m api serve, one keep-alive connection, median of {args.requests} "
          "of each, alternating; zstd as browsers ask")  # fmt: skip
    print(f"{'case':<14}{'200 ms':>9}{'304 ms':>9}{'304/200':>9}{'200 bytes':>11}{'304 bytes':>11}")
    for case, (ok, not_modified, ok_bytes, not_modified_bytes) in over_http(
        args.db, args.requests
    ).items():
        print(f"{case:<14}{ok:>9.2f}{not_modified:>9.2f}{not_modified / ok:>8.2f}x"
              f"{ok_bytes:>11,}{not_modified_bytes:>11,}")  # fmt: skip

    full_cost, revalidated_cost = rate_limit_cost(args.db)
    print(f"\nRate-limit cost under the default anonymous limits ({DEFAULT_RATE_LIMIT_ANONYMOUS})")
    print(f"requests counted: 200 {full_cost}, 304 {revalidated_cost}: "
          f"304/200 = {revalidated_cost / full_cost:.0f}x")  # fmt: skip
    one, three = limiter_us("60/minute"), limiter_us(DEFAULT_RATE_LIMIT_ANONYMOUS)
    print(f"limiter time a request, windows full: 60/minute {one:.1f} us, "
          f"{DEFAULT_RATE_LIMIT_ANONYMOUS} {three:.1f} us = {three / one:.1f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
