"""The seed command: validation before writing, one transaction, idempotence, and
re-seeding without undoing partners' writes. On SQLite files; the same seed into
PostgreSQL, compared answer for answer with these, is tests/test_postgresql_seed.py."""

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from seed.__main__ import main as seed_main
from seed.curated import DATA_DIR
from tests.test_writes import KHARKIV, Partner

TABLES = (
    "sources",
    "locations",
    "events",
    "event_documents",
    "actors",
    "event_actors",
    "munitions",
    "reporters",
    "curated_loads",
)


def snapshot(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order."""
    conn = sqlite3.connect(path)
    try:
        tables = {
            table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall()) for table in TABLES
        }
        tables["events_fts"] = sorted(conn.execute("SELECT rowid, * FROM events_fts").fetchall())
        tables["locations_rtree"] = sorted(conn.execute("SELECT * FROM locations_rtree").fetchall())
        return tables
    finally:
        conn.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A writable copy of the curated data, to corrupt."""
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def edit_first_file(data_dir: Path, edit: Callable[[dict[str, Any]], Any]) -> None:
    path = sorted(data_dir.glob("*.yaml"))[0]
    document = yaml.safe_load(path.read_text())
    edit(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def test_seed_command_runs_as_documented(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    result = subprocess.run(
        [sys.executable, "-m", "seed", "--db", str(db)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"seed: 17 curated events from {DATA_DIR} into {db}: 17 new, 0 updated, 0 unchanged, "
        "0 kept as edited through the API, 0 kept deleted through the API\n"
    )
    assert len(snapshot(db)["events"]) == 17


def test_database_path_comes_from_salvo_database(tmp_path: Path) -> None:
    db = tmp_path / "from-env.db"
    result = subprocess.run(
        [sys.executable, "-m", "seed"],
        capture_output=True,
        text=True,
        check=False,
        env={"SALVO_DATABASE": str(db), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    assert len(snapshot(db)["events"]) == 17


def test_seeding_twice_leaves_the_same_rows(tmp_path: Path) -> None:
    db = tmp_path / "twice.db"
    assert seed_main(["--db", str(db)]) == 0
    first = snapshot(db)
    assert seed_main(["--db", str(db)]) == 0
    assert snapshot(db) == first
    assert len(first["events"]) == 17
    assert len(first["locations"]) == 8


def test_reseeding_replaces_an_events_child_rows(tmp_path: Path, data_dir: Path) -> None:
    db = tmp_path / "edit.db"
    assert seed_main(["--db", str(db), "--data", str(data_dir)]) == 0

    def drop_mixed_entry(document: dict) -> None:
        event = next(e for e in document["events"] if e["id"].endswith("air-attack-interceptions"))
        event["munitions"] = event["munitions"][:2]

    edit_first_file(data_dir, drop_mixed_entry)
    assert seed_main(["--db", str(db), "--data", str(data_dir)]) == 0
    conn = sqlite3.connect(db)
    categories = conn.execute(
        "SELECT category FROM munitions WHERE event_id = ? ORDER BY position",
        ["ua-2024-05-30-nationwide-air-attack-interceptions"],
    ).fetchall()
    assert categories == [("missile",), ("drone",)]


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (
            lambda e: e["munitions"][0].update(intercepted=9),
            "record 'ua-2024-05-30-kharkiv-missile-strike': munitions.0.intercepted: "
            "intercepted (9) exceeds launched (8).",
        ),
        (
            lambda e: e["location"].update(latitude=123.0),
            "record 'ua-2024-05-30-kharkiv-missile-strike': location.latitude: "
            "Must be greater than or equal to -90 and less than or equal to 90.",
        ),
        (
            lambda e: e.update(date_precision="fortnight"),
            "record 'ua-2024-05-30-kharkiv-missile-strike': date_precision: Must be one of: "
            "day, week, month, year.",
        ),
        (
            lambda e: e["casualties"]["injured"].update(best=-4),
            "record 'ua-2024-05-30-kharkiv-missile-strike': casualties.injured.best: "
            "Must be greater than or equal to 0 and less than or equal to 10000000.",
        ),
    ],
    ids=["intercepted-over-launched", "latitude", "date-precision", "negative-count"],
)
def test_an_invalid_record_leaves_the_database_untouched(
    tmp_path: Path,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    corrupt: Callable[[dict[str, Any]], Any],
    expected: str,
) -> None:
    db = tmp_path / "guarded.db"
    assert seed_main(["--db", str(db), "--data", str(data_dir)]) == 0
    before = snapshot(db)
    mtime = db.stat().st_mtime_ns

    def corrupt_kharkiv(document: dict) -> None:
        event = next(
            e for e in document["events"] if e["id"] == "ua-2024-05-30-kharkiv-missile-strike"
        )
        # safe_dump wrote the aliases out as copies, so this corrupts one record only.
        corrupt(event)

    edit_first_file(data_dir, corrupt_kharkiv)
    assert seed_main(["--db", str(db), "--data", str(data_dir)]) == 1
    message = capsys.readouterr().err
    assert "2024-05-30-stoltenberg-easing-bans.yaml" in message
    assert expected in message
    assert snapshot(db) == before
    assert db.stat().st_mtime_ns == mtime


def test_a_place_defined_two_ways_is_refused(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def move_vovchansk_once(document: dict) -> None:
        event = next(
            e for e in document["events"] if e["id"] == "ua-2024-05-vovchansk-street-fighting"
        )
        event["location"]["id"] = "ua-kharkiv"

    edit_first_file(data_dir, move_vovchansk_once)
    assert seed_main(["--db", str(tmp_path / "x.db"), "--data", str(data_dir)]) == 1
    assert (
        "record 'ua-2024-05-vovchansk-street-fighting': location: location 'ua-kharkiv' differs "
        "from its definition in record 'ua-2024-05-30-kharkiv-missile-strike'"
    ) in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


def test_duplicate_ids_are_refused(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_first_file(data_dir, lambda d: d["events"].append(dict(d["events"][0])))
    assert seed_main(["--db", str(tmp_path / "dup.db"), "--data", str(data_dir)]) == 1
    assert "record 'ua-2024-05-30-kharkiv-missile-strike': id: duplicates a record in" in (
        capsys.readouterr().err
    )


def test_unknown_fields_in_a_record_are_refused(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_first_file(data_dir, lambda d: d["events"][0].update(fatalities=3))
    assert seed_main(["--db", str(tmp_path / "u.db"), "--data", str(data_dir)]) == 1
    assert "fatalities: Unknown field." in capsys.readouterr().err


def test_a_write_that_fails_midway_rolls_back_everything(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "atomic.db"
    assert seed_main(["--db", str(db), "--data", str(data_dir)]) == 0
    # A trigger makes SQLite itself refuse one late row of the next seed, after
    # earlier events of the same run were already written.
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON reporters "
        "WHEN NEW.event_id = 'ua-2024-05-30-france-plans-training-mission' "
        "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
    )
    conn.commit()
    conn.close()
    before = snapshot(db)

    edit_first_file(
        data_dir, lambda d: [e.update(notes=e["notes"] + " Edited.") for e in d["events"]]
    )
    assert seed_main(["--db", str(db), "--data", str(data_dir)]) == 1
    assert "writing failed, the database is unchanged: refused by test trigger" in (
        capsys.readouterr().err
    )
    assert snapshot(db) == before


def test_a_database_of_another_layout_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE events (id TEXT PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO events VALUES ('kept', '{}')")
    conn.commit()
    conn.close()
    assert seed_main(["--db", str(db)]) == 1
    assert "was made by another version of Salvo (events differ)" in capsys.readouterr().err
    assert sqlite3.connect(db).execute("SELECT * FROM events").fetchall() == [("kept", "{}")]


# Re-seeding a database partners write to (`make run` seeds on every start).

FRANCE = "ua-2024-05-30-france-plans-training-mission"
NOTHING_KEPT = "0 kept as edited through the API, 0 kept deleted through the API"


def seed_and_say(
    capsys: pytest.CaptureFixture[str], db: Path, data_dir: Path, *argv: str, events: int = 17
) -> str:
    """Seed db from data_dir and return the seed's account of what it did."""
    assert seed_main(["--db", str(db), "--data", str(data_dir), *argv]) == 0
    out = capsys.readouterr().out
    prefix = f"seed: {events} curated events from {data_dir} into {db}: "
    assert out.startswith(prefix) and out.endswith("\n"), out
    return out.removeprefix(prefix).removesuffix("\n")


@pytest.fixture
def partner(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> Partner:
    """A partner with a write key on a database seeded from data_dir."""
    db = tmp_path / "reseed.db"
    assert seed_and_say(capsys, db, data_dir) == f"17 new, 0 updated, 0 unchanged, {NOTHING_KEPT}"
    return Partner(db)


def changes_after(partner: Partner, since: str | None) -> tuple[list[tuple[str, str]], str]:
    """The (change, event id) pairs after the since token, and the token after them."""
    query = "" if since is None else f"&since={since}"
    page = partner.client.get(f"/api/v1/changes?limit=1000{query}").get_json()
    return [(c["change"], c["event_id"]) for c in page["data"]], page["meta"]["since"]


def revise_notes(data_dir: Path, *event_ids: str) -> None:
    """The curators rewrite these events' notes."""
    edit_first_file(
        data_dir,
        lambda d: [
            e.update(notes="Revised by the curators.") for e in d["events"] if e["id"] in event_ids
        ],
    )


def notes(partner: Partner, event_id: str) -> str:
    return partner.client.get(f"/api/v1/events/{event_id}").get_json()["notes"]


def test_an_event_deleted_through_the_api_stays_deleted(
    partner: Partner, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, etag = partner.event(KHARKIV)
    deleted = partner.client.delete(
        f"/api/v1/events/{KHARKIV}", headers=partner.headers(**{"If-Match": etag})
    )
    assert deleted.status_code == 204
    _, since = changes_after(partner, None)

    assert seed_and_say(capsys, partner.path, data_dir) == (
        "0 new, 0 updated, 16 unchanged, "
        "0 kept as edited through the API, 1 kept deleted through the API"
    )
    assert partner.client.get(f"/api/v1/events/{KHARKIV}").status_code == 410
    assert changes_after(partner, since) == ([], since)

    # Not even a revised curated record brings it back...
    revise_notes(data_dir, KHARKIV)
    assert seed_and_say(capsys, partner.path, data_dir) == (
        "0 new, 0 updated, 16 unchanged, "
        "0 kept as edited through the API, 1 kept deleted through the API"
    )
    assert partner.client.get(f"/api/v1/events/{KHARKIV}").status_code == 410
    assert changes_after(partner, since) == ([], since)

    # ...only the operator's --restore, which mirrors see as a new event.
    assert seed_and_say(capsys, partner.path, data_dir, "curated", "--restore", KHARKIV) == (
        f"1 new, 0 updated, 16 unchanged, {NOTHING_KEPT}"
    )
    assert notes(partner, KHARKIV) == "Revised by the curators."
    assert changes_after(partner, since)[0] == [("created", KHARKIV)]


def test_an_api_edit_stays_until_its_curated_record_changes(
    partner: Partner, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, etag = partner.event(KHARKIV)
    patched = partner.client.patch(
        f"/api/v1/events/{KHARKIV}",
        json={"notes": "Edited by a partner."},
        headers=partner.headers(**{"If-Match": etag}),
    )
    assert patched.status_code == 200
    _, since = changes_after(partner, None)

    assert seed_and_say(capsys, partner.path, data_dir) == (
        "0 new, 0 updated, 16 unchanged, "
        "1 kept as edited through the API, 0 kept deleted through the API"
    )
    assert notes(partner, KHARKIV) == "Edited by a partner."
    assert changes_after(partner, since) == ([], since)

    # The curators revise it and an event no one edited: both curated versions win,
    # each once in /changes.
    revise_notes(data_dir, KHARKIV, FRANCE)
    assert seed_and_say(capsys, partner.path, data_dir) == (
        f"0 new, 2 updated, 15 unchanged, {NOTHING_KEPT}"
    )
    assert notes(partner, KHARKIV) == "Revised by the curators."
    assert notes(partner, FRANCE) == "Revised by the curators."
    changes, since = changes_after(partner, since)
    assert changes == [("updated", KHARKIV), ("updated", FRANCE)]

    # The curated version is the seed's again: re-seeding it changes nothing.
    assert seed_and_say(capsys, partner.path, data_dir) == (
        f"0 new, 0 updated, 17 unchanged, {NOTHING_KEPT}"
    )
    assert changes_after(partner, since) == ([], since)


def test_a_database_seeded_before_curated_loads_keeps_api_edits(
    partner: Partner, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, etag = partner.event(KHARKIV)
    patched = partner.client.patch(
        f"/api/v1/events/{KHARKIV}",
        json={"notes": "Edited by a partner."},
        headers=partner.headers(**{"If-Match": etag}),
    )
    assert patched.status_code == 200
    # An older seed left no record of what it loaded.
    conn = sqlite3.connect(partner.path)
    conn.execute("DROP TABLE curated_loads")
    conn.close()

    assert seed_and_say(capsys, partner.path, data_dir) == (
        "0 new, 0 updated, 16 unchanged, "
        "1 kept as edited through the API, 0 kept deleted through the API"
    )
    assert notes(partner, KHARKIV) == "Edited by a partner."
    # That seed remembered the records, so a later curated revision still wins.
    revise_notes(data_dir, KHARKIV)
    assert seed_and_say(capsys, partner.path, data_dir) == (
        f"0 new, 1 updated, 16 unchanged, {NOTHING_KEPT}"
    )
    assert notes(partner, KHARKIV) == "Revised by the curators."


def test_an_event_a_partner_created_before_the_curators_stays_the_partners(
    partner: Partner, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event, _ = partner.event(KHARKIV)
    added = {**event, "id": "ua-2024-05-31-added", "notes": "Posted by a partner."}
    assert partner.post(added).status_code == 201

    edit_first_file(
        data_dir,
        lambda d: d["events"].append(
            {**d["events"][0], "id": "ua-2024-05-31-added", "notes": "Coded by the curators."}
        ),
    )
    assert seed_and_say(capsys, partner.path, data_dir, events=18) == (
        "0 new, 0 updated, 17 unchanged, "
        "1 kept as edited through the API, 0 kept deleted through the API"
    )
    assert notes(partner, "ua-2024-05-31-added") == "Posted by a partner."


@pytest.mark.parametrize(
    "argv",
    [["--data", "DATA"], ["curated", "--data", "DATA"], ["--data", "DATA", "curated"]],
    ids=["before", "after-curated", "before-curated"],
)
def test_data_is_accepted_before_and_after_curated(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    db = tmp_path / "data.db"
    assert seed_main(["--db", str(db)]) == 0

    def add_event(document: dict) -> None:
        document["events"].append({**document["events"][0], "id": "ua-2024-05-31-added"})

    edit_first_file(data_dir, add_event)
    capsys.readouterr()
    assert seed_main(["--db", str(db), *(str(data_dir) if a == "DATA" else a for a in argv)]) == 0
    assert capsys.readouterr().out == (
        f"seed: 18 curated events from {data_dir} into {db}: "
        f"1 new, 0 updated, 17 unchanged, {NOTHING_KEPT}\n"
    )
    assert len(snapshot(db)["events"]) == 18


def test_restoring_an_id_the_data_lacks_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "restore.db"
    assert seed_main(["--db", str(db), "curated", "--restore", "ua-no-such-event"]) == 2
    assert capsys.readouterr().err == (
        "seed: --restore names no curated event: ua-no-such-event; nothing written\n"
    )
    assert not db.exists()
