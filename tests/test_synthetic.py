"""python -m seed synthetic: deterministic, validated, and the same whatever the workers. On SQLite
files; the same load into PostgreSQL is compared with SQLite's in
tests/test_postgresql_seed.py."""

import datetime
import sqlite3
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.event import EventSchema
from seed.__main__ import main as seed_main
from seed.synthetic import FIRST_DAY, generate_records, loaded
from tests.test_seed import snapshot

ARGS = ["synthetic", "--events", "2500", "--seed", "7", "--until", "2026-11-26"]


def seed(path: Path, *extra: str) -> None:
    assert seed_main(["--db", str(path), *ARGS, *extra]) == 0


def test_the_same_seed_gives_the_same_database_with_any_number_of_workers(tmp_path: Path) -> None:
    seed(tmp_path / "one.db", "--workers", "1")
    seed(tmp_path / "two.db", "--workers", "2")
    assert snapshot(tmp_path / "one.db") == snapshot(tmp_path / "two.db")


def test_another_seed_gives_other_events(tmp_path: Path) -> None:
    seed(tmp_path / "a.db", "--workers", "1")
    assert (
        seed_main(["--db", str(tmp_path / "b.db"), *ARGS[:4], "8", *ARGS[5:], "--workers", "1"])
        == 0
    )
    a = snapshot(tmp_path / "a.db")["event_documents"]
    b = snapshot(tmp_path / "b.db")["event_documents"]
    assert len(a) == len(b) == 2500
    assert a != b


def test_a_bulk_load_leaves_the_database_in_wal_mode(tmp_path: Path) -> None:
    # The load runs with a rollback journal when it can; readers need the WAL back.
    path = tmp_path / "bulk.db"
    seed(path, "--workers", "1")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_bulk_load_beside_an_open_reader_keeps_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "served.db"
    seed(path, "--workers", "1")
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert reader.execute("SELECT count(*) FROM events").fetchone() == (2500,)
    seed_main(["--db", str(path), *ARGS[:4], "8", *ARGS[5:], "--workers", "1"])
    # The reader was never locked out, and sees the second load once it commits.
    assert reader.execute("SELECT count(*) FROM events").fetchone() == (5000,)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_every_generated_event_is_valid_and_in_range(tmp_path: Path) -> None:
    path = tmp_path / "valid.db"
    seed(path, "--workers", "2")
    conn = sqlite3.connect(path)
    schema = EventSchema()
    dates = set()
    for (body,) in conn.execute("SELECT body FROM event_documents"):
        event = orjson.loads(body)
        event.pop("acled")
        updated_at = datetime.datetime.fromisoformat(event.pop("updated_at"))
        assert updated_at == datetime.datetime(2026, 11, 26, tzinfo=datetime.UTC)
        loaded = schema.load(event)
        assert orjson.dumps(schema.dump({**loaded, "updated_at": updated_at})) == body.encode()
        dates.add(event["date"])
    assert min(dates) >= "2022-01-01"  # a year-precise 2022 event is dated 1 January
    assert max(dates) <= "2026-11-26"
    (events,) = conn.execute("SELECT count(*) FROM events").fetchone()
    assert events == 2500


def test_the_mix_looks_like_real_data(tmp_path: Path) -> None:
    path = tmp_path / "mix.db"
    seed(path, "--workers", "1")
    conn = sqlite3.connect(path)
    types = dict(conn.execute("SELECT event_type, count(*) FROM events GROUP BY 1"))
    assert set(types) == {
        "drone_strike", "missile_strike", "air_defense_interception", "armed_clash",
        "ground_assault", "territory_change", "troop_movement", "strategic_development",
    }  # fmt: skip
    precisions = dict(conn.execute("SELECT date_precision, count(*) FROM events GROUP BY 1"))
    assert precisions["day"] > 0.85 * 2500 and precisions["month"] > 0 and precisions["year"] > 0
    (unknown_launches,) = conn.execute(
        "SELECT count(*) FROM munitions WHERE launched IS NULL"
    ).fetchone()
    assert unknown_launches > 0
    (lower_bounds,) = conn.execute(
        "SELECT count(*) FROM events WHERE killed_qualifier = 'at_least'"
    ).fetchone()
    assert lower_bounds > 0


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    start=st.integers(0, 10_000_000),
    until=st.dates(FIRST_DAY + datetime.timedelta(days=1), datetime.date(2035, 12, 31)),
)
def test_load_accepts_every_generated_record_and_returns_what_loaded_builds(
    seed: int, start: int, until: datetime.date
) -> None:
    # What lets the synthetic loader skip EventSchema.load (seed/synthetic.py): over
    # streams of any seed, position and end date, every record validates, and load
    # returns exactly what `loaded` builds, to the last default it fills in.
    schema = EventSchema()
    for record in generate_records(start, 50, seed, until):
        assert schema.load(record) == loaded(record)
