"""`python -m seed` into PostgreSQL (tests/postgres.py's throwaway server): the curated
load answers as on SQLite, re-seeding is idempotent and keeps what partners deleted
or edited through the API, and a write that fails midway leaves the database as it
was."""

import re
import shutil
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import yaml
from flask.testing import FlaskClient

from api import create_app
from api.store import open_store
from api.store.postgresql.bulk import SLICE_EVENTS
from seed.__main__ import main as seed_main
from seed.curated import DATA_DIR

KHARKIV = "ua-2024-05-30-kharkiv-missile-strike"

# The answers compared between engines: every list the API serves, paged and filtered.
ANSWERS = (
    "/api/v1/events?limit=1000",
    "/api/v1/events?limit=5&sort=date",
    "/api/v1/events?limit=5&sort=-killed",
    "/api/v1/events?admin1=kharkiv%20oblast&limit=1000",
    "/api/v1/events?q=missile&limit=1000",
    "/api/v1/locations?limit=1000",
    "/api/v1/sources?limit=1000",
    "/api/v1/stats",
    "/api/v1/stats?group_by=event_type",
    "/api/v1/stats?group_by=country",
    "/api/v1/stats?interval=month",
)

# The one field whose value legitimately differs between two seeds: updated_at is
# the instant each database was seeded (the seed stamps every event it writes).
_UPDATED_AT = re.compile(rb'"updated_at":"[^"]*"')


def client(database: str) -> FlaskClient:
    return create_app({"DATABASE": database, "RATE_LIMITS_ENABLED": False}).test_client()


def answers(database: str, urls: tuple[str, ...] = ANSWERS) -> dict[str, bytes]:
    """The bodies of these GETs, with updated_at's values blanked."""
    api = client(database)
    bodies = {}
    for url in urls:
        response = api.get(url)
        assert response.status_code == 200, (url, response.get_data())
        bodies[url] = _UPDATED_AT.sub(b'"updated_at":""', response.get_data())
    return bodies


def feed(database: str) -> list[tuple[Any, ...]]:
    """The change feed's entries, every page, without when each was made."""
    api, url, entries = client(database), "/api/v1/changes?limit=1000", []
    while url:
        body = api.get(url).get_json()
        entries += [
            (c["seq"], c["change"], c["event_id"], _UPDATED_AT.sub(b"", orjson.dumps(c["event"])))
            for c in body["data"]
        ]
        url = (body["links"]["next"] or "").removeprefix("http://localhost")
    return entries


def seed(database: str, *argv: str) -> int:
    return seed_main(["--db", database, *argv])


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def counts(url: str) -> dict[str, Any]:
    """Enough of the database to see that nothing moved: rows per table, the counter."""
    tables = ("events", "event_documents", "event_tombstones", "curated_loads", "audit_log")
    found: dict[str, Any] = {t: rows(url, f"SELECT count(*) FROM {t}")[0][0] for t in tables}
    found["highest_seq"] = rows(url, "SELECT highest_seq FROM change_counter")[0][0]
    found["documents"] = rows(url, "SELECT digest FROM event_documents ORDER BY row_id")
    return found


def test_curated_seed_answers_as_on_sqlite(
    fresh_postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite = str(tmp_path / "salvo.db")
    assert seed(sqlite) == 0
    assert seed(fresh_postgres_url) == 0
    said = capsys.readouterr().out
    assert "created" in said  # the layout, as `python -m api migrate` makes it
    assert re.search(r"curated events from .* into postgresql://\S+: \d+ new, 0 updated", said)
    assert ":salvo@" not in said  # no password in what the seed prints
    assert answers(fresh_postgres_url) == answers(sqlite)
    # The change feed and the audit log as on SQLite: one seq per event, in order.
    # The feed's tokens differ legitimately: each names its database's change history,
    # a random id (FeedPosition.history); changed_at is the seed's instant.
    assert feed(fresh_postgres_url) == feed(sqlite)
    audited = rows(fresh_postgres_url, "SELECT action, count(*) FROM audit_log GROUP BY action")
    events = rows(fresh_postgres_url, "SELECT count(*) FROM events")[0][0]
    assert sorted(audited) == [("create", events), ("seed", 1)]


def test_reseeding_is_idempotent(
    fresh_postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert seed(fresh_postgres_url) == 0
    before, first = counts(fresh_postgres_url), answers(fresh_postgres_url)
    capsys.readouterr()
    assert seed(fresh_postgres_url) == 0
    assert re.search(r": 0 new, 0 updated, \d+ unchanged", capsys.readouterr().out)
    after = counts(fresh_postgres_url)
    # One more audit entry (the load itself, with its counts), nothing else moved.
    assert after == {**before, "audit_log": before["audit_log"] + 1}
    assert answers(fresh_postgres_url) == first


def _admin_key(url: str) -> dict[str, str]:
    store = open_store(url)
    try:
        return {"Authorization": f"Bearer {store.create_key('Curators', 'admin')}"}
    finally:
        store.close()


def test_a_partners_deletion_and_edit_survive_a_reseed_unless_restored(
    fresh_postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert seed(fresh_postgres_url) == 0
    key = _admin_key(fresh_postgres_url)
    api = client(fresh_postgres_url)
    deleted = api.get("/api/v1/events?limit=2").get_json()["data"][1]["id"]
    etag = api.get(f"/api/v1/events/{deleted}").headers["ETag"]
    assert (
        api.delete(f"/api/v1/events/{deleted}", headers={**key, "If-Match": etag}).status_code
        == 204
    )
    etag = api.get(f"/api/v1/events/{KHARKIV}").headers["ETag"]
    edited = api.patch(
        f"/api/v1/events/{KHARKIV}",
        json={"notes": "Corrected by a partner."},
        headers={**key, "If-Match": etag},
    )
    assert edited.status_code == 200, edited.get_json()
    capsys.readouterr()

    assert seed(fresh_postgres_url) == 0
    said = capsys.readouterr().out
    assert "1 kept as edited through the API, 1 kept deleted through the API" in said
    assert api.get(f"/api/v1/events/{deleted}").status_code == 410
    assert api.get(f"/api/v1/events/{KHARKIV}").get_json()["notes"] == "Corrected by a partner."

    assert seed(fresh_postgres_url, "curated", "--restore", deleted) == 0
    assert "1 new" in capsys.readouterr().out
    assert api.get(f"/api/v1/events/{deleted}").status_code == 200
    # The restored event is the curators' again: the audit says the seed wrote it.
    (last,) = rows(
        fresh_postgres_url,
        f"SELECT action, key_id FROM audit_log WHERE event_id = '{deleted}' "
        "ORDER BY seq DESC LIMIT 1",
    )
    assert last == ("create", None)


def test_a_write_that_fails_midway_leaves_the_database_as_it_was(
    fresh_postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert seed(fresh_postgres_url) == 0
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    for path in sorted(data.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        for event in document["events"]:
            event["notes"] += " Edited."
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    # PostgreSQL itself refuses one late row of the re-seed, after earlier events of
    # the same run were written.
    with psycopg.connect(fresh_postgres_url) as conn:
        conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.event_id = 'ua-2024-05-30-france-plans-training-mission' THEN "
            "RAISE EXCEPTION 'refused by test trigger'; END IF; RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON reporters "
            "FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
    before, answered = counts(fresh_postgres_url), answers(fresh_postgres_url)
    capsys.readouterr()
    assert seed(fresh_postgres_url, "--data", str(data)) == 1
    assert "writing failed, the database is unchanged" in capsys.readouterr().err
    assert counts(fresh_postgres_url) == before
    assert answers(fresh_postgres_url) == answered


def test_an_invalid_record_writes_nothing(
    fresh_postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert seed(fresh_postgres_url) == 0
    before = counts(fresh_postgres_url)
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = sorted(data.glob("*.yaml"))[0]
    document = yaml.safe_load(path.read_text())
    document["events"][0]["fatalities"] = 3
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert seed(fresh_postgres_url, "--data", str(data)) == 1
    assert "fatalities: Unknown field." in capsys.readouterr().err
    assert counts(fresh_postgres_url) == before


# The synthetic load: COPY into staging tables, one set-based merge.

SYNTHETIC = ("synthetic", "--events", "2000", "--until", "2024-06-30", "--workers", "1")


def test_a_synthetic_load_answers_as_on_sqlite(
    fresh_postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite = str(tmp_path / "synthetic.db")
    assert seed(sqlite, *SYNTHETIC) == 0
    assert seed(fresh_postgres_url, *SYNTHETIC) == 0
    assert "2000 synthetic events (seed 1) loaded into postgresql://" in capsys.readouterr().out
    urls = (
        *ANSWERS,
        "/api/v1/events?limit=100&sort=-date",
        "/api/v1/events?limit=100&event_type=drone_strike&sort=-injured",
        "/api/v1/stats?interval=week&group_by=admin1",
        "/api/v1/stats?interval=month&group_by=event_type",
        # Every event: 8 statements of EXPORT_PAGE_EVENTS on PostgreSQL, 2 on SQLite.
        "/api/v1/events?format=ndjson",
    )
    assert answers(fresh_postgres_url, urls) == answers(sqlite, urls)
    assert feed(fresh_postgres_url) == feed(sqlite)
    assert rows(fresh_postgres_url, "SELECT highest_seq FROM change_counter") == [(2000,)]
    # The load's folds left no dead rows in stats_changes for each write's folds to
    # scan: vacuumed, emptied pages given back.
    assert rows(fresh_postgres_url, "SELECT pg_relation_size('stats_changes')") == [(0,)]
    # The curated load over it, then the same synthetic load again: nothing new, as on
    # SQLite (content unchanged: no write, no seq).
    for database in (sqlite, fresh_postgres_url):
        assert seed(database) == 0
        assert seed(database, *SYNTHETIC) == 0
    assert answers(fresh_postgres_url, urls) == answers(sqlite, urls)
    assert feed(fresh_postgres_url) == feed(sqlite)


class Reader(threading.Thread):
    """GET /api/v1/events?limit=10 in a loop until stopped: each answer's status,
    body and latency."""

    def __init__(self, database: str) -> None:
        super().__init__(daemon=True)
        self.api = client(database)
        self.stopped = threading.Event()
        self.answers: list[tuple[int, bytes, float]] = []

    def run(self) -> None:
        while not self.stopped.is_set():
            started = time.perf_counter()
            response = self.api.get("/api/v1/events?limit=10")
            self.answers.append(
                (response.status_code, response.get_data(), time.perf_counter() - started)
            )


def read_during(database: str, write: Callable[[], int]) -> tuple[int, Reader]:
    reader = Reader(database)
    reader.start()
    try:
        # The reader answers before the write starts.
        while not reader.answers:
            time.sleep(0.01)
        return write(), reader
    finally:
        reader.stopped.set()
        reader.join()


def test_a_reader_keeps_answering_during_a_synthetic_load(
    fresh_postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert seed(fresh_postgres_url) == 0
    before = client(fresh_postgres_url).get("/api/v1/events?limit=10").get_data()
    load = ("synthetic", "--events", "50000", "--until", "2024-06-30", "--workers", "2")
    status, reader = read_during(fresh_postgres_url, lambda: seed(fresh_postgres_url, *load))
    assert status == 0
    after = client(fresh_postgres_url).get("/api/v1/events?limit=10").get_data()
    assert after != before
    latencies = [seconds for _, _, seconds in reader.answers]
    with capsys.disabled():
        print(
            f"\n{len(latencies)} reads during a 50,000-event synthetic load: max "
            f"{max(latencies) * 1000:.0f} ms, median {statistics.median(latencies) * 1000:.1f} ms"
        )
    # Every read answered, within its budget (1 s: a read waiting on a lock, or
    # visiting a whole merge's uncommitted rows, would run out of it), and saw the
    # events as before the load, as after it, or as after a whole slice of it: the
    # load merges in slices, each committed (Store.bulk_load).
    # The page and its total are two statements (reads hold no transaction between
    # them: the Store's contract), so each is compared on its own.
    assert {status for status, _, _ in reader.answers} == {200}
    pages = [orjson.loads(body) for _, body, _ in reader.answers]
    first, last = orjson.loads(before)["meta"]["total"], orjson.loads(after)["meta"]["total"]
    totals = [page["meta"]["total"] for page in pages]
    assert totals == sorted(totals), "a total went down: slices commit in order"
    assert first in totals and last in totals
    # Each event on a page is as it was before the load or as the load left it (the
    # page and its total may straddle a slice's commit, so they are not compared).
    earlier = {event["id"]: event for event in orjson.loads(before)["data"]}
    api = client(fresh_postgres_url)
    seen = {event["id"]: event for page in pages for event in page["data"]}
    for event_id, event in seen.items():
        now = api.get(f"/api/v1/events/{event_id}").get_json()
        assert event in (now, earlier.get(event_id)), event_id
    assert max(latencies) < 2.0


def test_a_failed_bulk_load_leaves_whole_slices_and_running_it_again_finishes_it(
    fresh_postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first_slice = SLICE_EVENTS[1]
    load = ("synthetic", "--events", str(2 * first_slice + 1000), "--until", "2024-06-30")
    sqlite = str(tmp_path / "synthetic.db")
    assert seed(sqlite, *load, "--workers", "1") == 0
    # PostgreSQL refuses an event of the second slice (seqs are taken in the order
    # the events were given, from 1 on an empty database).
    store = open_store(fresh_postgres_url)
    store.migrate()
    store.close()
    with psycopg.connect(fresh_postgres_url) as conn:
        conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.seq = {first_slice + 7} THEN RAISE EXCEPTION 'refused by test trigger'; "
            "END IF; RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
    assert seed(fresh_postgres_url, *load) == 1
    said = capsys.readouterr().err
    assert "the slices merged before the failure stay written" in said
    # The first slice, whole, and nothing of the second: the counter, the events and
    # the feed agree, with no gap.
    assert rows(fresh_postgres_url, "SELECT count(*), max(seq) FROM events") == [
        (first_slice, first_slice)
    ]
    assert rows(fresh_postgres_url, "SELECT highest_seq FROM change_counter") == [(first_slice,)]
    assert [seq for seq, *_ in feed(fresh_postgres_url)] == list(range(1, first_slice + 1))
    # No audit entry: the load did not finish.
    assert rows(
        fresh_postgres_url, "SELECT count(*) FROM audit_log WHERE action = 'synthetic'"
    ) == [(0,)]
    with psycopg.connect(fresh_postgres_url) as conn:
        conn.execute("DROP TRIGGER refuse ON events")
    assert seed(fresh_postgres_url, *load) == 0
    urls = (*ANSWERS, "/api/v1/events?limit=100&sort=-date")
    assert answers(fresh_postgres_url, urls) == answers(sqlite, urls)
    assert feed(fresh_postgres_url) == feed(sqlite)
