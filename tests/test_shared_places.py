"""Shared places and sources stay consistent (issue 21, item 5).

Events copy their place and source into their document, their CSV line and their
full-text row, and their place's admin1, country and point into the events row,
which the filters and the stats rollups read. A writer that changes a shared place
or source (the curated seed, an import, a synthetic load) re-renders every event
that copies it, in the same transaction: /events, /locations, /sources, /stats and
/changes then agree, whatever was written before. On both engines, but for the CSV import
(SQLite only)."""

import datetime
import json
import shutil
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import create_app
from api.db import close_store
from api.store import Store, command_author, open_store
from api.store.sqlite.writes import event_rows
from schemas.gazetteer import admin1_named
from seed.__main__ import main as seed_main
from seed.curated import DATA_DIR
from seed.synthetic import generate_batch
from tests.conftest import TEST_CONFIG
from tests.engines import execute, rows
from tests.test_audit import empty_database  # noqa: F401 (a fixture)
from tests.test_imports import FIXTURES, run_import
from tests.test_rollups import (  # noqa: F401 (empty_databases: a fixture)
    assert_rollups_equal_the_raw_aggregate,
    empty_databases,
)
from tests.test_seed import FRANCE, edit_first_file
from tests.test_writes import KHARKIV, Partner

UNTIL = datetime.date(2022, 6, 30)
# Regions the gazetteer does not know (an admin1 filter reads them as given) and two
# it does, so that a place also moves into a region other places are in.
ADMIN1 = ("Slobozhanshchyna", "Donbas", "Kharkiv Oblast", "Donetsk Oblast")
PLACE_NAMES = ("Renamed place", "Another name", "A third name", "A fourth name")
POINTS = ((49.5, 36.5), (48.25, 37.75), (50.125, 30.5), (46.5, 32.625))
TITLES = ("A retitled source", "Another title", "A third title", "A fourth title")


def pages(client: FlaskClient, url: str) -> list[dict[str, Any]]:
    """Every item of a paged listing, following links.next."""
    items: list[dict[str, Any]] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        items += body["data"]
        url = body["links"]["next"]
    return items


def latest_token(client: FlaskClient) -> str:
    """The /changes token after every change so far."""
    url = "/api/v1/changes?limit=1000"
    while True:
        body = client.get(url).get_json()
        if body["links"]["next"] is None:
            return str(body["meta"]["since"])
        url = body["links"]["next"]


def changed_since(client: FlaskClient, token: str) -> set[str]:
    return {change["event_id"] for change in pages(client, f"/api/v1/changes?since={token}")}


def events(client: FlaskClient, query: str = "") -> dict[str, dict[str, Any]]:
    return {event["id"]: event for event in pages(client, f"/api/v1/events?limit=1000&{query}")}


def without_count(record: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in record.items() if name != "event_count"}


def assert_consistent(client: FlaskClient) -> None:
    """The events' documents, /locations, /sources, /stats?group_by=admin1 and the
    admin1 filter say the same of every place, source and region."""
    documents = events(client)
    places = {place["id"]: place for place in pages(client, "/api/v1/locations?limit=1000")}
    sources = {source["id"]: source for source in pages(client, "/api/v1/sources?limit=1000")}
    for event in documents.values():
        assert without_count(places[event["location"]["id"]]) == event["location"]
        assert without_count(sources[event["source"]["id"]]) == event["source"]
    in_documents = Counter(event["location"]["admin1"] for event in documents.values())
    in_places: Counter[str | None] = Counter()
    for place in places.values():
        in_places[place["admin1"]] += place["event_count"]
    stats = pages(client, "/api/v1/stats?group_by=admin1")
    assert {row["key"]: row["events"] for row in stats} == +in_places == in_documents
    for admin1 in in_documents.keys() - {None}:
        found = events(client, f"admin1={admin1.replace(' ', '%20')}")
        assert found.keys() == {
            event_id
            for event_id, event in documents.items()
            if (event["location"]["admin1"] or "").casefold() == admin1.casefold()
        }


def test_the_regions_are_as_the_gazetteer_knows_them() -> None:
    assert [admin1_named(name) is None for name in ADMIN1] == [True, True, False, False]


# A change: what to change (a place's admin1, name or point, a source's title), which
# place or source (an index into those in use), the new value, the writer (the
# seed's load of curated events, or a bulk load), and how many other new events the
# same write brings.
CHANGE = st.tuples(
    st.sampled_from(["admin1", "name", "point", "title"]),
    st.integers(0, 10**6),
    st.integers(0, 3),
    st.sampled_from(["load_curated", "bulk_load"]),
    st.integers(0, 4),
)
# Examples per engine: a PostgreSQL example costs several times a SQLite one (a
# database copied from a template, most of it PostGIS's).
EXAMPLES = {"sqlite": 20, "postgresql": 6}


def test_a_change_to_a_shared_record_reaches_every_copy(
    engine: str,
    empty_databases: Callable[[], AbstractContextManager[str]],  # noqa: F811
) -> None:
    @settings(
        max_examples=EXAMPLES[engine], deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(st.integers(0, 1000), st.lists(CHANGE, min_size=1, max_size=4))
    def reaches_every_copy(seed: int, changes: list[tuple[str, int, int, str, int]]) -> None:
        with empty_databases() as database:
            store = open_store(database)
            app = create_app({"DATABASE": database, **TEST_CONFIG})
            try:
                with store.writer() as writer:
                    first = generate_batch(0, 60, seed, UNTIL)
                    writer.load_curated(
                        first, command_author(), datetime.datetime.now(datetime.UTC)
                    )
                for step, change in enumerate(changes):
                    check_a_change(store, database, app.test_client(), seed, step, *change)
            finally:
                close_store(app)
                store.close()

    reaches_every_copy()


def check_a_change(
    store: Store,
    database: str,
    client: FlaskClient,
    seed: int,
    step: int,
    what: str,
    pick: int,
    value: int,
    writer_kind: str,
    others: int,
) -> None:
    """Write one change to a shared record, with other new events, and check that
    every copy and every reader agrees."""
    token = latest_token(client)
    table, column = ("sources", "source_id") if what == "title" else ("locations", "location_id")
    in_use = sorted({record_id for (record_id,) in rows(database, f"SELECT {column} FROM events")})
    record_id = in_use[pick % len(in_use)]
    copies = {
        event_id
        for (event_id,) in rows(database, f"SELECT id FROM events WHERE {column} = ?", record_id)
    }
    before = without_count(client.get(f"/api/v1/{table}/{record_id}").get_json())
    after = dict(before)
    if what == "admin1":
        after["admin1"] = ADMIN1[value]
    elif what == "name":
        after["name"] = PLACE_NAMES[value]
    elif what == "point":
        after["latitude"], after["longitude"] = POINTS[value]
    else:
        after["title"] = TITLES[value]
    # New events, the first at the changed place or source; every other place and
    # source as stored (a writer agreeing with the data but for this change), the
    # first event's other one too: as generated, it may describe a stored record
    # otherwise than another event of the write does.
    fresh = generate_batch(10_000 * (step + 1), 1 + others, seed + 1, UNTIL)
    for event in fresh:
        for name, shared in (("location", "locations"), ("source", "sources")):
            response = client.get(f"/api/v1/{shared}/{event[name]['id']}")
            if event[name]["id"] == record_id:
                event[name] = loaded(table, after)
            elif response.status_code == 200:
                event[name] = loaded(shared, without_count(response.get_json()))
    fresh[0]["location" if table == "locations" else "source"] = loaded(table, after)
    now = datetime.datetime(2026, 1, 1, step, tzinfo=datetime.UTC)
    if writer_kind == "load_curated":
        with store.writer() as writer:
            writer.load_curated(fresh, command_author(), now)
    else:
        with store.bulk_load(command_author(), now, lambda counts: []) as load:
            load.add(event_rows(fresh, now))

    documents = events(client)
    name = "location" if table == "locations" else "source"
    for event_id in copies | {fresh[0]["id"]}:
        assert documents[event_id][name] == after
    # Mirrors see each copy change, and only a change.
    changed = changed_since(client, token)
    assert copies <= changed if after != before else not copies & changed
    assert_consistent(client)
    assert_rollups_equal_the_raw_aggregate(database)


def loaded(table: str, record: dict[str, Any]) -> dict[str, Any]:
    """A place or source as served, as EventSchema.load gives it."""
    if table == "sources":
        return {**record, "published": datetime.date.fromisoformat(record["published"])}
    return record


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A writable copy of the curated data."""
    return Path(shutil.copytree(DATA_DIR, tmp_path / "data"))


def seeded_partner(db: str, data_dir: Path, open_app: Callable[..., Flask]) -> Partner:
    """A partner on a database (of either engine) the seed wrote from data_dir."""
    assert seed_main(["--db", db, "--data", str(data_dir)]) == 0
    return Partner(db, open_app(db))


def post_at_kharkiv(partner: Partner) -> str:
    """The id of an event the partner posts at ua-kharkiv."""
    event, _ = partner.event(KHARKIV)
    posted = {**event, "id": "ua-2024-05-31-partner-strike", "notes": "Posted by a partner."}
    assert partner.post(posted).status_code == 201
    return str(posted["id"])


def test_the_seed_renaming_a_region_reaches_a_partners_event(
    empty_database: str,  # noqa: F811
    data_dir: Path,
    open_app: Callable[..., Flask],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The reproduction: a partner posts an event at ua-kharkiv, then the curated data
    renames the place's admin1 and the seed runs."""
    db = empty_database
    partner = seeded_partner(db, data_dir, open_app)
    posted_id = post_at_kharkiv(partner)
    client = partner.client
    etag = client.get(f"/api/v1/events/{posted_id}").headers["ETag"]
    token = latest_token(client)

    def rename(document: dict[str, Any]) -> None:
        document["places"]["kharkiv"]["admin1"] = "Slobozhanshchyna"

    edit_first_file(data_dir, rename)
    capsys.readouterr()
    assert seed_main(["--db", db, "--data", str(data_dir)]) == 0
    assert capsys.readouterr().out.endswith(
        "0 new, 1 updated, 16 unchanged, 0 kept as edited through the API, 0 kept deleted "
        "through the API; 1 other event re-rendered with the places and sources it changed\n"
    )

    assert client.get("/api/v1/locations/ua-kharkiv").get_json()["admin1"] == "Slobozhanshchyna"
    response = client.get(f"/api/v1/events/{posted_id}")
    assert response.get_json()["location"]["admin1"] == "Slobozhanshchyna"
    assert response.headers["ETag"] != etag
    assert posted_id in events(client, "admin1=slobozhanshchyna")
    assert posted_id not in events(client, "admin1=kharkiv%20oblast")
    stats = {row["key"]: row["events"] for row in pages(client, "/api/v1/stats?group_by=admin1")}
    assert stats["Slobozhanshchyna"] == 2  # the curated event and the partner's
    assert changed_since(client, token) == {KHARKIV, posted_id}
    assert_consistent(client)
    # A seed that changes nothing re-renders nothing.
    token = latest_token(client)
    assert seed_main(["--db", db, "--data", str(data_dir)]) == 0
    assert changed_since(client, token) == set()


def test_a_partners_edit_outlives_a_change_to_its_place(
    empty_database: str,  # noqa: F811
    data_dir: Path,
    open_app: Callable[..., Flask],
) -> None:
    """A curated event a partner edited is kept by the seed as the partner left it;
    another writer changing its place re-renders it, and it is still the partner's
    when the seed changes the place back."""
    db = empty_database
    partner = seeded_partner(db, data_dir, open_app)
    event, etag = partner.event(FRANCE)
    patched = partner.client.patch(
        f"/api/v1/events/{FRANCE}",
        json={"notes": "Edited by a partner."},
        headers=partner.headers(**{"If-Match": etag}),
    )
    assert patched.status_code == 200
    # A bulk load (an import, say) moves the point standing for Ukraine: the
    # partner's edit is re-rendered with it.
    (fresh,) = generate_batch(0, 1, 1, UNTIL)
    fresh["location"] = {**event["location"], "latitude": 49.0, "longitude": 31.5}
    store = open_store(db)
    try:
        now = datetime.datetime.now(datetime.UTC)
        with store.bulk_load(command_author(), now, lambda counts: []) as load:
            load.add(event_rows([fresh], now))
    finally:
        store.close()
    moved = partner.client.get(f"/api/v1/events/{FRANCE}").get_json()
    assert (moved["notes"], moved["location"]["latitude"]) == ("Edited by a partner.", 49.0)

    # The seed writes its other events at Ukraine with the curated point, which
    # re-renders the partner's edit and the import's event again; the edit stays.
    assert seed_main(["--db", db, "--data", str(data_dir)]) == 0
    kept = partner.client.get(f"/api/v1/events/{FRANCE}").get_json()
    assert (kept["notes"], kept["location"]) == ("Edited by a partner.", event["location"])
    imported = partner.client.get(f"/api/v1/events/{fresh['id']}").get_json()
    assert imported["location"] == event["location"]
    assert_consistent(partner.client)
    # And the seed after that still knows the edit for the partner's.
    assert seed_main(["--db", db, "--data", str(data_dir)]) == 0
    assert partner.client.get(f"/api/v1/events/{FRANCE}").get_json()["notes"] == (
        "Edited by a partner."
    )


def test_an_import_changing_a_shared_place_re_renders_its_copies(
    empty_database: str,  # noqa: F811 (a fixture)
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    open_app: Callable[..., Flask],
) -> None:
    """The missile-attacks importer puts a wave without a target at the gazetteer's
    Ukraine ('ua'), which these curated data name otherwise: the import changes the
    place for every event at it, as a bulk load (re-rendered at its end; on
    PostgreSQL, in the first slice)."""

    def rename(document: dict[str, Any]) -> None:
        document["places"]["ukraine"]["name"] = "Ukraine as a whole"

    edit_first_file(data_dir, rename)
    db = empty_database
    assert seed_main(["--db", db, "--data", str(data_dir)]) == 0
    client = open_app(db).test_client()
    curated = {
        i for i, e in events(client).items() if e["location"]["name"] == "Ukraine as a whole"
    }
    assert len(curated) == 7
    token = latest_token(client)
    capsys.readouterr()
    assert run_import(db, "missile-attacks", FIXTURES / "missile-attacks-daily.csv") == 0
    assert capsys.readouterr().out.endswith(
        "23 new, 0 updated, 0 unchanged, 1 repeated (skipped); "
        "7 other events re-rendered with the places and sources it changed\n"
    )
    assert client.get("/api/v1/locations/ua").get_json()["name"] == "Ukraine"
    documents = events(client)
    assert {documents[event_id]["location"]["name"] for event_id in curated} == {"Ukraine"}
    assert curated <= changed_since(client, token)
    assert_consistent(client)
    ((detail,),) = rows(db, "SELECT detail FROM audit_log WHERE action = 'import'")
    assert json.loads(detail)["rerendered"] == 7


# An actor's name set in a stored document, on each engine.
SET_ACTOR_NAME = {
    "sqlite": "json_set(body, '$.actors[0].name', ?)",
    "postgresql": "jsonb_set(CAST(body AS jsonb), '{actors,0,name}', to_jsonb(CAST(? AS text)))",
}


def test_a_copy_that_no_longer_loads_stops_the_write(
    empty_database: str,  # noqa: F811
    engine: str,
    data_dir: Path,
    open_app: Callable[..., Flask],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An event stored under older rules that today's schema refuses cannot be
    re-rendered: the seed changing its place writes nothing and names it."""
    db = empty_database
    partner = seeded_partner(db, data_dir, open_app)
    posted_id = post_at_kharkiv(partner)
    # As an older Salvo might have stored it: a control character in an actor's name.
    execute(
        db,
        f"UPDATE event_documents SET body = {SET_ACTOR_NAME[engine]} "
        "WHERE row_id = (SELECT row_id FROM events WHERE id = ?)",
        ["Military Forces\x07 of Russia", posted_id],
    )

    def rename(document: dict[str, Any]) -> None:
        document["places"]["kharkiv"]["admin1"] = "Slobozhanshchyna"

    edit_first_file(data_dir, rename)
    capsys.readouterr()
    assert seed_main(["--db", db, "--data", str(data_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "seed: nothing written: the event 'ua-2024-05-31-partner-strike' copies a place or "
        "source this write changes, but its stored document does not load as an event now "
        "(actors.0.name: "
    ), err
    assert partner.client.get("/api/v1/locations/ua-kharkiv").get_json()["admin1"] == (
        "Kharkiv Oblast"
    )
