"""What a change to a shared place or source costs: every event that copies it is
re-rendered and written again in the writer's transaction (docs/design.md, "Shared
records"; issue 21, item 5).

    .venv/bin/python -m seed synthetic --events 100000 --db var/p.db
    .venv/bin/python bench/shared_places.py --db var/p.db

Each case writes one new event per place (or source) it changes, carrying the
change, as the seed or an import would, and is rolled back, so the database is left
as it was and the cases are independent:
- the busiest place renamed, and its admin1 changed (which moves its events in the
  stats rollups), through write_events (the curated seed's path);
- the busiest source retitled;
- every place renamed at once (every event re-rendered), and every place's admin1
  changed, through write_events; every place renamed through a bulk load (an
  import's path), beside the same bulk write with no place changed (the index and
  rollup rebuild every bulk load pays).
"""

import argparse
import datetime
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlite_utils import Database  # noqa: E402

from api.store.sqlite.layout import next_seq, open_for_writing  # noqa: E402
from api.store.sqlite.writes import bulk_load, event_rows, insert_rows, write_events  # noqa: E402
from seed.synthetic import generate_batch  # noqa: E402

PLACE = ("id", "name", "admin1", "country", "country_code", "latitude", "longitude", "precision")
SOURCE = ("id", "title", "publisher", "url", "published", "reference")
UNTIL = datetime.date(2026, 1, 1)


def records(
    db: Database, table: str, columns: tuple[str, ...], where: str, params: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    return [
        dict(zip(columns, row, strict=True))
        for row in db.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE {where}", params)
    ]


def carrying(
    places: list[dict[str, Any]], source: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One new event at each place (with this source, if given)."""
    events = generate_batch(10**8, len(places), 7, UNTIL)
    for event, place in zip(events, places, strict=True):
        event["location"] = place
        if source is not None:
            event["source"] = source
    return events


def timed(db: Database, label: str, events: list[dict[str, Any]], bulk: bool = False) -> None:
    first = next_seq(db.conn)
    started = time.perf_counter()
    db.execute("BEGIN")
    try:
        if bulk:
            with bulk_load(db) as loading:
                insert_rows(
                    db, event_rows(events, datetime.datetime.now(datetime.UTC)), bulk=loading
                )
        else:
            write_events(db, events)
        seconds = time.perf_counter() - started
        written = next_seq(db.conn) - first
    finally:
        db.execute("ROLLBACK")
    print(f"{label:<58} {written:>9,} {seconds:>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=str(ROOT / "var" / "p.db"))
    args = parser.parse_args()
    db = open_for_writing(args.db)
    (total,) = db.execute("SELECT count(*) FROM events").fetchone()
    busiest, copies = db.execute(
        "SELECT location_id, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
    ).fetchone()
    (place,) = records(db, "locations", PLACE, "id = ?", (busiest,))
    source_id, cited = db.execute(
        "SELECT source_id, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
    ).fetchone()
    (source,) = records(db, "sources", SOURCE, "id = ?", (source_id,))
    source["published"] = datetime.date.fromisoformat(source["published"])
    places = records(db, "locations", PLACE, "id IN (SELECT location_id FROM events)")
    print(f"{args.db}: {total:,} events; {busiest} has {copies:,}, {source_id} {cited:,}")
    print(f"{'case':<58} {'written':>9} {'seconds':>8}")
    timed(db, "one event, no place changed (write_events)", carrying([place]))
    timed(
        db,
        f"{busiest} renamed (write_events)",
        carrying([{**place, "name": f"{place['name']} (renamed)"}]),
    )
    timed(
        db,
        f"{busiest}'s admin1 changed (write_events)",
        carrying([{**place, "admin1": "Renamed region"}]),
    )
    timed(
        db,
        f"{source_id} retitled (write_events)",
        carrying([place], {**source, "title": "Retitled"}),
    )
    renamed = [{**p, "name": f"{p['name']} (renamed)"} for p in places]
    timed(db, f"all {len(places)} places renamed (write_events)", carrying(renamed))
    regions = [{**p, "admin1": f"{p['admin1']} (renamed)"} for p in places]
    timed(db, f"all {len(places)} places' admin1 changed (write_events)", carrying(regions))
    timed(db, f"{len(places)} events, no place changed (bulk load)", carrying(places), True)
    timed(db, f"all {len(places)} places renamed (bulk load)", carrying(renamed), True)
    db.close()


if __name__ == "__main__":
    main()
