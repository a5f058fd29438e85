"""A synthetic load into PostgreSQL with a reader asking throughout (issue 22, item 3):
how long `python -m seed synthetic --events N` takes on a throwaway server
(tests/postgres.py: fsync off, so the figure is the load's work, not the disk's),
and the latency of GET /api/v1/events?limit=10 (Flask test client, its own
connections) before, during and after it; and a partner's POST of one event every
half second meanwhile (their statuses and latencies: a write waits for the change
counter only while a slice of the load is merged).

    .venv/bin/python bench/pg_import.py [--events 1000000] [--workers 2]

The curated events are loaded first, so that the reader has something to read.
"""

import argparse
import itertools
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api import create_app  # noqa: E402
from api.store import open_store  # noqa: E402
from ops.postgres import start_server, stop_server_in  # noqa: E402

PAGE = "/api/v1/events?limit=10"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    server = start_server()
    try:
        server.admin("CREATE DATABASE bench")
        url = server.url("bench")
        seed = [sys.executable, "-m", "seed", "--db", url]
        subprocess.run(seed, cwd=ROOT, check=True, capture_output=True)
        api = create_app({"DATABASE": url, "RATE_LIMITS_ENABLED": False}).test_client()
        keys = open_store(url)
        key = keys.create_key("bench partner", "write")
        keys.close()
        event = orjson.loads((ROOT / "examples" / "new-events.json").read_bytes())["events"][0]
        writes: list[tuple[int, float]] = []
        latencies: list[float] = []
        statuses: list[int] = []
        failed: list[float] = []  # when each read that did not answer 200 ended
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                status = api.get(PAGE).status_code
                latencies.append(time.perf_counter() - started)
                statuses.append(status)
                if status != 200:
                    failed.append(time.perf_counter())

        def write() -> None:
            partner = create_app({"DATABASE": url, "RATE_LIMITS_ENABLED": False}).test_client()
            for number in itertools.count():
                if stop.wait(0.5):
                    return
                started = time.perf_counter()
                status = partner.post(
                    "/api/v1/events",
                    json={"events": [{**event, "id": f"{event['id']}-bench-{number}"}]},
                    headers={"Authorization": f"Bearer {key}"},
                ).status_code
                writes.append((status, time.perf_counter() - started))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        time.sleep(1)
        before = len(latencies)
        started = time.perf_counter()
        load = [*seed, "synthetic", "--events", str(args.events), "--workers", str(args.workers)]
        done = subprocess.run(load, cwd=ROOT, capture_output=True, text=True)
        ended = time.perf_counter()
        seconds = ended - started
        during = latencies[before:]
        time.sleep(5)
        stop.set()
        reader.join()
        writer.join()
        print(done.stdout.strip() or done.stderr.strip())
        if done.returncode:
            return 1
        ordered = sorted(during)
        print(
            f"{args.events:,} events in {seconds:.1f} s ({args.events / seconds:,.0f} events/s); "
            f"{len(during)} reads of {PAGE} during it: median "
            f"{statistics.median(during) * 1000:.1f} ms, p99 "
            f"{ordered[int(len(ordered) * 0.99)] * 1000:.1f} ms, max {ordered[-1] * 1000:.0f} ms; "
            f"statuses during it {Counter(statuses[before : before + len(during)])}"
        )
        if failed:
            offsets = sorted({round(at - ended, 1) for at in failed})
            print(f"reads not answered 200 ended at these s from the load's end: {offsets}")
        write_seconds = sorted(seconds for _, seconds in writes)
        print(
            f"{len(writes)} partner POSTs meanwhile: statuses "
            f"{Counter(status for status, _ in writes)}, median "
            f"{statistics.median(write_seconds) * 1000:.0f} ms, "
            f"max {write_seconds[-1] * 1000:.0f} ms"
        )
        after = latencies[before + len(during) :]
        print(
            f"{len(after)} reads in the 5 s after it: max {max(after) * 1000:.0f} ms; "
            f"statuses {Counter(statuses[before + len(during) :])}"
        )
        return 0
    finally:
        stop_server_in(server.directory)


if __name__ == "__main__":
    sys.exit(main())
