"""Writers under contention, against the server as `make run` starts it (issue 18,
item 17):

1. reads/s of a page while 8 writers POST in a loop, first with no other writer,
   then while another process holds the database's write lock (BEGIN EXCLUSIVE) for
   the whole phase: the second figure as a ratio of the first, measured in the same
   run;
2. 2,000 single-event POSTs from 8, 16 and 32 concurrent writers and no other
   process: how many were answered 503.

    .venv/bin/python bench/writers.py [--seconds 8]

The database is a copy of var/soak.db (100,000 synthetic events; built on first use).
"""

import argparse
import concurrent.futures
import copy
import sqlite3
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.soak import EXAMPLE, Client, Tally, ensure_database, live_copy  # noqa: E402
from tests.server import serving  # noqa: E402

PAGE = "/api/v1/events?event_type=missile_strike&date_from=2024-01-01&limit=100"


def reads_per_second(url: str, key: str, seconds: float, writers: int, prefix: str) -> float:
    """Reads/s of PAGE from 4 readers while `writers` POST in a loop."""
    stop = time.monotonic() + seconds
    tally = Tally()

    def reader() -> None:
        client = Client(url, key, tally)
        while time.monotonic() < stop:
            client.call("read", "GET", PAGE)

    def writer(n: int) -> None:
        client, i = Client(url, key, tally), 0
        while time.monotonic() < stop:
            event = {**copy.deepcopy(EXAMPLE), "id": f"{prefix}-{n}-{i}"}
            client.call("create", "POST", "/api/v1/events", {"events": [event]})
            i += 1

    threads = [threading.Thread(target=reader) for _ in range(4)]
    threads += [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally.statuses["read"][200] / (time.monotonic() - started)


def burst(url: str, key: str, writers: int, total: int, prefix: str) -> Counter[int]:
    """The statuses of `total` single-event POSTs sent by `writers` at once."""
    tally = Tally()

    def post(n: int) -> None:
        event = {**copy.deepcopy(EXAMPLE), "id": f"{prefix}-{n}"}
        Client(url, key, tally).call("create", "POST", "/api/v1/events", {"events": [event]})

    with concurrent.futures.ThreadPoolExecutor(writers) as pool:
        list(pool.map(post, range(total)))
    return tally.statuses["create"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--db", type=Path, default=ROOT / "var" / "soak.db")
    args = parser.parse_args()
    ensure_database(args.db)
    live, key = live_copy(args.db, "writers-live.db", "Writers bench", "write")
    env = {"SALVO_RATE_LIMITS": "off"}
    with serving(live, live.with_suffix(".log"), env=env) as server:
        free = reads_per_second(server.url, key, args.seconds, 8, "free")
        holder = sqlite3.connect(live, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            locked = reads_per_second(server.url, key, args.seconds, 8, "locked")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        print(f"\nreads/s of a page (4 readers) beside 8 writers, {args.seconds:g} s each")
        print(f"  no other writer:                         {free:8.0f}")
        print(f"  another process holding the write lock:  {locked:8.0f}  ({locked / free:.2f}x)")
        print("\n2,000 single-event POSTs, no other process writing")
        for writers in (8, 16, 32):
            statuses = burst(server.url, key, writers, 2000, f"burst-{writers}")
            shown = ", ".join(f"{status}: {count:,}" for status, count in sorted(statuses.items()))
            print(f"  {writers:>2} concurrent writers: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
