"""What `fields=` (a sparse fieldset) saves and costs, measured in one run: a page of
1,000 events as GeoJSON (what a map asks for) and as JSON, whole and narrowed, its
bytes as sent and compressed (zstd), and its median time through the Flask test
client, each against the whole page of the same run; then the narrowing alone
(orjson parsing each stored document and dumping the fields kept).

Compressed bodies are not cached here (the app's cache of encoded bodies would hand
back the same page's bytes from the second request on): a map's pages vary with its
filters, so each compression is paid.

Run: .venv/bin/python bench/fields.py [--db var/bench.db] [--events 1000000]
(the database is built as bench/run.py builds it when it is missing)."""

import argparse
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api import create_app  # noqa: E402
from api.render import projected  # noqa: E402
from api.store.sqlite.connections import connect_read_only  # noqa: E402
from bench.run import ensure_database, median_ms  # noqa: E402

PAGE = "/api/v1/events?limit=1000"
# What a map's markers need, and what its popups add.
FIELDSETS = {
    "whole": "",
    "markers": "event_type,date",
    "popups": "event_type,date,location,casualties",
}
FORMATS = ("geojson", "json")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, default=ROOT / "var" / "bench.db")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    ensure_database(args.db, args.events)
    app = create_app(
        {
            "DATABASE": str(args.db),
            "RATE_LIMITS_ENABLED": False,
            "QUERY_BUDGET_S": 60.0,
            "COMPRESS_CACHE_BACKEND": None,
        }
    )
    client = app.test_client()

    def get(url: str, coding: str) -> Callable[[], bytes]:
        def call() -> bytes:
            response = client.get(url, headers={"Accept-Encoding": coding})
            assert response.status_code == 200, response.get_data()
            return response.get_data()

        return call

    print(f"A page of 1,000 events ({PAGE}) on {args.db}, median of {args.repeat}")
    header = (
        f"{'format':<8} {'fields':<8} {'bytes':>10} {'zstd bytes':>11} {'ms':>7} {'zstd ms':>8}"
    )
    print(f"{header}   bytes, ms, zstd ms vs whole")
    for format_ in FORMATS:
        whole: tuple[int, float, float] | None = None
        for name, fieldset in FIELDSETS.items():
            url = f"{PAGE}&format={format_}" + (f"&fields={fieldset}" if fieldset else "")
            size, coded = len(get(url, "identity")()), len(get(url, "zstd")())
            plain_ms = median_ms(get(url, "identity"), args.repeat)
            zstd_ms = median_ms(get(url, "zstd"), args.repeat)
            if whole is None:
                whole = (size, plain_ms, zstd_ms)
            ratios = (size / whole[0], plain_ms / whole[1], zstd_ms / whole[2])
            print(
                f"{format_:<8} {name:<8} {size:>10,} {coded:>11,} {plain_ms:>7.2f} "
                f"{zstd_ms:>8.2f}   " + ", ".join(f"{r:.2f}x" for r in ratios)
            )
    conn = connect_read_only(str(args.db))
    documents = [
        row[0]
        for row in conn.execute(
            "SELECT CAST(body AS BLOB) FROM event_documents ORDER BY row_id LIMIT 1000"
        )
    ]
    conn.close()
    for name, fieldset in FIELDSETS.items():
        if fieldset:
            narrow = partial(projected, names=frozenset(fieldset.split(",")) | {"id"})
            alone = median_ms(lambda: list(map(narrow, documents)), args.repeat)  # noqa: B023
            print(f"narrowing 1,000 documents to {name} ({fieldset}) alone: {alone:.2f} ms")
    print(f"fields: {', '.join(f'{n}={f}' for n, f in FIELDSETS.items() if f)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
