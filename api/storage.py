"""The SQLite layout and the one code path that writes events into it.

Events are normalised into tables that the query layer filters on (munitions,
actors, reporters, places, sources, a full-text index) and also kept whole in
`events.body`: the JSON document the API returns, rendered by EventSchema when
the event is written. Reads then serve a page by joining stored documents
instead of re-serialising every row (see docs/design.md).
"""

from collections.abc import Iterable
from typing import Any

import orjson
import sqlite_utils

from schemas.event import EventSchema

_EVENT_SCHEMA = EventSchema()


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
        {
            "id": str,
            "title": str,
            "publisher": str,
            "url": str,
            "published": str,
            "reference": str,
        },
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
            "source_id": str,
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
        not_null={"event_type", "date", "date_precision", "location_id", "source_id", "body"},
        foreign_keys=[("location_id", "locations", "id"), ("source_id", "sources", "id")],
        if_not_exists=True,
    )
    db["actors"].create(
        {"name": str, "kind": str},
        pk="name",
        not_null={"kind"},
        if_not_exists=True,
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
    for table, columns in (
        ("events", ["date", "id"]),
        ("events", ["event_type", "date", "id"]),
        ("events", ["location_id"]),
        ("events", ["source_id"]),
        ("locations", ["country_code"]),
        ("locations", ["admin1"]),
        ("event_actors", ["actor_name"]),
        ("munitions", ["category", "event_id"]),
    ):
        db[table].create_index(columns, if_not_exists=True)


def write_events(db: sqlite_utils.Database, events: Iterable[dict[str, Any]]) -> int:
    """Upsert validated events (as EventSchema.load returns them) with their places,
    sources, actors, munitions and reporters, replacing what each event had before.

    The caller owns the transaction: wrap the call in ``db.atomic()`` so that a
    failure leaves the database as it was. Returns the number of events written.
    """
    count = 0
    for event in events:
        _write_event(db, event)
        count += 1
    return count


def _write_event(db: sqlite_utils.Database, event: dict[str, Any]) -> None:
    location, source, casualties = event["location"], event["source"], event["casualties"]
    db["locations"].upsert(location, pk="id")
    db["sources"].upsert({**source, "published": source["published"].isoformat()}, pk="id")
    row = {
        "id": event["id"],
        "event_type": event["event_type"],
        "date": event["date"].isoformat(),
        "date_precision": event["date_precision"],
        "location_id": location["id"],
        "source_id": source["id"],
        "notes": event["notes"],
        "body": orjson.dumps(_EVENT_SCHEMA.dump(event)).decode(),
    }
    for kind in ("killed", "injured"):
        estimate = casualties.get(kind) or {}
        for part in ("best", "low", "high", "qualifier"):
            row[f"{kind}_{part}"] = estimate.get(part)
    db["events"].upsert(row, pk="id")

    for table in ("event_actors", "munitions", "reporters"):
        db.execute(f"DELETE FROM {table} WHERE event_id = ?", [event["id"]])
    for position, actor in enumerate(event["actors"]):
        db["actors"].upsert({"name": actor["name"], "kind": actor["kind"]}, pk="name")
        db["event_actors"].insert(
            {
                "event_id": event["id"],
                "position": position,
                "actor_name": actor["name"],
                "role": actor["role"],
            }
        )
    db["munitions"].insert_all(
        {"event_id": event["id"], "position": position, **munition}
        for position, munition in enumerate(event["munitions"])
    )
    db["reporters"].insert_all(
        {"event_id": event["id"], "position": position, **reporter}
        for position, reporter in enumerate(event["reported_by"])
    )

    (rowid,) = db.execute("SELECT rowid FROM events WHERE id = ?", [event["id"]]).fetchone()
    db.execute("DELETE FROM events_fts WHERE rowid = ?", [rowid])
    db.execute(
        "INSERT INTO events_fts (rowid, notes, place) VALUES (?, ?, ?)",
        [rowid, event["notes"], f"{location['name']} {location['admin1'] or ''}".strip()],
    )
