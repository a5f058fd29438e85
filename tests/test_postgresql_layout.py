"""The PostgreSQL layout and its migrations (api/store/postgresql/), on a real
PostgreSQL 15 + PostGIS server (tests/postgres.py): migrate lays out every table and
index SQLite's layout has, twice is a no-op, a newer version is refused untouched, an
upgrade is one transaction; text sorts as bytes; the audit log is append-only; and
the change counter serialises writers so that seqs become visible in seq order."""

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
import sqlite_utils
from flask import Flask
from psycopg import errors

from api.__main__ import main as api_main
from api.store import filters
from api.store.postgresql import layout, migrations
from api.store.postgresql.layout import SCHEMA_VERSION, ForeignLayout, NewerSchema
from api.store.postgresql.migrations import IncompleteLayout, Step, migrate
from api.store.sqlite import layout as sqlite_layout
from ops.postgres import PostgresServer
from tests.postgres import scratch_database


@pytest.fixture
def conn(fresh_postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(fresh_postgres_url) as conn:
        yield conn


@pytest.fixture
def migrated(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    migrate(conn)
    return conn


def _sqlite_tables() -> dict[str, list[str]]:
    """SQLite's tables (not its virtual tables and their shadow tables) and columns."""
    db = sqlite_utils.Database(memory=True)
    sqlite_layout.create_tables(db)
    virtual = {"events_fts", "locations_rtree"}
    tables = {
        table.name: [column.name for column in table.columns]
        for table in db.tables
        if not any(table.name.startswith(name) for name in virtual)
    }
    db.close()
    return tables


def _sqlite_indexes() -> set[str]:
    db = sqlite_utils.Database(memory=True)
    sqlite_layout.create_tables(db)
    names = {
        name
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
    }
    db.close()
    return names


def _columns(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for table, column in conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    ):
        found.setdefault(table, []).append(column)
    return found


def _version(conn: psycopg.Connection[Any]) -> int | None:
    version = layout.schema_version(conn)
    conn.rollback()
    return version


def test_the_schema_version_is_that_of_the_last_step() -> None:
    assert migrations.newest_version(migrations.STEPS) == SCHEMA_VERSION
    # Version 1, the first this store lays out, is SQLite's version 1.
    assert migrations.FIRST_VERSION == 1 <= sqlite_layout.SCHEMA_VERSION


def test_migrate_lays_out_every_table_column_and_index_of_sqlites_layout(
    conn: psycopg.Connection[Any],
) -> None:
    migration = migrate(conn)

    assert (migration.before, migration.after, migration.upgraded) == (None, SCHEMA_VERSION, False)
    assert layout.missing_objects(conn) == []
    assert set(migration.created) == set(layout.expected_objects())
    columns = _columns(conn)
    for table, sqlite_columns in _sqlite_tables().items():
        added = {"locations": ["coordinates"]}.get(table, [])
        assert columns[table] == [*sqlite_columns, *added], table
    present = layout.present_objects(conn)
    assert _sqlite_indexes() <= {name for name, kind in present.items() if kind == "index"}
    assert _version(conn) == SCHEMA_VERSION
    # PostgreSQL's own: the single writer's counter, PostGIS points, the search column.
    assert conn.execute("SELECT highest_seq FROM change_counter").fetchall() == [(0,)]
    assert conn.execute("SELECT count(*) FROM change_history").fetchone() == (1,)
    definitions = dict(
        conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        ).fetchall()
    )
    assert "USING gist (coordinates)" in definitions["locations_coordinates"]
    assert "USING gist (((coordinates)::geometry))" in definitions["locations_box"]
    assert "USING gin (words)" in definitions["event_search_words"]
    assert columns["event_search"] == ["row_id", "date", "id", "words"]
    assert "lower(admin1)" in definitions["events_admin1_date"]
    for unique in ("events_seq", "event_tombstones_seq", "idx_events_id", "idx_locations_id"):
        assert definitions[unique].startswith("CREATE UNIQUE INDEX"), unique
    kind = conn.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'locations'::regclass AND attname = 'coordinates'"
    ).fetchone()
    assert kind == ("geography(Point,4326)",)


def test_every_text_column_compares_as_bytes_so_ids_sort_as_on_sqlite(
    migrated: psycopg.Connection[Any],
) -> None:
    conn = migrated
    collations = conn.execute(
        "SELECT table_name, column_name, collation_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND data_type = 'text' "
        "AND table_name = ANY(%s)",
        [list(layout.TABLES)],
    ).fetchall()
    assert collations
    assert {collation for _, _, collation in collations} == {"C"}, collations
    ids = ["ab", "a-b", "B", "a", "_z", "A", "é", "e"]
    for i, event_id in enumerate(ids):
        conn.execute(
            "INSERT INTO event_tombstones (id, seq, deleted_at, body) VALUES (%s, %s, '', '')",
            [event_id, i + 1],
        )
    by_column = [row[0] for row in conn.execute("SELECT id FROM event_tombstones ORDER BY id")]
    assert by_column == sorted(ids, key=lambda text: text.encode())
    # The database's own collation (ICU en-US in tests/postgres.py) would sort otherwise.
    by_default = [
        row[0]
        for row in conn.execute('SELECT id FROM event_tombstones ORDER BY id COLLATE "default"')
    ]
    assert by_default != by_column


def test_migrating_a_current_database_again_changes_nothing_and_waits_for_no_writer(
    migrated: psycopg.Connection[Any], fresh_postgres_url: str
) -> None:
    conn = migrated
    history = conn.execute("SELECT id FROM change_history").fetchone()
    oids = conn.execute("SELECT relname, oid FROM pg_class WHERE relname LIKE 'events%'").fetchall()
    conn.rollback()
    with psycopg.connect(fresh_postgres_url) as writer:
        layout.lock_changes(writer)  # a writer holds the counter's row
        started = time.monotonic()
        again = migrate(conn)
        assert time.monotonic() - started < 5
        writer.rollback()

    assert again.before == again.after == SCHEMA_VERSION
    assert (again.applied, again.created) == ([], [])
    assert again.described().endswith("this Salvo's; nothing to do")
    assert conn.execute("SELECT id FROM change_history").fetchone() == history
    assert (
        conn.execute("SELECT relname, oid FROM pg_class WHERE relname LIKE 'events%'").fetchall()
        == oids
    )


def test_migrate_creates_again_what_a_current_database_lacks(
    migrated: psycopg.Connection[Any],
) -> None:
    conn = migrated
    conn.execute("DROP INDEX events_admin1_date")
    conn.execute("DROP TRIGGER audit_log_no_delete ON audit_log")
    conn.commit()

    again = migrate(conn)

    assert sorted(again.created) == ["audit_log_no_delete", "events_admin1_date"]
    assert layout.missing_objects(conn) == []


def test_a_newer_schema_version_is_refused_and_left_untouched(
    migrated: psycopg.Connection[Any],
) -> None:
    conn = migrated
    conn.execute("UPDATE schema_version SET version = %s", [SCHEMA_VERSION + 1])
    conn.execute("DROP INDEX events_date")  # something this release would create
    conn.commit()

    with pytest.raises(NewerSchema) as refused:
        migrate(conn)

    assert f"schema version {SCHEMA_VERSION + 1}, newer than this Salvo's" in str(refused.value)
    assert "never downgrades" in refused.value.detail
    assert _version(conn) == SCHEMA_VERSION + 1
    assert layout.missing_objects(conn) == ["events_date"]


def test_salvo_tables_without_a_schema_version_are_refused(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TABLE events (id text)")
    conn.commit()

    with pytest.raises(ForeignLayout, match="not laid out by Salvo's PostgreSQL store"):
        migrate(conn)

    assert _version(conn) is None
    assert conn.execute("SELECT to_regclass('sources')").fetchone() == (None,)


def _add_column(conn: psycopg.Connection[Any]) -> str:
    conn.execute("ALTER TABLE sources ADD COLUMN IF NOT EXISTS licence text")
    return "sources gained a licence"


def _fail_after_changing(conn: psycopg.Connection[Any]) -> str:
    conn.execute("ALTER TABLE sources DROP COLUMN licence")
    conn.execute("DROP INDEX events_date")
    raise RuntimeError("the step failed half-way")


def test_an_upgrade_runs_its_steps_and_records_the_version_in_one_transaction(
    migrated: psycopg.Connection[Any],
) -> None:
    conn = migrated
    steps = migrations.STEPS
    second = Step(SCHEMA_VERSION + 1, "a test step", _add_column)
    upgraded = migrate(conn, (*steps, second))
    assert (upgraded.before, upgraded.after) == (SCHEMA_VERSION, SCHEMA_VERSION + 1)
    assert upgraded.upgraded
    assert upgraded.applied == [(second, "sources gained a licence")]
    assert f"{SCHEMA_VERSION + 1}: a test step; sources gained a licence" in upgraded.described()
    assert _version(conn) == SCHEMA_VERSION + 1

    third = Step(SCHEMA_VERSION + 2, "a failing step", _fail_after_changing)
    with pytest.raises(RuntimeError, match="half-way"):
        migrate(conn, (*steps, second, third))

    # Rolled back whole: the version, the dropped column and the dropped index.
    assert _version(conn) == SCHEMA_VERSION + 1
    assert "licence" in _columns(conn)["sources"]
    assert layout.missing_objects(conn) == []


def test_an_upgrade_that_leaves_the_layout_incomplete_is_rolled_back(
    migrated: psycopg.Connection[Any],
) -> None:
    conn = migrated

    def takes_an_index_name(conn: psycopg.Connection[Any]) -> None:
        conn.execute("DROP INDEX events_date")
        # CREATE INDEX IF NOT EXISTS then skips it: a relation has the name.
        conn.execute("CREATE VIEW events_date AS SELECT 1 AS one")

    with pytest.raises(IncompleteLayout, match="still lacks events_date"):
        migrate(
            conn,
            (*migrations.STEPS, Step(SCHEMA_VERSION + 1, "takes a name", takes_an_index_name)),
        )
    assert _version(conn) == SCHEMA_VERSION
    assert layout.missing_objects(conn) == []


# Version 1's event_search, as its layout created it (34229c7).
_EVENT_SEARCH_V1 = (
    "CREATE TABLE event_search (row_id bigint PRIMARY KEY REFERENCES events (row_id), "
    "words tsvector NOT NULL)"
)


def test_version_2_keeps_each_events_date_and_id_beside_its_words_with_the_same_answers(
    postgres_server: PostgresServer,
    seeded_postgres_template: str,
    open_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A cap the curated events pass, so that the totals read the most recent matches.
    monkeypatch.setattr(filters, "SEARCH_TOTALS_CAP", 3)
    capped = ["kharkiv", "-kharkiv", "oblast", "missile*"]
    searches = [*capped, "kyiv OR odesa", '"storm shadow"']
    paths = [
        f"/api/v1/{path}q={quote(q)}"
        for q in searches
        for path in ("stats?", "stats?interval=month&", "locations?", "events?limit=5&")
    ]
    with scratch_database(postgres_server, seeded_postgres_template) as url:
        # The answers of this release's layout, laid out by the seed.
        client = open_app(url).test_client()
        answers = {path: client.get(path).get_json() for path in paths}
        for q in searches:
            said = answers[f"/api/v1/stats?q={quote(q)}"]["meta"]["search_capped"]
            assert said is (q in capped), q
        # The database as version 1 laid it out: event_search without date and id.
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TEMP TABLE words AS SELECT row_id, words FROM event_search")
            conn.execute("DROP TABLE event_search")
            conn.execute(_EVENT_SEARCH_V1)
            conn.execute("INSERT INTO event_search SELECT row_id, words FROM words")
            conn.execute("CREATE INDEX event_search_words ON event_search USING gin (words)")
            conn.execute("UPDATE schema_version SET version = 1")
            assert _columns(conn)["event_search"] == ["row_id", "words"]
        # Served before `migrate`: what needs the new columns names the command.
        before = open_app(url).test_client().get("/api/v1/stats?q=kharkiv")
        assert before.status_code == 503, before.get_json()
        assert "run `python -m api migrate`" in before.get_json()["detail"]
        capsys.readouterr()

        assert api_main(["--db", url, "migrate"]) == 0

        said = capsys.readouterr().out
        assert "from schema version 1 to 2" in said
        assert "2: event_search keeps each event's date and id" in said
        with psycopg.connect(url) as conn:
            assert layout.schema_version(conn) == SCHEMA_VERSION == 2
            assert layout.missing_objects(conn) == []
            assert _columns(conn)["event_search"] == ["row_id", "date", "id", "words"]
            (events, copied) = conn.execute(
                "SELECT (SELECT count(*) FROM events), count(*) FROM event_search s "
                "JOIN events e ON e.row_id = s.row_id AND e.date = s.date AND e.id = s.id"
            ).fetchone() or (0, 0)
            assert events == copied > 0
        assert f"{events:,} events' words copied with their dates and ids" in said
        upgraded = open_app(url).test_client()
        for path in paths:
            assert upgraded.get(path).get_json() == answers[path], path
        with psycopg.connect(url) as conn:
            assert migrate(conn).described().endswith("nothing to do")


def test_the_audit_log_is_append_only(migrated: psycopg.Connection[Any]) -> None:
    conn = migrated
    conn.execute("INSERT INTO audit_log (at, action) VALUES ('2024-05-01T00:00:00Z', 'create')")
    conn.commit()
    for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log",
                      "TRUNCATE audit_log"):  # fmt: skip
        with pytest.raises(errors.RaiseException, match="append-only"):
            conn.execute(statement)
        conn.rollback()
    assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (1,)


def test_a_places_point_follows_its_latitude_and_longitude(
    migrated: psycopg.Connection[Any],
) -> None:
    conn = migrated
    conn.execute(
        "INSERT INTO locations (id, name, country, country_code, latitude, longitude, precision) "
        "VALUES ('kharkiv', 'Kharkiv', 'Ukraine', 'UA', 49.9935, 36.2304, 'city')"
    )
    point = "SELECT ST_Y(coordinates::geometry), ST_X(coordinates::geometry) FROM locations"
    assert conn.execute(point).fetchone() == (49.9935, 36.2304)
    conn.execute("UPDATE locations SET latitude = 46.4825, longitude = 30.7233")
    assert conn.execute(point).fetchone() == (46.4825, 30.7233)


def _tombstones(conn: psycopg.Connection[Any], first: int, count: int, writer: str) -> None:
    conn.execute(
        "INSERT INTO event_tombstones (id, seq, deleted_at, body) "
        "SELECT %s || '-' || n, n, '', '' FROM generate_series(%s::bigint, %s::bigint) AS n",
        [writer, first, first + count - 1],
    )


def test_writers_take_unique_seqs_from_the_counter_and_commit_them_in_seq_order(
    migrated: psycopg.Connection[Any], fresh_postgres_url: str
) -> None:
    """Four writers, each 15 transactions of 1-3 changes, while a reader looks again and
    again: every seq is taken once, none is lost, and the reader never sees a seq
    before every lower one is visible (what a /changes mirror rests on)."""
    writers, rounds = 4, 15
    done = threading.Event()
    failures: list[BaseException] = []
    gaps: list[list[int]] = []

    def write(name: str) -> None:
        try:
            with psycopg.connect(fresh_postgres_url) as conn:
                for i in range(rounds):
                    highest = layout.lock_changes(conn)
                    changes = 1 + i % 3
                    _tombstones(conn, highest + 1, changes, f"{name}-{i}")
                    time.sleep(0.001)  # hold the lock a moment, as a real write does
                    layout.advance_changes(conn, highest + changes)
                    conn.commit()
        except BaseException as error:
            failures.append(error)

    def read() -> None:
        with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
            while not done.is_set():
                seqs = [s for (s,) in conn.execute("SELECT seq FROM event_tombstones ORDER BY 1")]
                if seqs != list(range(1, len(seqs) + 1)):
                    gaps.append(seqs)

    threads = [threading.Thread(target=write, args=(f"w{n}",)) for n in range(writers)]
    reader = threading.Thread(target=read)
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()

    assert failures == []
    assert gaps == []
    expected = writers * sum(1 + i % 3 for i in range(rounds))
    conn = migrated
    seqs = [s for (s,) in conn.execute("SELECT seq FROM event_tombstones ORDER BY seq")]
    assert seqs == list(range(1, expected + 1))
    assert conn.execute("SELECT highest_seq FROM change_counter").fetchone() == (expected,)


def _until_a_backend_waits_for_a_lock(conn: psycopg.Connection[Any]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # pg_locks, not pg_stat_activity, which a transaction sees as it first read it.
        waiting = conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
        if waiting and waiting[0]:
            return
        time.sleep(0.01)
    raise AssertionError("no writer came to wait for the counter's row")


def _second_writer(url: str, isolation: psycopg.IsolationLevel) -> Any:
    """What a second writer's lock_changes gives (the numbers past the first writer's
    highest, or the error it raises) when it waits for a first writer that takes two
    numbers and commits."""
    got: list[Any] = []
    with psycopg.connect(url) as first:
        highest = layout.lock_changes(first)
        _tombstones(first, highest + 1, 2, f"first-{isolation.name}")

        def second() -> None:
            with psycopg.connect(url) as conn:
                conn.isolation_level = isolation
                try:
                    got.append(layout.lock_changes(conn) - highest)
                except errors.SerializationFailure as error:
                    got.append(type(error))

        waiting = threading.Thread(target=second)
        waiting.start()
        _until_a_backend_waits_for_a_lock(first)
        assert not got  # still waiting for the counter's row
        layout.advance_changes(first, highest + 2)
        first.commit()
        waiting.join(timeout=10)
    (result,) = got
    return result


def test_a_writer_waiting_on_the_counter_starts_after_the_commit_it_waited_for(
    migrated: psycopg.Connection[Any], fresh_postgres_url: str
) -> None:
    """READ COMMITTED (psycopg's default) reads the row as the other writer committed
    it; REPEATABLE READ, whose snapshot predates the wait, fails to serialise instead
    of handing out a taken number."""
    read_committed = psycopg.IsolationLevel.READ_COMMITTED
    assert _second_writer(fresh_postgres_url, read_committed) == 2
    repeatable_read = psycopg.IsolationLevel.REPEATABLE_READ
    assert _second_writer(fresh_postgres_url, repeatable_read) is errors.SerializationFailure


def test_the_counter_moves_forward_only(migrated: psycopg.Connection[Any]) -> None:
    conn = migrated
    layout.lock_changes(conn)
    layout.advance_changes(conn, 5)
    with pytest.raises(ValueError, match="forward only"):
        layout.advance_changes(conn, 4)
