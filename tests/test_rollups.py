"""The rollups answer what the raw aggregate over the events answers, after any
sequence of writes, edits and deletions (hypothesis), and a maintained rollup
equals one rebuilt from the events."""

import datetime
import random
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.store.sqlite import rollups, stats
from api.store.sqlite.layout import open_for_writing
from api.store.sqlite.writes import delete_events, write_events
from seed.synthetic import generate_batch

# Four months of synthetic events: several per day, month- and year-precise ones,
# every event type, region, weapon and casualty qualifier.
UNTIL = datetime.date(2022, 6, 30)
D = datetime.date

# Requests covering every plan: each rollup, month rollups with day edges, and the
# events themselves (actor and q are read from the events).
REQUESTS: list[dict[str, Any]] = [
    {},
    {"group_by": "event_type"},
    {"group_by": "admin1"},
    {"group_by": "country"},
    {"interval": "day"},
    {"interval": "week"},
    {"interval": "month"},
    {"event_type": ["drone_strike"], "interval": "week"},
    # Whole weeks (Monday to Sunday) read the week rollup; a range cutting a week, days.
    {
        "weapon": ["drone"],
        "interval": "week",
        "date_from": D(2022, 3, 7),
        "date_to": D(2022, 4, 24),
    },
    {"country": "UA", "interval": "week", "date_from": D(2022, 3, 9)},
    {"weapon": ["drone", "missile"]},
    {"event_type": ["missile_strike"], "interval": "day"},
    {"admin1": "KHARKIV OBLAST", "interval": "day"},
    {"admin1": "Kharkiv Oblast", "group_by": "event_type"},
    {
        "admin1": "kharkiv oblast",
        "event_type": ["drone_strike", "missile_strike"],
        "interval": "week",
    },
    {
        "group_by": "admin1",
        "event_type": ["armed_clash"],
        "date_from": D(2022, 3, 1),
        "date_to": D(2022, 5, 31),
    },
    {"date_from": D(2022, 3, 10), "date_to": D(2022, 5, 20), "group_by": "admin1"},
    {"date_from": D(2022, 3, 1), "date_to": D(2022, 4, 30), "interval": "month"},
    # Small multiples by type and by region, and a region's series with days at the
    # range's start.
    {"group_by": "event_type", "interval": "week"},
    {"group_by": "admin1", "interval": "month"},
    {"admin1": "Kharkiv Oblast", "interval": "month", "date_from": D(2022, 3, 10)},
    {"date_from": D(2022, 4, 2), "date_to": D(2022, 4, 20), "weapon": ["drone"]},
    {"date_to": D(2022, 5, 15), "country": "UA", "event_type": ["drone_strike", "armed_clash"]},
    {"bbox": (35.0, 48.0, 38.0, 51.0), "interval": "month"},
    {"bbox": (-180.0, -90.0, 180.0, 90.0), "interval": "week"},  # every place
    {"location": "Kharkiv", "date_from": D(2022, 3, 20)},
    {"actor": "russia", "group_by": "event_type"},
]

# interval -> the date precisions a series of it draws, summed together in each
# period: what a series reads (api/stats.py), from a series rollup where one holds them.
DRAWN = {
    "day": ("day",),
    "week": ("day", "week"),
    "month": ("day", "week", "month"),
    "year": ("day", "week", "month", "year"),
}


def series_reads(args: dict[str, Any]) -> list[dict[str, Any]]:
    """The keyword arguments of stats.totals for each way a request's totals are
    read: by precision, and as a series draws them."""
    if "interval" not in args:
        return [{}]
    return [{}, {"precisions": DRAWN[args["interval"]], "by_precision": False}]


OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["write", "edit", "delete"]), st.integers(0, 2**32)),
    min_size=1,
    max_size=6,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPERATIONS)
def test_rollups_equal_the_raw_aggregate(operations: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = open_for_writing(str(Path(folder) / "salvo.db"))
        with db.atomic():
            write_events(db, generate_batch(0, 60, 1, UNTIL))
        for operation, seed in operations:
            rng = random.Random(seed)
            ids = [row[0] for row in db.conn.execute("SELECT id FROM events ORDER BY id")]
            with db.atomic():
                if operation == "write":
                    write_events(db, generate_batch(rng.randrange(10**6), 20, seed, UNTIL))
                elif operation == "edit" and ids:
                    # New content (date, type, place, munitions, figures) under old ids.
                    chosen = rng.sample(ids, min(5, len(ids)))
                    fresh = generate_batch(0, len(chosen), seed, UNTIL)
                    write_events(db, [{**e, "id": i} for e, i in zip(fresh, chosen, strict=True)])
                elif ids:
                    now = datetime.datetime.now(datetime.UTC)
                    delete_events(db, rng.sample(ids, min(8, len(ids))), now)
        for args in REQUESTS:
            for read in series_reads(args):
                rolled_up = stats.totals(db.conn, args, **read)
                assert rolled_up == stats.totals(db.conn, args, raw=True, **read), (args, read)
        # The event counts of /locations and /sources.
        for table, column in (("stats_totals", "location_id"), ("stats_sources", "source_id")):
            counted = f"SELECT {column}, sum(events) FROM {table} WHERE category = '' GROUP BY 1"
            raw = f"SELECT {column}, count(*) FROM events GROUP BY 1"
            assert dict(db.conn.execute(counted)) == dict(db.conn.execute(raw))
        maintained = {table: rollups.table_rows(db.conn, table) for table in rollups.TABLES}
        with db.atomic():
            rollups.rebuild(db.conn)
        assert maintained == {t: rollups.table_rows(db.conn, t) for t in rollups.TABLES}
        db.close()


def test_every_rollup_is_read_by_some_request(seeded_db: Path) -> None:
    conn = sqlite3.connect(seeded_db)
    read = {
        part.source.rollup.table if part.source.rollup else "events"
        for args in REQUESTS
        for series in series_reads(args)
        for part in stats.plan(conn, args, series.get("precisions"))
    }
    # stats_sources holds /sources' event counts only.
    assert read == {*(rollup.table for rollup in rollups.ROLLUPS), "events"} - {"stats_sources"}


def test_a_database_from_before_the_rollups_gets_them_filled(tmp_path: Path) -> None:
    path = str(tmp_path / "older.db")
    db = open_for_writing(path)
    with db.atomic():
        write_events(db, generate_batch(0, 40, 3, UNTIL))
    for table in rollups.TABLES:
        db.execute(f"DROP TABLE {table}")
    db.conn.commit()
    db.close()
    # What `python -m seed` and `python -m api init` open it with.
    db = open_for_writing(path)
    (events,) = db.conn.execute(
        "SELECT sum(events) FROM stats_totals WHERE category = ''"
    ).fetchone()
    assert events == 40
    assert stats.totals(db.conn, {"interval": "day"}) == stats.totals(
        db.conn, {"interval": "day"}, raw=True
    )
    db.close()
