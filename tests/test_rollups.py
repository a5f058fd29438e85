"""The rollups answer what the raw aggregate over the events answers, after any
sequence of writes, edits and deletions (hypothesis), on both engines; on SQLite a
maintained rollup also equals one rebuilt from the events."""

import datetime
import itertools
import random
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.store import Store, command_author, open_store
from api.store.postgresql.dialect import Reading
from api.store.sqlite import rollups, stats
from api.store.sqlite.layout import open_for_writing
from api.store.sqlite.writes import write_events
from seed.synthetic import generate_batch
from tests.engines import on_postgresql, rows
from tests.postgres import new_database, scratch_database

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


@contextmanager
def read_connection(database: str) -> Iterator[Any]:
    """A connection the /stats planner reads through, on the database's engine."""
    if on_postgresql(database):
        with psycopg.connect(database, autocommit=True) as pg:
            yield Reading(pg)
        return
    sqlite_conn = sqlite3.connect(database)
    try:
        yield sqlite_conn
    finally:
        sqlite_conn.close()


_templates = itertools.count(1)


@pytest.fixture(scope="session")
def empty_databases(
    engine: str, request: pytest.FixtureRequest
) -> Callable[[], AbstractContextManager[str]]:
    """A new database of the test's engine with this release's layout and no events,
    one for each hypothesis example: a SQLite file in a folder of its own, or a copy
    of a migrated PostgreSQL database (a template copy is faster than a migration)."""
    if engine == "sqlite":

        @contextmanager
        def sqlite_file() -> Iterator[str]:
            with tempfile.TemporaryDirectory() as folder:
                path = str(Path(folder) / "salvo.db")
                open_for_writing(path).close()
                yield path

        return sqlite_file
    server = request.getfixturevalue("postgres_server")
    # Numbered: each module that imports the fixture makes its own.
    template = f"salvo_empty_template_{next(_templates)}"
    store = open_store(new_database(server, template))
    store.migrate()
    store.close()
    return lambda: scratch_database(server, template)


def write(store: Store, database: str, operation: str, seed: int) -> None:
    """One transaction of the store's writer: new events, new content under old ids
    (both through the seed's load, which folds each write into the rollups), or
    deletions."""
    rng = random.Random(seed)
    now = datetime.datetime.now(datetime.UTC)
    ids = sorted(event_id for (event_id,) in rows(database, "SELECT id FROM events"))
    with store.writer() as writer:
        if operation == "write":
            events = generate_batch(rng.randrange(10**6), 20, seed, UNTIL)
            writer.load_curated(events, command_author(), now)
        elif operation == "edit" and ids:
            # New content (date, type, place, munitions, figures) under old ids.
            chosen = rng.sample(ids, min(5, len(ids)))
            fresh = generate_batch(0, len(chosen), seed, UNTIL)
            edited = [{**e, "id": i} for e, i in zip(fresh, chosen, strict=True)]
            writer.load_curated(edited, command_author(), now)
        elif ids:
            for event_id in rng.sample(ids, min(8, len(ids))):
                writer.delete_event(event_id, writer.event(event_id).body, command_author(), now)


# Examples per engine: a PostgreSQL example costs ~1.5 s on this 2-core machine (a
# database copied from a template, most of it PostGIS's), four times a SQLite one;
# fewer keep the run short while still mixing every operation.
EXAMPLES = {"sqlite": 20, "postgresql": 8}


def test_rollups_equal_the_raw_aggregate(
    engine: str, empty_databases: Callable[[], AbstractContextManager[str]]
) -> None:
    @settings(
        max_examples=EXAMPLES[engine], deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(OPERATIONS)
    def rollups_equal_the_raw_aggregate(operations: list[tuple[str, int]]) -> None:
        with empty_databases() as database:
            store = open_store(database)
            try:
                with store.writer() as writer:
                    first = generate_batch(0, 60, 1, UNTIL)
                    writer.load_curated(
                        first, command_author(), datetime.datetime.now(datetime.UTC)
                    )
                for operation, seed in operations:
                    write(store, database, operation, seed)
            finally:
                store.close()
            assert_rollups_equal_the_raw_aggregate(database)

    rollups_equal_the_raw_aggregate()


def assert_rollups_equal_the_raw_aggregate(database: str) -> None:
    with read_connection(database) as conn:
        for args in REQUESTS:
            for read in series_reads(args):
                rolled_up = stats.totals(conn, args, **read)
                assert rolled_up == stats.totals(conn, args, raw=True, **read), (args, read)
    # The event counts of /locations and /sources.
    for table, column in (("stats_totals", "location_id"), ("stats_sources", "source_id")):
        counted = f"SELECT {column}, sum(events) FROM {table} WHERE category = '' GROUP BY 1"
        raw = f"SELECT {column}, count(*) FROM events GROUP BY 1"
        assert dict(rows(database, counted)) == dict(rows(database, raw))
    if on_postgresql(database):
        # SQLite only: rollups.rebuild, SQLite's statements (PostgreSQL's rollups
        # equal SQLite's after the same writes: tests/test_postgresql_store.py).
        return
    db = open_for_writing(database)
    maintained = {table: rollups.table_rows(db.conn, table) for table in rollups.TABLES}
    with db.atomic():
        rollups.rebuild(db.conn)
    assert maintained == {t: rollups.table_rows(db.conn, t) for t in rollups.TABLES}
    db.close()


def test_every_rollup_is_read_by_some_request(database: str) -> None:
    with read_connection(database) as conn:
        read = {
            part.source.rollup.table if part.source.rollup else "events"
            for args in REQUESTS
            for series in series_reads(args)
            for part in stats.plan(conn, args, series.get("precisions"))
        }
    # stats_sources holds /sources' event counts only.
    assert read == {*(rollup.table for rollup in rollups.ROLLUPS), "events"} - {"stats_sources"}


def test_a_database_from_before_the_rollups_gets_them_filled(tmp_path: Path) -> None:
    """SQLite only: a file from before the rollups (PostgreSQL's layout had them from
    its first version), filled when `python -m seed` or `api init` opens it."""
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
