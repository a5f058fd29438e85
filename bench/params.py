"""What the query-string fast path of api.params.RequestParser saves, measured in one
run: each benchmark page's parameters parsed by webargs' generic path with the
endpoint's whole schema, and by RequestParser.parse (straight to marshmallow's load,
the schema narrowed to the parameters given), beside the whole page served
in-process. Run: .venv/bin/python bench/params.py [--db var/bench.db]"""

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webargs.flaskparser import FlaskParser  # noqa: E402

from api import create_app  # noqa: E402
from api.params import RequestParser  # noqa: E402
from api.store.filters import EventListArgs  # noqa: E402
from bench.run import QUERIES  # noqa: E402

CASES = {**QUERIES, "first_page": "limit=100"}


def best_us(call: Callable[[], Any], number: int = 2000, repeat: int = 7) -> float:
    """The best of `repeat` runs of `number` calls, per call, in microseconds."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            call()
        runs.append((time.perf_counter() - started) / number * 1e6)
    return min(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, default=ROOT / "var" / "bench.db")
    args = parser.parse_args()
    app = create_app({"DATABASE": str(args.db), "RATE_LIMITS_ENABLED": False})
    client = app.test_client()
    schema, salvo = EventListArgs(), RequestParser()
    columns = ("generic µs", 12), ("fast path µs", 14), ("saved µs", 10), ("page µs", 10)
    print(f"{'case':<12}" + "".join(f"{title:>{width}}" for title, width in columns) + "   share")
    shares = []
    for name, query in CASES.items():
        path = f"/api/v1/events?{query}"
        with app.test_request_context(path):
            generic = best_us(lambda: FlaskParser.parse(salvo, schema, location="query"))
            fast = best_us(lambda: salvo.parse(schema, location="query"))
        page = best_us(functools.partial(client.get, path), number=300)
        shares.append((generic - fast) / page)
        print(
            f"{name:<12}{generic:>12.1f}{fast:>14.1f}{generic - fast:>10.1f}{page:>10.0f}"
            f"{(generic - fast) / page:>8.1%}"
        )
    print(f"median share of a page saved: {statistics.median(shares):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
