"""The PostgreSQL store (api/store/postgresql/store.py) on a real PostgreSQL 15 +
PostGIS server (tests/postgres.py): `open_store` selects it by URL, it is not ready
until migrated, its faults leave as the store's errors by SQLSTATE, the API's write
and read contract holds through the Flask test client as on SQLite, and writers on
two app instances at once take unique seqs that a mirror following /changes sees in
order, ending equal to the database."""

import itertools
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest
from flask.testing import FlaskClient
from psycopg import errors
from werkzeug.test import TestResponse

from api import create_app
from api.store import Busy, Damaged, Full, TooCostly, Unavailable, open_store, search
from api.store.postgresql.layout import HIGHEST_SEQ, SCHEMA_VERSION
from api.store.postgresql.store import POOL_SIZE, POOL_WAIT_S, PostgresStore
from seed.__main__ import main as seed_main
from tests.test_single_writer import retried, write_rounds

KHARKIV = "ua-2024-05-30-kharkiv-missile-strike"


@pytest.fixture(scope="module")
def template(client_module: FlaskClient) -> dict[str, Any]:
    """A curated event as a client would send it (from the seeded SQLite app)."""
    event: dict[str, Any] = client_module.get(f"/api/v1/events/{KHARKIV}").get_json()
    for output_only in ("acled", "updated_at"):
        event.pop(output_only)
    return event


@pytest.fixture(scope="module")
def client_module(seeded_db: Any) -> FlaskClient:
    app = create_app({"DATABASE": str(seeded_db), "TESTING": True, "RATE_LIMITS_ENABLED": False})
    return app.test_client()


@pytest.fixture
def store(fresh_postgres_url: str) -> Iterator[PostgresStore]:
    opened = open_store(fresh_postgres_url)
    assert isinstance(opened, PostgresStore)
    yield opened
    opened.close()


@pytest.fixture
def migrated(store: PostgresStore) -> PostgresStore:
    store.migrate()
    return store


def _app(url: str) -> FlaskClient:
    return create_app(
        {"DATABASE": url, "TESTING": True, "RATE_LIMITS_ENABLED": False}
    ).test_client()


def _highest_seq(url: str) -> int:
    with psycopg.connect(url) as conn:
        (highest,) = conn.execute(f"SELECT {HIGHEST_SEQ}").fetchone() or (0,)
    return int(highest)


# Lifecycle and faults.


def test_open_store_selects_postgresql_by_url_and_sqlite_otherwise(tmp_path: Any) -> None:
    assert isinstance(open_store("postgresql://salvo@127.0.0.1:1/salvo"), PostgresStore)
    assert isinstance(open_store("postgres://salvo@127.0.0.1:1/salvo"), PostgresStore)
    assert not isinstance(open_store(str(tmp_path / "salvo.db")), PostgresStore)
    with pytest.raises(Unavailable, match="mysql://"):
        open_store("mysql://localhost/salvo")


def test_not_ready_until_migrated(store: PostgresStore) -> None:
    with pytest.raises(Unavailable, match="python -m api migrate"):
        store.readiness()
    said = store.migrate()
    assert f"schema version {SCHEMA_VERSION}" in said
    assert store.readiness() == {"status": "ready", "database": "ok"}
    assert "nothing to do" in store.migrate()
    assert store.feed_position().highest_seq == 0


def test_a_server_that_does_not_answer_is_unavailable() -> None:
    closed = PostgresStore("postgresql://salvo:x@127.0.0.1:1/salvo?connect_timeout=1")
    try:
        start = time.monotonic()
        with pytest.raises(Unavailable):
            closed.readiness()
        assert time.monotonic() - start < 10
    finally:
        closed.close()


def test_a_read_past_the_budget_is_too_costly_naming_q(fresh_postgres_url: str) -> None:
    slow = PostgresStore(fresh_postgres_url, budget_s=0.05)
    try:
        with pytest.raises(TooCostly) as stopped, slow.reading({"q": "x"}) as conn:
            conn.execute("SELECT pg_sleep(2)")
        assert stopped.value.parameter == "q"
        assert stopped.value.budget_s == 0.05
        with pytest.raises(TooCostly) as plain, slow.reading({}) as conn:
            conn.execute("SELECT pg_sleep(2)")
        assert plain.value.parameter is None
    finally:
        slow.close()


@pytest.mark.parametrize(
    ("sqlstate", "expected"),
    [
        ("40001", Busy),
        ("40P01", Busy),
        ("55P03", Busy),
        ("53100", Full),
        ("XX001", Damaged),
        ("XX002", Damaged),
        ("08006", Unavailable),
        ("57P01", Unavailable),
        ("53300", Unavailable),
    ],
)
def test_sqlstates_map_to_the_stores_errors(sqlstate: str, expected: type) -> None:
    store = PostgresStore("postgresql://unused")
    error = errors.lookup(sqlstate)("from the server")
    assert type(store.store_error(error)) is expected


# The HTTP contract.


def _post(api: FlaskClient, key: str, *events: dict[str, Any], **headers: str) -> TestResponse:
    return api.post(
        "/api/v1/events",
        json={"events": list(events)},
        headers={"Authorization": f"Bearer {key}", **headers},
    )


def _mirror_pages(api: FlaskClient, limit: int = 7) -> Iterator[dict[str, Any]]:
    since: str | None = None
    while True:
        query = "" if since is None else f"&since={since}"
        page = api.get(f"/api/v1/changes?limit={limit}{query}").get_json()
        yield page
        since = page["meta"]["since"]
        if page["links"]["next"] is None:
            return


class Mirror:
    """A partner's copy kept by /changes: the events by id, and the seqs seen."""

    def __init__(self, api: FlaskClient) -> None:
        self.api = api
        self.events: dict[str, Any] = {}
        self.since: str | None = None
        self.seqs: list[int] = []

    def sync(self) -> None:
        while True:
            query = "" if self.since is None else f"&since={self.since}"
            page = self.api.get(f"/api/v1/changes?limit=7{query}").get_json()
            for change in page["data"]:
                self.seqs.append(change["seq"])
                if change["change"] == "deleted":
                    self.events.pop(change["event_id"], None)
                else:
                    self.events[change["event_id"]] = change["event"]
            self.since = page["meta"]["since"]
            if page["links"]["next"] is None:
                return


def test_the_write_and_read_contract_over_http(
    migrated: PostgresStore, fresh_postgres_url: str, template: dict[str, Any]
) -> None:
    api = _app(fresh_postgres_url)
    key = migrated.create_key("Newsroom", "write")
    assert api.get("/readyz").status_code == 200

    events = [
        {**template, "id": f"ua-2024-06-0{day}-pg-{day}", "date": f"2024-06-0{day}"}
        for day in range(1, 6)
    ]
    created = _post(api, key, *events, **{"Idempotency-Key": "first"})
    assert created.status_code == 201, created.get_json()
    replayed = _post(api, key, *events, **{"Idempotency-Key": "first"})
    assert replayed.status_code == 201
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_data() == created.get_data()
    assert _post(api, key, events[0]).status_code == 409

    event_id = events[0]["id"]
    read = api.get(f"/api/v1/events/{event_id}")
    assert read.status_code == 200
    assert read.get_json() == created.get_json()["data"][0]
    etag = read.headers["ETag"]
    assert api.get(f"/api/v1/events/{event_id}", headers={"If-None-Match": etag}).status_code == 304

    headers = {"Authorization": f"Bearer {key}"}
    stale = api.patch(
        f"/api/v1/events/{event_id}",
        data=orjson.dumps({"notes": "Corrected."}),
        headers={**headers, "If-Match": '"stale"', "Content-Type": "application/merge-patch+json"},
    )
    assert stale.status_code == 412
    patched = api.patch(
        f"/api/v1/events/{event_id}",
        data=orjson.dumps({"notes": "Corrected."}),
        headers={**headers, "If-Match": etag, "Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["notes"] == "Corrected."
    again = api.get(f"/api/v1/events/{event_id}")
    assert again.headers["ETag"] == patched.headers["ETag"] != etag

    deleted = api.delete(
        f"/api/v1/events/{event_id}", headers={**headers, "If-Match": again.headers["ETag"]}
    )
    assert deleted.status_code == 204
    assert api.get(f"/api/v1/events/{event_id}").status_code == 410
    assert api.get("/api/v1/events/ua-never").status_code == 404

    # The feed: 5 creations (1-5), an update (6) and the deletion (7) of the first;
    # each event at its latest write, so the first only as its tombstone.
    changes = [c for page in _mirror_pages(api, limit=2) for c in page["data"]]
    assert [c["seq"] for c in changes] == [2, 3, 4, 5, 7]
    assert changes[-1] == {**changes[-1], "event_id": event_id, "change": "deleted"}
    assert _highest_seq(fresh_postgres_url) == 7

    # A page of events, newest first, and its cursor.
    first = api.get("/api/v1/events?limit=2").get_json()
    assert [e["id"] for e in first["data"]] == [events[4]["id"], events[3]["id"]]
    assert first["meta"]["total"] == 4
    following = api.get(first["links"]["next"]).get_json()
    assert [e["id"] for e in following["data"]] == [events[2]["id"], events[1]["id"]]
    assert following["links"]["next"] is None
    searched = api.get("/api/v1/events?q=kharkiv&limit=10").get_json()
    assert len(searched["data"]) == 4

    # GeoJSON pages carry the points; the exports stream every event.
    features = api.get("/api/v1/events?format=geojson&limit=1").get_json()["features"]
    assert features[0]["geometry"]["coordinates"] == [
        template["location"]["longitude"],
        template["location"]["latitude"],
    ]
    exported = api.get("/api/v1/events?format=ndjson").get_data().splitlines()
    assert [orjson.loads(line)["id"] for line in exported] == [e["id"] for e in events[:0:-1]]
    csv_lines = api.get("/api/v1/events?format=csv").get_data().decode().splitlines()
    assert len(csv_lines) == 1 + 4

    # Places and sources, with their event counts from the rollups.
    place = template["location"]["id"]
    (listed,) = api.get("/api/v1/locations").get_json()["data"]
    assert (listed["id"], listed["event_count"]) == (place, 4)
    assert api.get(f"/api/v1/locations/{place}").get_json()["event_count"] == 4
    (source,) = api.get("/api/v1/sources").get_json()["data"]
    assert source["event_count"] == 4
    summary = migrated.summary()
    assert (summary["events"], summary["first"], summary["last"]) == (4, "2024-06-02", "2024-06-05")
    assert summary["regions"] == [template["location"]["admin1"]]
    assert migrated.search_capped(search.parse("kharkiv")) is False


def test_a_listings_total_is_kept_while_the_change_counter_and_history_stand(
    fresh_postgres_url: str,
) -> None:
    # A kept total is taken from the process while the version the page statement
    # reads is the one it was counted at (KeptTotals): rollups changed behind
    # Salvo's back (no write, so no new seq) leave it as it was, and a new change
    # history (a restore's `renew-history`, with the counter where it stood) is
    # counted afresh. Other writers' commits: tests/test_pagination.py.
    assert seed_main(["--db", fresh_postgres_url]) == 0
    api = _app(fresh_postgres_url)

    def total() -> int:
        body = api.get("/api/v1/events?limit=1").get_json()
        return int(body["meta"]["total"])

    assert total() == 17
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        # The unfiltered total sums stats_months' event rows: each now counts one more.
        changed = "UPDATE stats_months SET events = events + 1 WHERE category = ''"
        rows = conn.execute(changed).rowcount
    assert rows > 0
    assert total() == 17
    store = open_store(fresh_postgres_url)
    try:
        with store.writer() as writer:
            writer.renew_history()
    finally:
        store.close()
    assert total() == 17 + rows


INSTANCES, THREADS, ROUNDS = 2, 3, 6
CHANGES_PER_THREAD = ROUNDS * 2 + ROUNDS // 2
# A writer waits up to 5 s for the change counter's lock, then is Busy (503).
ATTEMPTS = 40


def test_an_instance_of_another_release_writes_nothing_once_the_database_moved_on(
    migrated: PostgresStore, fresh_postgres_url: str, template: dict[str, Any]
) -> None:
    # A later release migrated the database while this instance still runs (a
    # rolling upgrade): its writes are refused, as its /readyz is, until it is
    # replaced; the same for a database older than it.
    api = _app(fresh_postgres_url)
    key = migrated.create_key("Newsroom", "write")
    event = {**template, "id": "ua-2024-06-01-after-the-upgrade", "date": "2024-06-01"}
    for version, says in ((SCHEMA_VERSION + 1, "newer than this Salvo's"), (0, "run `python")):
        with psycopg.connect(fresh_postgres_url) as conn:
            conn.execute("UPDATE schema_version SET version = %s", [version])
        before = _highest_seq(fresh_postgres_url)
        refused = _post(api, key, event)
        assert refused.status_code == 503, refused.get_json()
        assert refused.get_json()["type"] == "/problems/database-unavailable"
        assert says in refused.get_json()["detail"]
        assert api.get("/readyz").status_code == 503
        assert _highest_seq(fresh_postgres_url) == before
        assert api.get(f"/api/v1/events/{event['id']}").status_code == 404
    with psycopg.connect(fresh_postgres_url) as conn:
        conn.execute("UPDATE schema_version SET version = %s", [SCHEMA_VERSION])
    assert _post(api, key, event).status_code == 201


def test_concurrent_writers_on_two_instances_and_a_mirror(
    migrated: PostgresStore, fresh_postgres_url: str, template: dict[str, Any]
) -> None:
    key = migrated.create_key("Newsroom", "write")
    instances = [_app(fresh_postgres_url) for _ in range(INSTANCES)]
    reader = _app(fresh_postgres_url)
    mirror = Mirror(reader)
    mirror.sync()
    failures: list[BaseException] = []

    def run(api: FlaskClient, name: str) -> None:
        try:
            write_rounds(api, key, template, name, ROUNDS, ATTEMPTS)
        except BaseException as error:
            failures.append(error)

    threads = [
        threading.Thread(target=run, args=(api, f"i{number}-t{thread}"))
        for number, api in enumerate(instances)
        for thread in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        mirror.sync()
        time.sleep(0.01)
    for thread in threads:
        thread.join()
    assert not failures, failures[0]
    during = len(mirror.seqs)
    mirror.sync()

    with psycopg.connect(fresh_postgres_url) as conn:
        seqs = [
            seq
            for (seq,) in conn.execute(
                "SELECT seq FROM events UNION ALL SELECT seq FROM event_tombstones"
            )
        ]
        stored = {
            event_id: orjson.loads(body)
            for event_id, body in conn.execute(
                "SELECT e.id, d.body FROM events e JOIN event_documents d USING (row_id)"
            )
        }
        (counted,) = conn.execute(
            "SELECT coalesce(sum(events), 0) FROM stats_totals WHERE category = ''"
        ).fetchone() or (0,)
    changes = INSTANCES * THREADS * CHANGES_PER_THREAD
    assert len(seqs) == len(set(seqs))
    assert _highest_seq(fresh_postgres_url) == changes
    feed = Mirror(reader)
    feed.sync()
    assert feed.seqs == sorted(seqs)
    assert mirror.seqs == sorted(set(mirror.seqs))
    assert mirror.events == stored
    assert during > 0
    assert len(stored) == INSTANCES * THREADS * (ROUNDS - ROUNDS // 2)
    # The writers did write at once: their changes interleave in seq order.
    with psycopg.connect(fresh_postgres_url) as conn:
        writers = [
            event_id.split("-")[4:6]
            for (event_id,) in conn.execute(
                "SELECT id FROM (SELECT seq, id FROM events UNION ALL "
                "SELECT seq, id FROM event_tombstones) AS c ORDER BY seq"
            )
        ]
    switches = sum(1 for a, b in itertools.pairwise(writers) if a != b)
    assert switches > INSTANCES * THREADS, writers
    # The rollups kept current by every writer count what the events table holds.
    assert counted == len(stored)


def test_two_first_requests_with_one_idempotency_key_write_once(
    migrated: PostgresStore, fresh_postgres_url: str, template: dict[str, Any]
) -> None:
    key = migrated.create_key("Newsroom", "write")
    instances = [_app(fresh_postgres_url) for _ in range(2)]
    event = {**template, "id": "ua-2024-06-01-once"}
    start = threading.Barrier(len(instances))
    answers: list[TestResponse] = []

    def send(api: FlaskClient) -> None:
        start.wait()
        answers.append(
            retried(lambda: _post(api, key, event, **{"Idempotency-Key": "once"}), ATTEMPTS)
        )

    threads = [threading.Thread(target=send, args=(api,)) for api in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [201, 201]
    assert sorted(a.headers.get("Idempotent-Replayed", "false") for a in answers) == [
        "false",
        "true",
    ]
    assert answers[0].get_data() == answers[1].get_data()
    with psycopg.connect(fresh_postgres_url) as conn:
        creates = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'create'"
        ).fetchone() or (0,)
    assert creates[0] == 1
    assert _highest_seq(fresh_postgres_url) == 1


def test_python_m_api_migrate_takes_a_url_and_never_prints_its_password(
    fresh_postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from api.__main__ import main

    password = fresh_postgres_url.split(":")[2].split("@")[0]
    assert main(["--db", fresh_postgres_url, "migrate"]) == 0
    assert f"schema version {SCHEMA_VERSION}" in capsys.readouterr().out
    assert main(["--db", fresh_postgres_url, "migrate"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    wrong = fresh_postgres_url.replace(password, "wrong-password")
    assert main(["--db", wrong, "migrate"]) == 1
    said = capsys.readouterr()
    assert "not migrated" in said.err
    assert password not in said.out + said.err
    assert "wrong-password" not in said.out + said.err


def _same_writes(api: FlaskClient, key: str, template: dict[str, Any]) -> None:
    """Creations over two months and two weeks, a correction of casualties and
    munitions, and a deletion: each moves rows of every rollup."""
    headers = {"Authorization": f"Bearer {key}"}
    dates = ["2024-05-30", "2024-06-01", "2024-06-03", "2024-07-15", "2024-07-16"]
    events = [
        {**template, "id": f"ua-{date}-same-{number}", "date": date}
        for number, date in enumerate(dates)
    ]
    assert _post(api, key, *events).status_code == 201
    for event_id, patch in (
        (events[1]["id"], {"casualties": {"killed": {"best": 3, "qualifier": "at_least"}}}),
        (events[3]["id"], {"munitions": []}),
    ):
        etag = api.get(f"/api/v1/events/{event_id}").headers["ETag"]
        patched = api.patch(
            f"/api/v1/events/{event_id}",
            data=orjson.dumps(patch),
            headers={**headers, "If-Match": etag, "Content-Type": "application/merge-patch+json"},
        )
        assert patched.status_code == 200, patched.get_json()
    etag = api.get(f"/api/v1/events/{events[2]['id']}").headers["ETag"]
    deleted = api.delete(f"/api/v1/events/{events[2]['id']}", headers={**headers, "If-Match": etag})
    assert deleted.status_code == 204


def _both_after_the_same_writes(
    migrated: PostgresStore, url: str, template: dict[str, Any], path: str, more: bool = False
) -> tuple[FlaskClient, FlaskClient]:
    """A SQLite database and the PostgreSQL one, each after the same writes
    through the API (`more`: and _more_writes'): their apps' clients."""
    from api.__main__ import main

    assert main(["--db", path, "init"]) == 0
    sqlite_store = open_store(path)
    try:
        on_sqlite, on_postgresql = _app(path), _app(url)
        _same_writes(on_sqlite, sqlite_store.create_key("Newsroom", "write"), template)
        _same_writes(on_postgresql, migrated.create_key("Newsroom", "write"), template)
        if more:
            _more_writes(on_sqlite, sqlite_store.create_key("Desk", "write"), template)
            _more_writes(on_postgresql, migrated.create_key("Desk", "write"), template)
    finally:
        sqlite_store.close()
    return on_sqlite, on_postgresql


def _more_writes(api: FlaskClient, key: str, template: dict[str, Any]) -> None:
    """Events coded by week and by month (beside a finer series), and interceptions
    (the rate's sums), of another type."""
    drones = [{"category": "drone", "model": None, "launched": 10, "intercepted": 7}]
    events = [
        {**template, "id": "ua-2024-06-03-week", "date": "2024-06-03", "date_precision": "week"},
        {
            **template,
            "id": "ua-2024-07-01-month",
            "date": "2024-07-01",
            "date_precision": "month",
            "event_type": "drone_strike",
            "munitions": drones,
        },
        {**template, "id": "ua-2024-06-20-drones", "date": "2024-06-20", "munitions": drones},
    ]
    answer = _post(api, key, *events)
    assert answer.status_code == 201, answer.get_json()


def test_the_rollups_equal_sqlites_after_the_same_writes(
    migrated: PostgresStore, fresh_postgres_url: str, template: dict[str, Any], tmp_path: Any
) -> None:
    from api.store.sqlite.rollups import TABLES

    path = str(tmp_path / "salvo.db")
    _both_after_the_same_writes(migrated, fresh_postgres_url, template, path)
    sqlite_conn = sqlite3.connect(path)
    with psycopg.connect(fresh_postgres_url) as conn:
        for table in TABLES:
            columns = [name for (_, name, *_) in sqlite_conn.execute(f"PRAGMA table_info({table})")]
            select = f"SELECT {', '.join(columns)} FROM {table}"
            on_sqlite = sorted(sqlite_conn.execute(select).fetchall())
            on_postgresql = sorted(tuple(row) for row in conn.execute(select).fetchall())
            assert on_postgresql == on_sqlite, table
            assert table == "stats_changes" or on_sqlite, f"{table} has rows"
    sqlite_conn.close()


def _stats_requests(template: dict[str, Any]) -> list[str]:
    place = template["location"]
    near = f"{place['latitude']},{place['longitude']}"
    west, south = place["longitude"] - 1, place["latitude"] - 1
    bbox = f"{west},{south},{west + 2},{south + 2}"
    month = (
        f"interval=month&event_type={template['event_type']}&weapon=missile&country=UA"
        "&date_from=2024-05-15&date_to=2024-07-20"
    )
    return [
        "",
        "group_by=event_type",
        "group_by=admin1",
        "group_by=country",
        *(f"interval={interval}" for interval in ("day", "week", "month", "year")),
        "interval=week&group_by=event_type",
        "interval=month&group_by=admin1",
        "interval=day&group_by=country&limit=7",
        month,
        "interval=week&date_from=2024-05-27&date_to=2024-07-21",
        "date_from=2024-05-31&date_to=2024-07-15&group_by=event_type",
        f"bbox={bbox}",
        f"bbox={bbox}&interval=month",
        f"near={near}&radius_km=30",
        f"near={near}&radius_km=30&group_by=admin1&interval=week",
        "q=missiles",
        "q=missile*&interval=month",
        "q=kharkiv -drone&group_by=admin1&interval=week",
        "q=-drone&group_by=event_type",
        "q=nothingmatchesthis",
        "min_injured=1&interval=year",
        "event_type=air_strike",
    ]


def test_stats_answers_as_on_sqlite_after_the_same_writes(
    migrated: PostgresStore, fresh_postgres_url: str, template: dict[str, Any], tmp_path: Any
) -> None:
    """/stats on PostgreSQL: the same planner over the same rollups (and over the
    events, for what no rollup keeps) gives the JSON SQLite gives, as do the
    listings' totals and the places' event counts built on it."""
    on_sqlite, on_postgresql = _both_after_the_same_writes(
        migrated, fresh_postgres_url, template, str(tmp_path / "salvo.db"), more=True
    )
    for query in _stats_requests(template):
        expected = on_sqlite.get(f"/api/v1/stats?{query}")
        answered = on_postgresql.get(f"/api/v1/stats?{query}")
        assert expected.status_code == 200, (query, expected.get_json())
        assert answered.status_code == 200, (query, answered.get_json())
        assert answered.get_json() == expected.get_json(), query
    # The listings' totals and the places' counts under the same filters.
    for query in _stats_requests(template):
        kept = "&".join(
            p for p in query.split("&") if p.split("=")[0] not in ("interval", "group_by", "limit")
        )
        for url, part in (
            (f"/api/v1/events?{kept}&limit=2", "meta"),
            (f"/api/v1/locations?{kept}", None),
        ):
            expected, answered = on_sqlite.get(url), on_postgresql.get(url)
            assert (answered.status_code, expected.status_code) == (200, 200), url
            if part is None:
                assert answered.get_json() == expected.get_json(), url
            else:
                assert answered.get_json()[part] == expected.get_json()[part], url
    # Something was summed: totals, casualties and munitions.
    total = on_postgresql.get("/api/v1/stats").get_json()
    assert total["data"][0]["events"] == 7, total
    assert total["data"][0]["munitions"]["drone"]["interception_rate"] == 0.7, total
    daily = on_postgresql.get("/api/v1/stats?interval=day").get_json()
    assert len(daily["coarser"]) == 2, daily["coarser"]
    found = on_postgresql.get("/api/v1/stats?q=missiles").get_json()
    assert found["data"][0]["events"] > 0, found


def test_exports_taken_slowly_hold_no_connection_between_pages(fresh_postgres_url: str) -> None:
    """More export streams open at once than the pool has connections, each paused
    after its first document as a slow client pauses it: each page is read on a
    connection lent for it alone, so a read still finds one at once (when a stream
    held its connection for its life, the eleventh waited POOL_WAIT_S and was
    refused, and so were reads)."""
    assert seed_main(["--db", fresh_postgres_url]) == 0
    store = open_store(fresh_postgres_url)
    streams = []
    try:
        for _ in range(POOL_SIZE + 2):
            documents, close = store.event_stream({"sort": "-date"}, csv=False)
            streams.append(close)
            assert next(documents)
        began = time.perf_counter()
        assert store.event(KHARKIV).digest
        assert time.perf_counter() - began < POOL_WAIT_S / 2
    finally:
        for close in streams:
            close()
        store.close()
