"""Reads from a streaming replica (SALVO_DATABASE_REPLICA; docs/design.md, "Reads from
a replica") against a real primary and a hot standby made from it by `pg_basebackup
-R` on loopback (ops/postgres.py). Replay on the standby is paused
(`pg_wal_replay_pause()`) wherever a test must tell which server answered: a read the
standby serves does not see what was written since, one the primary serves does.
Skipped only without PostgreSQL, saying what to install. A SQLite file appears only
as what a replica cannot stand beside (a SQLite primary), and as where the event
template comes from."""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api import create_app
from api.__main__ import main as api_main
from api.store import open_store, parse_position
from api.store.postgresql import store as replica_store
from api.store.postgresql.store import REPLAY_WAIT_S, PostgresStore
from ops.postgres import (
    PostgresServer,
    missing,
    start_again,
    start_server,
    start_standby,
    stop_keeping,
    stop_server_in,
)

KHARKIV = "ua-2024-05-30-kharkiv-missile-strike"
POSITION = "Salvo-Position"


@pytest.fixture(scope="module")
def primary() -> Iterator[PostgresServer]:
    """A primary of its own (a standby copies every database of its server), with
    one migrated database, `salvo`."""
    reason = missing()
    if reason is not None:
        pytest.skip(f"{reason}; CI installs it")
    server = start_server()
    try:
        server.admin("CREATE DATABASE salvo")
        with psycopg.connect(server.url("salvo"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        store = open_store(server.url("salvo"))
        store.migrate()
        store.close()
        yield server
    finally:
        stop_server_in(server.directory)


@pytest.fixture(scope="module")
def standby(primary: PostgresServer) -> Iterator[PostgresServer]:
    server = start_standby(primary)
    try:
        yield server
    finally:
        stop_server_in(server.directory)


@pytest.fixture(scope="module")
def key(primary: PostgresServer) -> str:
    store = open_store(primary.url("salvo"))
    try:
        return store.create_key("Newsroom", "write")
    finally:
        store.close()


@pytest.fixture(scope="module")
def template(seeded_db: Any) -> dict[str, Any]:
    """A curated event as a client sends it (from the seeded SQLite app)."""
    app = create_app({"DATABASE": str(seeded_db), "TESTING": True, "RATE_LIMITS_ENABLED": False})
    event: dict[str, Any] = app.test_client().get(f"/api/v1/events/{KHARKIV}").get_json()
    for output_only in ("acled", "updated_at"):
        event.pop(output_only)
    return event


def _client(primary: PostgresServer, standby: PostgresServer, cookies: bool) -> FlaskClient:
    """An instance reading from the standby; `cookies` for a client that keeps them
    (a browser, requests.Session), else one that sends only what it is given."""
    app = create_app(
        {
            "DATABASE": primary.url("salvo"),
            "DATABASE_REPLICA": standby.url("salvo"),
            "TESTING": True,
            "RATE_LIMITS_ENABLED": False,
        }
    )
    return app.test_client(use_cookies=cookies)


@pytest.fixture
def writer(primary: PostgresServer, standby: PostgresServer) -> FlaskClient:
    return _client(primary, standby, cookies=True)


@pytest.fixture
def reader(primary: PostgresServer, standby: PostgresServer) -> FlaskClient:
    return _client(primary, standby, cookies=False)


_ids = iter(range(1, 10_000))


def _event(template: dict[str, Any], date: str = "2024-06-01") -> dict[str, Any]:
    return {**template, "id": f"ua-replica-test-{next(_ids)}", "date": date}


def _post(api: FlaskClient, key: str, *events: dict[str, Any]) -> TestResponse:
    answer = api.post(
        "/api/v1/events",
        json={"events": list(events)},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 201, answer.get_json()
    return answer


def _sql(server: PostgresServer, statement: str, params: list[Any] | None = None) -> Any:
    with psycopg.connect(server.url("salvo"), autocommit=True) as conn:
        row = conn.execute(statement, params).fetchone()
    return None if row is None else row[0]


def _replayed(standby: PostgresServer) -> int:
    return int(_sql(standby, "SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn"))


def _catch_up(primary: PostgresServer, standby: PostgresServer) -> None:
    """Wait until the standby has replayed everything the primary has written."""
    target = int(_sql(primary, "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"))
    deadline = time.monotonic() + 30
    while _replayed(standby) < target:
        assert time.monotonic() < deadline, "the standby did not catch up within 30 s"
        time.sleep(0.01)


@contextmanager
def _paused(primary: PostgresServer, standby: PostgresServer) -> Iterator[None]:
    """Replay paused on the standby (after it caught up): it keeps receiving the
    primary's log but applies none of it, until the block ends."""
    _catch_up(primary, standby)
    _sql(standby, "SELECT pg_wal_replay_pause()")
    while _sql(standby, "SELECT pg_get_wal_replay_pause_state()") != "paused":
        time.sleep(0.01)
    try:
        yield
    finally:
        _sql(standby, "SELECT pg_wal_replay_resume()")


# Where reads go, and read-your-writes.


def test_reads_go_to_the_standby_and_a_writer_reads_its_own_write(
    primary: PostgresServer,
    standby: PostgresServer,
    writer: FlaskClient,
    reader: FlaskClient,
    key: str,
    template: dict[str, Any],
) -> None:
    event = _event(template)
    path = f"/api/v1/events/{event['id']}"
    with _paused(primary, standby):
        written = _post(writer, key, event)
        position = written.headers[POSITION]
        assert parse_position(position) > _replayed(standby)
        cookie = written.headers["Set-Cookie"]
        assert f"salvo_position={position}" in cookie and "Max-Age=30" in cookie

        # Without a position the standby answers: it has not replayed the write.
        assert reader.get(path).status_code == 404
        # The writer's next read, at once, finds it: its cookie carries the position,
        # which the paused standby never reaches, so the primary serves it.
        started = time.monotonic()
        assert writer.get(path).get_json()["id"] == event["id"]
        waited = time.monotonic() - started
        assert REPLAY_WAIT_S <= waited < REPLAY_WAIT_S + 1
        # So does a client that sends the header back instead of a cookie.
        assert reader.get(path, headers={POSITION: position}).status_code == 200
        listed = reader.get("/api/v1/events?limit=5", headers={POSITION: position}).get_json()
        assert event["id"] in [e["id"] for e in listed["data"]]

        # The change feed is the primary's, and says how far it read.
        changes = reader.get("/api/v1/changes")
        assert event["id"] in [c["event_id"] for c in changes.get_json()["data"]]
        assert parse_position(changes.headers[POSITION]) >= parse_position(position)
        assert "Set-Cookie" not in changes.headers
    _catch_up(primary, standby)
    assert reader.get(path).status_code == 200


def test_a_read_whose_position_is_replayed_is_served_by_the_standby(
    primary: PostgresServer,
    standby: PostgresServer,
    reader: FlaskClient,
    key: str,
    template: dict[str, Any],
) -> None:
    first, second = _event(template), _event(template)
    position = _post(reader, key, first).headers[POSITION]
    with _paused(primary, standby):
        _post(reader, key, second)
        started = time.monotonic()
        listed = reader.get("/api/v1/events?limit=100", headers={POSITION: position})
        waited = time.monotonic() - started
    ids = [e["id"] for e in listed.get_json()["data"]]
    # The standby had replayed the first write, not the second: it served the read.
    assert first["id"] in ids and second["id"] not in ids
    assert waited < REPLAY_WAIT_S


def test_exports_and_stats_read_the_standby_unless_behind_the_position(
    primary: PostgresServer,
    standby: PostgresServer,
    reader: FlaskClient,
    key: str,
    template: dict[str, Any],
) -> None:
    """An export holds one connection for its whole stream, picked as any read's;
    /stats reads the rollups there too."""
    event = _event(template, date="2031-05-05")
    export = "/api/v1/events?format=ndjson&date_from=2031-05-05&date_to=2031-05-05"
    stats = "/api/v1/stats?date_from=2031-05-05&date_to=2031-05-05"
    with _paused(primary, standby):
        position = _post(reader, key, event).headers[POSITION]
        assert reader.get(export).get_data() == b""
        assert reader.get(stats).get_json()["data"][0]["events"] == 0
        lines = reader.get(export, headers={POSITION: position}).get_data().splitlines()
        assert [orjson.loads(line)["id"] for line in lines] == [event["id"]]
        counted = reader.get(stats, headers={POSITION: position}).get_json()
        assert counted["data"][0]["events"] == 1


def test_a_write_transaction_and_api_keys_read_the_primary(
    primary: PostgresServer,
    standby: PostgresServer,
    reader: FlaskClient,
    template: dict[str, Any],
) -> None:
    store = open_store(primary.url("salvo"))
    try:
        desk = store.create_key("Desk", "write")
        desk_id = next(k.id for k in store.key_listings() if k.name == "Desk")
        auth = {"Authorization": f"Bearer {desk}"}
        event = _event(template)
        path = f"/api/v1/events/{event['id']}"
        with _paused(primary, standby):
            position = _post(reader, desk, event).headers[POSITION]
            etag = reader.get(path, headers={POSITION: position}).headers["ETag"]
            # The PATCH reads the event in its transaction, on the primary: the
            # standby has never seen it.
            patched = reader.patch(
                path,
                json={"notes": "Patched while the standby lags."},
                headers={**auth, "If-Match": etag},
            )
            assert patched.status_code == 200, patched.get_json()
            assert POSITION in patched.headers
            # A key revoked on the primary stops at once, though the standby still
            # holds it live.
            assert store.revoke_key(desk_id)
            assert (
                _sql(
                    standby,
                    "SELECT count(*) FROM api_keys WHERE id = %s AND revoked_at IS NULL",
                    [desk_id],
                )
                == 1
            )
            assert reader.get("/api/v1/events?limit=1", headers=auth).status_code == 401
    finally:
        store.close()


# Lag never shows as an error.


def test_a_stale_etag_from_the_standby_never_locks_a_writer_out(
    primary: PostgresServer,
    standby: PostgresServer,
    reader: FlaskClient,
    key: str,
    template: dict[str, Any],
) -> None:
    """A client that read a stale version from a lagging standby gets a 412 for its
    PATCH, as for any concurrent change; the 412 carries the primary's position, so
    that the re-read it calls for finds the current version (not the stale one
    again, which would refuse every retry)."""
    auth = {"Authorization": f"Bearer {key}"}
    event = _event(template)
    path = f"/api/v1/events/{event['id']}"
    _post(reader, key, event)
    _catch_up(primary, standby)
    first = reader.get(path).headers["ETag"]
    with _paused(primary, standby):
        changed = reader.patch(
            path, json={"notes": "Changed once."}, headers={**auth, "If-Match": first}
        )
        assert changed.status_code == 200
        current = changed.headers["ETag"]
        # A reader without a position sees the version before, even asked with the
        # current ETag: a 200 with the older version, not an error.
        stale = reader.get(path, headers={"If-None-Match": current})
        assert stale.status_code == 200 and stale.headers["ETag"] == first
        refused = reader.patch(
            path, json={"notes": "Changed twice."}, headers={**auth, "If-Match": first}
        )
        assert refused.status_code == 412
        reread = reader.get(path, headers={POSITION: refused.headers[POSITION]})
        assert reread.headers["ETag"] == current
        again = reader.patch(
            path,
            json={"notes": "Changed twice."},
            headers={**auth, "If-Match": reread.headers["ETag"]},
        )
        assert again.status_code == 200


def test_a_cursor_taken_on_the_primary_pages_on_the_lagging_standby(
    primary: PostgresServer,
    standby: PostgresServer,
    reader: FlaskClient,
    key: str,
    template: dict[str, Any],
) -> None:
    """Keyset cursors hold a sort key, not a snapshot: a next page read where the
    rows before it do not exist yet is still a page, never a 400."""
    with _paused(primary, standby):
        events = [_event(template, date=f"2030-01-0{day}") for day in (1, 2, 3)]
        position = _post(reader, key, *events).headers[POSITION]
        first = reader.get(
            "/api/v1/events?limit=2&date_from=2030-01-01&date_to=2030-01-03",
            headers={POSITION: position},
        ).get_json()
        assert [e["id"] for e in first["data"]] == [events[2]["id"], events[1]["id"]]
        following = reader.get(first["links"]["next"])
        assert following.status_code == 200
        assert events[0]["id"] not in [e["id"] for e in following.get_json()["data"]]
        caught = reader.get(first["links"]["next"], headers={POSITION: position}).get_json()
        assert caught["data"][0]["id"] == events[0]["id"]


# Faults and settings.


@pytest.mark.parametrize(
    ("header", "cookie"), [("nope", None), ("0/3000148; drop", None), (None, "ABCDEFGHI/0")]
)
def test_a_malformed_position_is_a_400_naming_it(
    writer: FlaskClient, header: str | None, cookie: str | None
) -> None:
    if cookie is not None:
        writer.set_cookie("salvo_position", cookie)
    answer = writer.get("/api/v1/events", headers={POSITION: header} if header else {})
    assert answer.status_code == 400
    assert answer.content_type == "application/problem+json"
    [param] = answer.get_json()["invalid_params"]
    if header:
        assert param["name"] == POSITION and param["in"] == "header"
    else:
        assert param["name"] == "salvo_position" and param["in"] == "cookie"
        assert "salvo_position=;" in answer.headers["Set-Cookie"]


def test_a_malformed_position_is_a_400_on_sqlite_too(client: FlaskClient) -> None:
    answer = client.get("/api/v1/events", headers={POSITION: "16-B374D848"})
    assert answer.status_code == 400
    assert answer.get_json()["invalid_params"][0]["name"] == POSITION
    # Without a replica, no position is sent: the one database sees every write.
    assert POSITION not in client.get("/api/v1/changes").headers


def test_reads_fall_back_to_the_primary_when_the_standby_stops(
    primary: PostgresServer,
    key: str,
    template: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    spare = start_standby(primary)
    try:
        api = _client(primary, spare, cookies=False)
        event = _event(template)
        _post(api, key, event)
        _catch_up(primary, spare)
        assert api.get("/readyz").get_json() == {
            "status": "ready",
            "database": "ok",
            "reads": "replica",
            "replica": "ok",
        }
        assert api.get(f"/api/v1/events/{event['id']}").status_code == 200
    finally:
        stop_server_in(spare.directory)
    with caplog.at_level(logging.WARNING, logger="api.store.postgresql.store"):
        started = time.monotonic()
        assert api.get(f"/api/v1/events/{event['id']}").status_code == 200
        first = time.monotonic() - started
        started = time.monotonic()
        assert api.get("/api/v1/events?limit=1").status_code == 200
        then = time.monotonic() - started
    assert any("replica is unreachable" in r.getMessage() for r in caplog.records)
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["reads"] == "primary"
    assert ready.get_json()["replica"].startswith("unreachable")
    # The first read met the dead connection and went to the primary at once; the
    # next ones go there without trying the standby.
    assert first < 1 and then < 1


def test_reads_return_to_the_standby_when_it_is_back(
    primary: PostgresServer,
    key: str,
    template: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Retried sooner than in service, so that the test waits for the pool's own
    # reconnection rather than for the store's pause.
    monkeypatch.setattr(replica_store, "REPLICA_RETRY_S", 0.2)
    spare = start_standby(primary)
    try:
        api = _client(primary, spare, cookies=False)
        assert api.get("/api/v1/events?limit=1").status_code == 200
        stop_keeping(spare)
        assert api.get("/api/v1/events?limit=1").status_code == 200
        assert api.get("/readyz").get_json()["reads"] == "primary"
        start_again(spare)
        with _paused(primary, spare):
            event = _event(template)
            _post(api, key, event)
            # Back on the standby once it answers: it has not replayed the write.
            deadline = time.monotonic() + 30
            while api.get(f"/api/v1/events/{event['id']}").status_code == 200:
                assert time.monotonic() < deadline, "reads never returned to the standby"
                time.sleep(0.1)
            back_after = 30 - (deadline - time.monotonic())
        assert api.get("/readyz").get_json()["reads"] == "replica"
        print(f"reads returned to the standby {back_after:.1f} s after it started again")
    finally:
        stop_server_in(spare.directory)


def test_a_replica_beside_sqlite_is_refused_at_start(
    seeded_db: Any, standby: PostgresServer
) -> None:
    with pytest.raises(ValueError, match="needs a postgresql:// primary"):
        create_app({"DATABASE": str(seeded_db), "DATABASE_REPLICA": standby.url("salvo")})
    with pytest.raises(ValueError, match="must be a postgresql:// URL"):
        create_app({"DATABASE": standby.url("salvo"), "DATABASE_REPLICA": str(seeded_db)})


def test_serve_refuses_a_replica_beside_sqlite_before_starting_workers(
    seeded_db: Any, standby: PostgresServer, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("SALVO_DATABASE_REPLICA", standby.url("salvo"))
    assert api_main(["--db", str(seeded_db), "serve"]) == 1
    assert "needs a postgresql:// primary" in capsys.readouterr().err


def test_a_replica_that_is_not_a_standby_never_serves_a_position(
    primary: PostgresServer, key: str, template: dict[str, Any]
) -> None:
    """A replica setting naming a server that replays nothing (here the primary
    itself): /readyz says so, and a read with a position goes to the primary at
    once instead of waiting for a replay that never comes."""
    api = _client(primary, primary, cookies=False)
    assert api.get("/readyz").get_json()["replica"] == "not a standby (it is not in recovery)"
    event = _event(template)
    position = _post(api, key, event).headers[POSITION]
    started = time.monotonic()
    found = api.get(f"/api/v1/events/{event['id']}", headers={POSITION: position})
    assert found.status_code == 200
    assert time.monotonic() - started < REPLAY_WAIT_S


def test_a_store_without_replica_sends_no_position(primary: PostgresServer) -> None:
    store = open_store(primary.url("salvo"))
    assert isinstance(store, PostgresStore)
    try:
        assert store.position() is None
        assert store.after(5) is store
    finally:
        store.close()
