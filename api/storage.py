"""The SQLite layout and the one code path that writes events into it.

Events are normalised into tables that the query layer filters on (munitions,
actors, reporters, places, sources, a full-text index, an R*Tree of places) and
also kept whole in `events.body`: the JSON document the API returns, rendered
when the event is written. Reads then serve a page by joining stored documents
instead of serialising every row (see docs/design.md).
"""

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import sqlite_utils

from schemas.event import render_event
from schemas.vocabulary import MUNITION_CATEGORIES

# Bit i of events.weapons is set when the event has a munition entry of the i-th
# category, so the weapon filter is a cheap test on the row being scanned.
WEAPON_BITS = {category: 1 << i for i, category in enumerate(MUNITION_CATEGORIES)}

BATCH_SIZE = 2000


def open_for_writing(path: str) -> sqlite_utils.Database:
    """Open (creating if needed) the database for a writer, with its tables in place."""
    db = sqlite_utils.Database(path)
    db.enable_wal()
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA busy_timeout = 5000")
    create_tables(db)
    return db


def create_tables(db: sqlite_utils.Database) -> None:
    """Create every table, index and virtual table the API reads; safe to call again."""
    db["sources"].create(
        {"id": str, "title": str, "publisher": str, "url": str, "published": str, "reference": str},
        pk="id",
        not_null={"title", "published"},
        if_not_exists=True,
    )
    db["locations"].create(
        {
            "id": str,
            "name": str,
            "admin1": str,
            "country": str,
            "country_code": str,
            "latitude": float,
            "longitude": float,
            "precision": str,
        },
        pk="id",
        not_null={"name", "country", "country_code", "latitude", "longitude", "precision"},
        if_not_exists=True,
    )
    db["events"].create(
        {
            "id": str,
            "event_type": str,
            "date": str,
            "date_precision": str,
            "location_id": str,
            # Copied from the place so that filters on them walk one index in date order.
            "country_code": str,
            "admin1": str,
            "source_id": str,
            "weapons": int,
            "killed_best": int,
            "killed_low": int,
            "killed_high": int,
            "killed_qualifier": str,
            "injured_best": int,
            "injured_low": int,
            "injured_high": int,
            "injured_qualifier": str,
            "notes": str,
            "body": str,
        },
        pk="id",
        not_null={
            "event_type",
            "date",
            "date_precision",
            "location_id",
            "country_code",
            "source_id",
            "weapons",
            "body",
        },
        foreign_keys=[("location_id", "locations", "id"), ("source_id", "sources", "id")],
        if_not_exists=True,
    )
    db["actors"].create(
        {"name": str, "kind": str}, pk="name", not_null={"kind"}, if_not_exists=True
    )
    db["event_actors"].create(
        {"event_id": str, "position": int, "actor_name": str, "role": str},
        pk=("event_id", "position"),
        not_null={"actor_name", "role"},
        foreign_keys=[("event_id", "events", "id"), ("actor_name", "actors", "name")],
        if_not_exists=True,
    )
    db["munitions"].create(
        {
            "event_id": str,
            "position": int,
            "category": str,
            "model": str,
            "launched": int,
            "intercepted": int,
            "not_reached": int,
            "hit": int,
            "reported_by": str,
        },
        pk=("event_id", "position"),
        not_null={"category"},
        foreign_keys=[("event_id", "events", "id")],
        if_not_exists=True,
    )
    db["reporters"].create(
        {"event_id": str, "position": int, "name": str, "kind": str, "title": str},
        pk=("event_id", "position"),
        not_null={"name", "kind"},
        foreign_keys=[("event_id", "events", "id")],
        if_not_exists=True,
    )
    # Full-text search over the notes and the place name; rowid is events.rowid.
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(notes, place)")
    # Places as points in an R*Tree for bbox and near; id is locations.rowid.
    db.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS locations_rtree "
        "USING rtree(id, min_lon, max_lon, min_lat, max_lat)"
    )
    # Every filter and sort has an index ending in the keyset tie-breaker `id`,
    # so a page is one ordered index walk that stops after `limit` rows.
    for name, definition in {
        "events_date": "events (date, id)",
        "events_type_date": "events (event_type, date, id)",
        "events_country_date": "events (country_code, date, id)",
        "events_admin1_date": "events (admin1 COLLATE NOCASE, date, id)",
        "events_location_date": "events (location_id, date, id)",
        "events_source": "events (source_id)",
        "events_killed": "events (coalesce(killed_best, -1), id)",
        "events_injured": "events (coalesce(injured_best, -1), id)",
        "locations_name": "locations (name COLLATE NOCASE)",
        "locations_admin1": "locations (admin1 COLLATE NOCASE)",
        "locations_country": "locations (country_code)",
        "event_actors_actor": "event_actors (actor_name, event_id)",
        "munitions_category": "munitions (category, event_id)",
    }.items():
        db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}")


def write_events(db: sqlite_utils.Database, events: Iterable[dict[str, Any]]) -> int:
    """Upsert validated events (as EventSchema.load returns them) with their places,
    sources, actors, munitions and reporters, replacing what each event had before.

    The caller owns the transaction: wrap the call in ``db.atomic()`` so that a
    failure leaves the database as it was. Returns the number of events written.
    """
    count = 0
    for batch in _batches(iter(events)):
        _write_batch(db, batch)
        count += len(batch)
    return count


def _batches(events: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    while batch := list(islice(events, BATCH_SIZE)):
        yield batch


def _write_batch(db: sqlite_utils.Database, events: list[dict[str, Any]]) -> None:
    locations = {event["location"]["id"]: event["location"] for event in events}
    sources = {event["source"]["id"]: event["source"] for event in events}
    actors = {actor["name"]: actor["kind"] for event in events for actor in event["actors"]}
    db["locations"].upsert_all(locations.values(), pk="id")
    db["sources"].upsert_all(
        ({**source, "published": source["published"].isoformat()} for source in sources.values()),
        pk="id",
    )
    db["actors"].upsert_all(({"name": n, "kind": k} for n, k in actors.items()), pk="name")
    db["events"].upsert_all((_event_row(event) for event in events), pk="id")

    ids = [event["id"] for event in events]
    marks = ", ".join("?" for _ in ids)
    for table in ("event_actors", "munitions", "reporters"):
        db.execute(f"DELETE FROM {table} WHERE event_id IN ({marks})", ids)
    db["event_actors"].insert_all(
        {"event_id": event["id"], "position": i, "actor_name": actor["name"], "role": actor["role"]}
        for event in events
        for i, actor in enumerate(event["actors"])
    )
    db["munitions"].insert_all(
        {"event_id": event["id"], "position": i, **munition}
        for event in events
        for i, munition in enumerate(event["munitions"])
    )
    db["reporters"].insert_all(
        {"event_id": event["id"], "position": i, **reporter}
        for event in events
        for i, reporter in enumerate(event["reported_by"])
    )

    rowids = dict(db.execute(f"SELECT id, rowid FROM events WHERE id IN ({marks})", ids).fetchall())
    db.execute(f"DELETE FROM events_fts WHERE rowid IN ({marks})", [rowids[i] for i in ids])
    db.conn.executemany(
        "INSERT INTO events_fts (rowid, notes, place) VALUES (?, ?, ?)",
        [
            (
                rowids[event["id"]],
                event["notes"],
                " ".join(filter(None, (event["location"]["name"], event["location"]["admin1"]))),
            )
            for event in events
        ],
    )
    place_rowids = db.execute(
        f"SELECT rowid, longitude, latitude FROM locations WHERE id IN "
        f"({', '.join('?' for _ in locations)})",
        list(locations),
    ).fetchall()
    db.conn.executemany(
        "INSERT OR REPLACE INTO locations_rtree VALUES (?, ?, ?, ?, ?)",
        [(rowid, lon, lon, lat, lat) for rowid, lon, lat in place_rowids],
    )


def _event_row(event: dict[str, Any]) -> dict[str, Any]:
    location, casualties = event["location"], event["casualties"]
    row = {
        "id": event["id"],
        "event_type": event["event_type"],
        "date": event["date"].isoformat(),
        "date_precision": event["date_precision"],
        "location_id": location["id"],
        "country_code": location["country_code"],
        "admin1": location["admin1"],
        "source_id": event["source"]["id"],
        "weapons": sum({WEAPON_BITS[m["category"]] for m in event["munitions"]}),
        "notes": event["notes"],
        "body": render_event(event).decode(),
    }
    for kind in ("killed", "injured"):
        estimate = casualties[kind] or {}
        for part in ("best", "low", "high", "qualifier"):
            row[f"{kind}_{part}"] = estimate.get(part)
    return row
