"""Behind pgbouncer in transaction pooling (Debian's pgbouncer, ops/pgbouncer.py, with
two server connections) in front of the throwaway PostgreSQL server: with
SALVO_DATABASE_POOLING=transaction and the read budget on the role, reads from four
threads and writes all answer, `migrate` runs through it, the budget holds, /readyz
names a missing role budget, and a bulk load is refused before it writes; beside a
SQLite file the setting is refused. PostgreSQL only otherwise: pgbouncer pools
PostgreSQL's connections. Skipped, naming pgbouncer, where it is
not installed; `.ci/run` installs it."""

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from api.store import TooCostly, open_store
from api.store.postgresql.store import PostgresStore
from ops.pgbouncer import Bouncer, missing, start_bouncer, stop_bouncer
from ops.postgres import PostgresServer
from seed.__main__ import main as seed_main
from tests.engines import rows, write_key
from tests.postgres import scratch_database

KHARKIV = "ua-2024-05-30-kharkiv-missile-strike"
EXAMPLE = json.loads((Path(__file__).parents[1] / "examples" / "new-events.json").read_text())
READS = (
    "/api/v1/events?limit=5",
    f"/api/v1/events/{KHARKIV}",
    "/api/v1/events?q=missile&limit=5",
    "/api/v1/stats?interval=month",
    "/api/v1/changes?limit=5",
    "/api/v1/locations?limit=5",
)


@pytest.fixture(scope="module")
def bouncer(postgres_server: PostgresServer) -> Iterator[Bouncer]:
    reason = missing()
    if reason is not None:
        pytest.skip(f"{reason}; CI installs it")
    started = start_bouncer(postgres_server, pool_mode="transaction", size=2)
    yield started
    stop_bouncer(started)


def through(bouncer: Bouncer, server_url: str) -> str:
    """The URL of the same database through pgbouncer."""
    return bouncer.url(server_url.rsplit("/", 1)[1])


@pytest.fixture
def pooled(
    postgres_server: PostgresServer,
    seeded_postgres_template: str,
    bouncer: Bouncer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, str]]:
    """A copy of the curated events with the read budget on the role, as
    docs/operations.md says to set it: its URL through pgbouncer, and the server's."""
    monkeypatch.setenv("SALVO_DATABASE_POOLING", "transaction")
    with scratch_database(postgres_server, seeded_postgres_template) as url:
        name = url.rsplit("/", 1)[1]
        postgres_server.admin(f"ALTER ROLE salvo IN DATABASE {name} SET statement_timeout = 1000")
        yield through(bouncer, url), url


def test_reads_and_writes_answer_through_transaction_pooling(
    pooled: tuple[str, str], open_app: Callable[..., Flask]
) -> None:
    url, server_url = pooled
    store = open_store(url)
    try:
        assert store.migrate().endswith("nothing to do")
    finally:
        store.close()
    app = open_app(url)
    assert app.test_client().get("/readyz").status_code == 200
    statuses: list[tuple[str, int]] = []

    def read() -> None:
        client = app.test_client()
        for number in range(60):
            path = READS[number % len(READS)]
            statuses.append((path, client.get(path).status_code))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [s for s in statuses if s[1] != 200] == [] and len(statuses) == 240

    key = write_key(url)
    client = app.test_client()
    written = []
    for number in range(10):
        event: dict[str, Any] = {**EXAMPLE["events"][0], "id": f"pooled-{number}"}
        answer = client.post(
            "/api/v1/events",
            json={"events": [event]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert answer.status_code == 201, answer.get_json()
        written.append(event["id"])
    feed = client.get("/api/v1/changes?limit=1000").get_json()["data"]
    assert [change["event_id"] for change in feed[-10:]] == written
    assert rows(server_url, "SELECT count(*) FROM events WHERE id LIKE 'pooled-%'") == [(10,)]


def test_the_read_budget_is_the_roles(pooled: tuple[str, str]) -> None:
    url, _ = pooled
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    try:
        with pytest.raises(TooCostly), store.reading({}) as conn:
            conn.execute("SELECT pg_sleep(3)")
    finally:
        store.close()


def test_readyz_names_a_missing_role_budget(
    postgres_server: PostgresServer,
    seeded_postgres_template: str,
    bouncer: Bouncer,
    monkeypatch: pytest.MonkeyPatch,
    open_app: Callable[..., Flask],
) -> None:
    monkeypatch.setenv("SALVO_DATABASE_POOLING", "transaction")
    with scratch_database(postgres_server, seeded_postgres_template) as server_url:
        answer = open_app(through(bouncer, server_url)).test_client().get("/readyz")
        assert answer.status_code == 503
        name = server_url.rsplit("/", 1)[1]
        assert (
            f"run ALTER ROLE salvo IN DATABASE {name} SET statement_timeout = 1000"
            in answer.get_json()["detail"]
        )


def test_a_bulk_load_is_refused_before_it_writes(
    pooled: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, server_url = pooled
    before = rows(server_url, "SELECT count(*), max(seq) FROM events")
    assert seed_main(["--db", url, "synthetic", "--events", "10", "--workers", "1"]) == 1
    assert "transaction pooling does not keep" in capsys.readouterr().err
    assert rows(server_url, "SELECT count(*), max(seq) FROM events") == before


def test_transaction_pooling_beside_sqlite_is_refused(
    seeded_db: Path, monkeypatch: pytest.MonkeyPatch, open_app: Callable[..., Flask]
) -> None:
    monkeypatch.setenv("SALVO_DATABASE_POOLING", "transaction")
    with pytest.raises(ValueError, match="SALVO_DATABASE_POOLING=transaction is for a pooler"):
        open_app(str(seeded_db))
    monkeypatch.setenv("SALVO_DATABASE_POOLING", "statement")
    with pytest.raises(ValueError, match="must be session or transaction"):
        open_app(str(seeded_db))
