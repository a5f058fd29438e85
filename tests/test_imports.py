"""python -m seed import: each dataset's rows mapped to exact values, the errors a
partner sees, idempotence, --skip-invalid, standard input, and the imported events
served, filtered, totalled and synced through the API. On SQLite: the mapping is the
same for both engines, and the import into PostgreSQL is compared with SQLite's in
tests/test_postgresql_imports.py."""

import csv
import io
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from schemas.vocabulary import ACLED_SUB_EVENT_TYPES, EVENT_TYPES
from seed import imports
from seed.__main__ import main as seed_main
from seed.imports import model_category

FIXTURES = Path(__file__).parent / "fixtures" / "imports"
ACLED, GED, MISSILES = FIXTURES / "acled.csv", FIXTURES / "ged.csv", FIXTURES / "missiles.csv"
INVALID = FIXTURES / "acled-invalid.csv"


def run_import(db: Path | str, layout: str, path: Path | str, *extra: str) -> int:
    return seed_main(
        ["--db", str(db), "import", "--format", layout, str(path), "--workers", "1", *extra]
    )


def read_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.reader(file))


def client_of(db: Path) -> FlaskClient:
    app: Flask = create_app({"DATABASE": str(db), "TESTING": True, "RATE_LIMITS_ENABLED": False})
    return app.test_client()


def document(client: FlaskClient, event_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/events/{event_id}")
    assert response.status_code == 200, response.get_json()
    event = response.get_json()
    del event["updated_at"]
    return event


def event_count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three fixtures imported into one database, after the curated seed."""
    db = tmp_path_factory.mktemp("imported") / "salvo.db"
    assert seed_main(["--db", str(db)]) == 0
    for layout, path in (("acled", ACLED), ("ucdp-ged", GED), ("missile-attacks", MISSILES)):
        assert run_import(db, layout, path) == 0
    return db


@pytest.fixture
def client(imported: Path) -> FlaskClient:
    return client_of(imported)


def test_an_acled_row_maps_field_by_field(client: FlaskClient) -> None:
    assert document(client, "acled-ukr100001") == {
        "id": "acled-ukr100001",
        "event_type": "shelling",
        "acled": {
            "disorder_type": "Political violence",
            "event_type": "Explosions/Remote violence",
            "sub_event_type": "Shelling/artillery/missile attack",
        },
        "date": "2024-05-30",
        "date_precision": "day",
        "location": {
            "id": "acled-ua-kharkiv-7603be10",
            "name": "Kharkiv",
            "admin1": "Kharkiv Oblast",
            "country": "Ukraine",
            "country_code": "UA",
            "latitude": 49.9935,
            "longitude": 36.2304,
            "precision": "city",
        },
        "actors": [
            {
                "name": "Military Forces of Russia (2000-)",
                "role": "initiator",
                "kind": "state_forces",
            },
            {"name": "Civilians (Ukraine)", "role": "target", "kind": "civilians"},
        ],
        "munitions": [],
        "casualties": {
            "killed": {"best": 3, "low": 3, "high": 3, "qualifier": "exact", "reported_by": None},
            "injured": None,
        },
        "reported_by": [],
        "source": {
            "id": "acled-2024-06-04",
            "title": "ACLED data as changed on 2024-06-04",
            "publisher": "ACLED",
            "url": "https://acleddata.com/",
            "published": "2024-06-04",
            "reference": None,
        },
        "notes": "On 30 May 2024, Russian forces shelled Kharkiv city. Three civilians were "
        'killed, "a dozen" houses damaged.',
        "provenance": {
            "dataset": "acled",
            "record_id": "UKR100001",
            "record_updated": "2024-06-04T11:20:00.000000Z",
            "source_date": None,
            "acled": {
                "disorder_type": "Political violence",
                "event_type": "Explosions/Remote violence",
                "sub_event_type": "Shelling/artillery/missile attack",
            },
            "sources": "Made-up Daily; Kharkiv Regional Military Administration",
            "source_scale": "National-Regional",
            "tags": None,
            "civilian_targeting": "Civilian targeting",
            "deaths_civilians": None,
            "launch_place": None,
            "carrier": None,
        },
    }


def test_acled_precisions_inter_texts_and_associated_actors(client: FlaskClient) -> None:
    week = document(client, "acled-ukr100002")
    # time_precision 2 is a week; geo_precision 2 is near; inter codes given as text.
    assert (week["date"], week["date_precision"]) == ("2024-06-12", "week")
    assert week["location"]["precision"] == "near"
    assert week["location"]["admin1"] == "Zaporizhzhia Oblast"
    assert week["actors"] == [
        {"name": "Military Forces of Ukraine (2019-)", "role": "initiator", "kind": "state_forces"},
        {"name": "National Guard of Ukraine", "role": "associated", "kind": "other"},
        {"name": "Police Forces of Ukraine (2019-)", "role": "associated", "kind": "state_forces"},
        {"name": "Military Forces of Russia (2000-)", "role": "target", "kind": "state_forces"},
    ]
    # ACLED's own sub-event type stays, although Salvo's type is territory_change.
    assert week["event_type"] == "territory_change"
    assert week["acled"]["sub_event_type"] == "Government regains territory"
    assert week["notes"].endswith("near Robotyne.\nThe fighting went on for several days.")

    month = document(client, "acled-ukr100003")
    # time_precision 3 is the month, dated on its first day; ACLED's date is kept.
    assert (month["date"], month["date_precision"]) == ("2024-04-01", "month")
    assert month["provenance"]["source_date"] == "2024-04-15"
    # geo_precision 3 in Ukraine is the oblast, as Salvo's own data names it.
    assert month["location"]["id"] == "ua-odesa-oblast"
    assert month["location"]["precision"] == "region"
    assert month["event_type"] == "air_defense_interception"

    protest = document(client, "acled-rus200001")
    assert protest["event_type"] == "peaceful_protest"
    assert protest["location"]["country_code"] == "RU"  # iso 643
    assert protest["actors"] == [
        {"name": "Protesters (Russia)", "role": "initiator", "kind": "protesters"}
    ]
    assert protest["provenance"]["tags"] == "crowd size=around 20"
    assert protest["casualties"]["killed"]["best"] == 0

    mob = document(client, "acled-pol300001")
    assert mob["acled"] == {
        "disorder_type": "Political violence; Demonstrations",
        "event_type": "Riots",
        "sub_event_type": "Mob violence",
    }
    assert mob["location"]["country_code"] == "PL"
    assert mob["actors"][0]["kind"] == "rioters"  # inter1 5


def test_every_acled_sub_event_type_imports(tmp_path: Path) -> None:
    rows = read_rows(ACLED)
    header, template = rows[0], rows[1]
    path = tmp_path / "all-types.csv"
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for n, (acled_type, sub) in enumerate(ACLED_SUB_EVENT_TYPES):
            row = dict(zip(header, template, strict=True))
            row |= {"event_id_cnty": f"UKR9{n:05d}", "event_type": acled_type}
            row["sub_event_type"] = sub
            writer.writerow(row.values())
    db = tmp_path / "salvo.db"
    assert run_import(db, "acled", path) == 0
    client = client_of(db)
    assert len(ACLED_SUB_EVENT_TYPES) == 25
    for n, ((acled_type, sub), event_type) in enumerate(ACLED_SUB_EVENT_TYPES.items()):
        event = document(client, f"acled-ukr9{n:05d}")
        assert event["event_type"] == event_type
        assert event_type in EVENT_TYPES
        assert (event["acled"]["event_type"], event["acled"]["sub_event_type"]) == (
            acled_type,
            sub,
        )


def test_a_ged_row_maps_field_by_field(client: FlaskClient) -> None:
    assert document(client, "ged-900001") == {
        "id": "ged-900001",
        "event_type": "armed_clash",
        "acled": {
            "disorder_type": "Political violence",
            "event_type": "Battles",
            "sub_event_type": "Armed clash",
        },
        "date": "2024-05-30",
        "date_precision": "day",
        "location": {
            "id": "ged-ua-vovchansk-town-7a61c950",
            "name": "Vovchansk town",
            "admin1": "Kharkiv Oblast",
            "country": "Ukraine",
            "country_code": "UA",
            "latitude": 50.2906,
            "longitude": 36.9414,
            "precision": "near",
        },
        "actors": [
            {
                "name": "Government of Russia (Soviet Union)",
                "role": "initiator",
                "kind": "state_forces",
            },
            {"name": "Government of Ukraine", "role": "target", "kind": "state_forces"},
        ],
        "munitions": [],
        "casualties": {
            "killed": {
                "best": 12,
                "low": 10,
                "high": 15,
                "qualifier": "approximately",
                "reported_by": None,
            },
            "injured": None,
        },
        "reported_by": [],
        "source": {
            "id": "ged-900001",
            "title": "Fighting near Vovchansk",
            "publisher": "Made-up Agency",
            "url": None,
            "published": "2024-05-31",
            "reference": "UCDP GED 900001",
        },
        "notes": "Government of Russia (Soviet Union) - Government of Ukraine. "
        "Killed: 12 (between 10 and 15). Where: near Vovchansk.",
        "provenance": {
            "dataset": "ucdp-ged",
            "record_id": "900001",
            "record_updated": None,
            "source_date": None,
            "acled": None,
            "sources": "Made-up Agency, 2024-05-31, Fighting near Vovchansk",
            "source_scale": None,
            "tags": None,
            "civilian_targeting": None,
            "deaths_civilians": 0,
            "launch_place": None,
            "carrier": None,
        },
    }


def test_ged_date_ranges_precisions_and_countries(client: FlaskClient) -> None:
    week = document(client, "ged-900002")
    # date_prec 3 is a week, with the range's end; where_prec 4 the oblast; the country
    # from its name when country_id is empty; best = low = high is exact.
    assert (week["date"], week["date_precision"], week["date_end"]) == (
        "2024-05-27",
        "week",
        "2024-06-02",
    )
    assert week["event_type"] == "attack_on_civilians"
    assert week["location"]["id"] == "ua-donetsk-oblast"
    assert week["actors"][1] == {"name": "Civilians", "role": "target", "kind": "civilians"}
    assert week["casualties"]["killed"]["qualifier"] == "exact"
    assert week["provenance"]["deaths_civilians"] == 4

    month = document(client, "ged-900003")
    assert (month["date"], month["date_precision"], month["date_end"]) == (
        "2024-04-01",
        "month",
        "2024-04-20",
    )
    assert month["provenance"]["source_date"] == "2024-04-10"
    # Gleditsch-Ward 365 is Russia; where_prec 6 the country.
    assert month["location"]["country_code"] == "RU"
    assert month["location"]["country"] == "Russia"
    assert month["location"]["precision"] == "country"
    # A day-precise event has no date_end at all.
    assert "date_end" not in document(client, "ged-900001")


def test_a_missile_attack_row_maps_field_by_field(client: FlaskClient) -> None:
    assert document(client, "missile-20240529-1800-shahed-136-131-50692eea") == {
        "id": "missile-20240529-1800-shahed-136-131-50692eea",
        "event_type": "air_defense_interception",
        "acled": {
            "disorder_type": "Strategic developments",
            "event_type": "Strategic developments",
            "sub_event_type": "Disrupted weapons use",
        },
        # The wave ended on the morning of the 30th, when the Air Force reported it.
        "date": "2024-05-30",
        "date_precision": "day",
        # Target 'Ukraine': the country. 'Kharkiv oblast' in `affected region` is
        # where damage was reported, not where the wave was aimed (docs/imports.md).
        "location": {
            "id": "ua",
            "name": "Ukraine",
            "admin1": None,
            "country": "Ukraine",
            "country_code": "UA",
            "latitude": 48.3794,
            "longitude": 31.1656,
            "precision": "country",
        },
        "actors": [
            {"name": "Military Forces of Russia", "role": "initiator", "kind": "state_forces"},
            {"name": "Air Force of Ukraine", "role": "interceptor", "kind": "state_forces"},
        ],
        "munitions": [
            {
                "category": "drone",
                "model": "Shahed-136/131",
                "launched": 32,
                "intercepted": 29,
                "not_reached": 2,
                "hit": None,
                "reported_by": "Air Force of Ukraine",
            }
        ],
        "casualties": {"killed": None, "injured": None},
        "reported_by": [{"name": "Air Force of Ukraine", "kind": "military", "title": None}],
        "source": {
            "id": "missile-attacks-2024-05-30-d1b1f68a",
            "title": "Air Force of Ukraine report of 2024-05-30",
            "publisher": "Air Force of Ukraine",
            "url": "https://example.org/air-force/2024-05-30",
            "published": "2024-05-30",
            "reference": None,
        },
        "notes": "Russia launched 32 Shahed-136/131, air defence destroyed 29, 2 did not reach "
        "their targets; target: Ukraine.",
        "provenance": {
            "dataset": "missile-attacks",
            "record_id": None,
            "record_updated": None,
            "source_date": None,
            "acled": None,
            "sources": None,
            "source_scale": None,
            "tags": None,
            "civilian_targeting": None,
            "deaths_civilians": None,
            "launch_place": "Kursk oblast",
            "carrier": None,
        },
    }


def test_missile_attack_places_models_and_carriers(client: FlaskClient) -> None:
    cruise = document(client, "missile-20240529-1800-x-101-x-555-and-kalibr-71b652a4")
    assert cruise["munitions"][0]["category"] == "missile"
    assert cruise["location"]["id"] == "ua"  # target 'Ukraine': country precision
    assert cruise["provenance"]["carrier"] == "Tu-95MS"
    assert cruise["provenance"]["launch_place"] == "Caspian Sea"
    both = document(client, "missile-20240601-2000-iskander-m-and-shahed-136-a8ddb675")
    assert both["munitions"][0]["category"] == "mixed"  # a missile and a drone together
    assert both["location"]["id"] == "ua-kyiv-city"  # target 'Kyiv' is the city
    assert both["date"] == "2024-06-02"
    unknown = document(client, "missile-20240603-mystery-9-59674eae")
    assert unknown["munitions"][0]["category"] == "mixed"
    # Two oblasts named: the attack concerns the country.
    assert unknown["location"]["precision"] == "country"


@pytest.mark.parametrize(
    ("model", "category"),
    [
        ("Shahed-136/131", "drone"),
        ("Geran-2", "drone"),
        ("Lancet", "drone"),
        ("X-101/X-555", "missile"),
        ("Kh-59", "missile"),
        ("X-101/X-555 and Kalibr", "missile"),
        ("Iskander-M/KN-23", "missile"),
        ("Kinzhal", "missile"),
        ("S-300", "missile"),
        ("KAB-500", "aerial_bomb"),
        ("Smerch", "rocket"),
        ("Iskander-M and Shahed-136", "mixed"),
        ("Mystery-9", None),
    ],
)
def test_the_model_table(model: str, category: str | None) -> None:
    assert model_category(model) == category


def test_an_unknown_model_is_mixed_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_import(tmp_path / "salvo.db", "missile-attacks", MISSILES) == 0
    assert capsys.readouterr().err == (
        f"seed: warning: {MISSILES}: model 'Mystery-9' is not in the model table; "
        "counted as mixed (1 row)\n"
    )


def test_an_invalid_row_refuses_the_file_naming_line_column_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "salvo.db"
    assert run_import(db, "acled", INVALID) == 1
    assert capsys.readouterr().err == (
        f"seed: {INVALID}: line 3: column latitude: Must be greater than or equal to -90 and "
        "less than or equal to 90. (field location.latitude); nothing written\n"
    )
    assert event_count(db) == 0  # the valid line 2 was rolled back with the rest


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (
            "iso",
            "999",
            "column iso: '999' is not an ISO 3166-1 numeric code in Salvo's country table "
            "(schemas/countries.py)",
        ),
        ("time_precision", "4", "column time_precision: '4' is not 1, 2 or 3"),
        ("event_date", "30/13/2024", "column event_date: '30/13/2024' is not a date (2020-03-21, "
         "21 March 2020, 9-May-20, 31-12-19, 03/21/2020)"),
        ("fatalities", "three", "column fatalities: 'three' is not a number"),
        ("inter1", "Pirates", "column inter1: 'Pirates' is neither an ACLED inter code (1-8) "
         "nor its name ('State forces')"),
        ("sub_event_type", "Skirmish", "column sub_event_type: 'Skirmish' is not one of ACLED's "
         "sub-event types of 'Explosions/Remote violence'"),
        ("notes", "", "column notes: Field may not be null. (field notes)"),
    ],
)  # fmt: skip
def test_error_messages_name_the_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], column: str, value: str, message: str
) -> None:
    rows = read_rows(ACLED)
    rows[1][rows[0].index(column)] = value
    path = tmp_path / "acled.csv"
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(rows[:2])
    assert run_import(tmp_path / "salvo.db", "acled", path) == 1
    assert capsys.readouterr().err == f"seed: {path}: line 2: {message}; nothing written\n"


def test_a_header_without_a_column_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_import(tmp_path / "salvo.db", "ucdp-ged", ACLED) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"seed: {ACLED}: line 1: the header lacks the column(s) id, relid, ")
    assert error.endswith(", gwnoa, gwnob; nothing written\n")


def test_skip_invalid_loads_the_valid_rows_and_lists_the_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "acled-invalid.csv"
    shutil.copy(INVALID, path)
    db = tmp_path / "salvo.db"
    assert run_import(db, "acled", path, "--skip-invalid") == 0
    rejects = tmp_path / "acled-invalid.rejected.csv"
    assert capsys.readouterr().out == (
        f"seed: 4 acled rows from {path} into {db}: 2 new, 0 updated, 0 unchanged, "
        f"2 rejected (listed in {rejects})\n"
    )
    client = client_of(db)
    assert [document(client, f"acled-ukr40000{n}")["id"][-1] for n in (1, 4)] == ["1", "4"]
    rejected = read_rows(rejects)
    original = read_rows(INVALID)
    assert rejected[0] == ["line", "column", "reason", *original[0]]
    assert [row[:3] for row in rejected[1:]] == [
        [
            "3",
            "latitude",
            "Must be greater than or equal to -90 and less than or equal to 90. "
            "(field location.latitude)",
        ],
        [
            "4",
            "iso",
            "'999' is not an ISO 3166-1 numeric code in Salvo's country table "
            "(schemas/countries.py)",
        ],
    ]
    assert [row[3:] for row in rejected[1:]] == [original[2], original[3]]


def test_reimporting_changes_nothing_and_a_changed_row_is_an_update(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "salvo.db"
    assert run_import(db, "acled", ACLED) == 0
    client = client_of(db)
    before = client.get("/api/v1/changes?limit=1000").get_json()
    capsys.readouterr()
    assert run_import(db, "acled", ACLED) == 0
    assert capsys.readouterr().out.endswith(": 0 new, 0 updated, 5 unchanged\n")
    again = client.get("/api/v1/changes?limit=1000").get_json()
    assert again["data"] == before["data"]

    rows = read_rows(ACLED)
    fatalities = rows[0].index("fatalities")
    rows[1][fatalities] = "4"  # ACLED revised UKR100001's figure
    changed = tmp_path / "acled.csv"
    with changed.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(rows)
    assert run_import(db, "acled", changed) == 0
    assert capsys.readouterr().out.endswith(": 0 new, 1 updated, 4 unchanged\n")
    feed = client.get(f"/api/v1/changes?since={before['meta']['since']}").get_json()
    assert [(c["change"], c["event_id"]) for c in feed["data"]] == [("updated", "acled-ukr100001")]
    assert feed["data"][0]["event"]["casualties"]["killed"]["best"] == 4


@pytest.mark.parametrize("batch_size", [2000, 2], ids=["one batch", "batches of two"])
def test_a_file_gives_each_event_once(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    batch_size: int,
) -> None:
    # A second row with UKR100001's id (ACLED's ids make Salvo's in lower case) would
    # replace the first, and every import of the file would write the first again.
    monkeypatch.setattr(imports, "BATCH_SIZE", batch_size)
    rows = read_rows(ACLED)
    twin = list(rows[1])
    twin[rows[0].index("event_id_cnty")] = "ukr100001"
    twin[rows[0].index("notes")] = "A second account."
    path = tmp_path / "acled.csv"
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(rows)
    twin_line = path.read_text(encoding="utf-8").count("\n") + 1
    with path.open("a", encoding="utf-8", newline="") as file:
        csv.writer(file).writerow(twin)
    db = tmp_path / "salvo.db"

    assert run_import(db, "acled", path) == 1
    assert capsys.readouterr().err == (
        f"seed: {path}: line {twin_line}: column event_id_cnty: gives the event id "
        "'acled-ukr100001', as line 2 does; a file gives each event once; nothing written\n"
    )
    assert event_count(db) == 0

    rejects = tmp_path / "acled.rejected.csv"
    assert run_import(db, "acled", path, "--skip-invalid") == 0
    assert capsys.readouterr().out.endswith(
        f": 5 new, 0 updated, 0 unchanged, 1 rejected (listed in {rejects})\n"
    )
    assert document(client_of(db), "acled-ukr100001")["notes"] != "A second account."
    assert [row[:2] for row in read_rows(rejects)[1:]] == [[str(twin_line), "event_id_cnty"]]
    assert run_import(db, "acled", path, "--skip-invalid") == 0
    assert capsys.readouterr().out.endswith(": 0 new, 0 updated, 5 unchanged, 1 rejected "
                                            f"(listed in {rejects})\n")  # fmt: skip


def test_standard_input(tmp_path: Path) -> None:
    db = tmp_path / "salvo.db"
    result = subprocess.run(
        [sys.executable, "-m", "seed", "--db", str(db), "import", "--format", "ucdp-ged", "-"],
        input=GED.read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"seed: 3 ucdp-ged rows from standard input into {db}: 3 new, 0 updated, 0 unchanged\n"
    )
    assert event_count(db) == 3


def test_bad_input_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    command = [sys.executable, "-m", "seed", "--db", str(tmp_path / "x.db"), "import"]
    result = subprocess.run(
        [*command, "--format", "acled", str(binary)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == f"seed: {binary}: line 1: is not UTF-8 text; nothing written\n"
    missing = subprocess.run(
        [sys.executable, "-m", "seed", "import", "--format", "acled", str(tmp_path / "no.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert missing.stderr == f"seed: cannot read {tmp_path / 'no.csv'}: No such file or directory\n"


def test_imported_events_are_filtered_totalled_and_synced(
    client: FlaskClient, imported: Path
) -> None:
    def ids(query: str) -> list[str]:
        response = client.get(f"/api/v1/events?{query}&limit=1000")
        assert response.status_code == 200, response.get_json()
        return [event["id"] for event in response.get_json()["data"]]

    assert ids("event_type=shelling") == ["acled-ukr100001"]
    assert ids("event_type=peaceful_protest,mob_violence&sort=date") == [
        "acled-rus200001",
        "acled-pol300001",
    ]
    # One admin1 filter finds the curated, ACLED and UCDP events alike; the missile
    # wave aimed at 'Ukraine' is the country's, whatever `affected region` says.
    kharkiv = ids("admin1=kharkiv%20oblast")
    assert {"acled-ukr100001", "ged-900001"} <= set(kharkiv)
    assert "missile-20240529-1800-shahed-136-131-50692eea" not in kharkiv
    assert "ua-2024-05-30-kharkiv-missile-strike" in kharkiv
    assert ids("country=ru&sort=date") == ["ged-900003", "acled-rus200001"]
    assert ids("min_killed=12") == ["ged-900001"]

    # The missile-attack waves after the curated data's day, totalled by category.
    waves = client.get(
        "/api/v1/stats?event_type=air_defense_interception&date_from=2024-06-02"
    ).get_json()["data"][0]
    assert waves["events"] == 2
    assert {
        category: (totals["launched"], totals["intercepted"], totals["not_reached"])
        for category, totals in waves["munitions"].items()
        if totals["events"]
    } == {"mixed": (13, 10, 1), "all": (13, 10, 1)}
    by_type = client.get(
        "/api/v1/stats?group_by=event_type&date_from=2024-05-30&date_to=2024-05-30"
    ).get_json()["data"]
    shelling = next(group for group in by_type if group["key"] == "shelling")
    assert (shelling["events"], shelling["killed"]["best"]) == (1, 3)

    changes = client.get("/api/v1/changes?limit=1000").get_json()["data"]
    assert [c["event_id"] for c in changes][-12:] == [
        "acled-ukr100001",
        "acled-ukr100002",
        "acled-ukr100003",
        "acled-rus200001",
        "acled-pol300001",
        "ged-900001",
        "ged-900002",
        "ged-900003",
        "missile-20240529-1800-shahed-136-131-50692eea",
        "missile-20240529-1800-x-101-x-555-and-kalibr-71b652a4",
        "missile-20240601-2000-iskander-m-and-shahed-136-a8ddb675",
        "missile-20240603-mystery-9-59674eae",
    ]


def test_the_import_leaves_the_curated_places_as_they_were(imported: Path) -> None:
    # The oblast and country places imports share with the curated data keep their values.
    conn = sqlite3.connect(imported)
    try:
        rows = conn.execute(
            "SELECT id, name, latitude, longitude, precision FROM locations "
            "WHERE id IN ('ua', 'ua-kharkiv-oblast') ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    assert rows == [
        ("ua", "Ukraine", 48.3794, 31.1656, "country"),
        ("ua-kharkiv-oblast", "Kharkiv Oblast", 49.58, 36.63, "region"),
    ]


def test_rows_in_a_stream_keep_their_line_numbers_across_quoted_newlines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Line 3 of acled.csv holds a note on two lines: the row after it starts on line 5.
    rows = ACLED.read_text(encoding="utf-8").splitlines(keepends=True)
    broken = [*rows[:4], rows[4].replace(",804,", ",9999,", 1)]
    path = tmp_path / "acled.csv"
    path.write_text("".join(broken), encoding="utf-8")
    assert run_import(tmp_path / "salvo.db", "acled", path) == 1
    assert "line 5: column iso: '9999'" in capsys.readouterr().err


def test_the_rejected_file_is_csv_a_partner_can_open(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    shutil.copy(INVALID, path)
    assert run_import(tmp_path / "salvo.db", "acled", path, "--skip-invalid") == 0
    text = (tmp_path / "x.rejected.csv").read_text(encoding="utf-8")
    assert next(iter(csv.DictReader(io.StringIO(text))))["event_id_cnty"] == "UKR400002"


def test_the_acled_export_round_trips_imported_acled_events(client: FlaskClient) -> None:
    response = client.get("/api/v1/events?format=acled-csv&q=Kharkiv%20OR%20Robotyne%20OR%20Odesa")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="events-acled.csv"'
    exported = {row["event_id_cnty"]: row for row in csv.DictReader(io.StringIO(response.text))}
    source = {row["event_id_cnty"]: row for row in csv.DictReader(io.StringIO(ACLED.read_text()))}
    assert response.text.split("\r\n", 1)[0].split(",") == read_rows(ACLED)[0]
    kept = (
        "event_id_cnty", "event_date", "year", "time_precision", "disorder_type", "event_type",
        "sub_event_type", "actor1", "assoc_actor_1", "actor2", "assoc_actor_2", "iso", "country",
        "latitude", "longitude", "geo_precision", "source", "source_scale", "notes",
        "fatalities", "tags", "timestamp",
    )  # fmt: skip
    for record_id in ("UKR100001", "UKR100002", "UKR100003"):
        assert {c: exported[record_id][c] for c in kept if c != "geo_precision"} == {
            c: source[record_id][c] for c in kept if c != "geo_precision"
        }
    # Inter codes come out as ACLED's newer text; geo_precision 1, 2 and 3 as they were.
    assert exported["UKR100001"]["inter1"] == "State forces"
    assert exported["UKR100001"]["inter2"] == "Civilians"
    assert exported["UKR100001"]["interaction"] == "State forces-Civilians"
    assert exported["UKR100001"]["civilian_targeting"] == "Civilian targeting"
    assert [exported[i]["geo_precision"] for i in ("UKR100001", "UKR100002", "UKR100003")] == [
        "1",
        "2",
        "3",
    ]
    # Admin1 is the oblast as Salvo names it, and a region-precise place in Ukraine the
    # oblast's own (docs/imports.md).
    assert exported["UKR100001"]["admin1"] == "Kharkiv Oblast"
    assert [exported[i]["location"] for i in ("UKR100001", "UKR100002", "UKR100003")] == [
        "Kharkiv",
        "Robotyne",
        "Odesa Oblast",
    ]


def test_the_acled_export_gives_salvos_events_their_ids_and_mapped_types(
    client: FlaskClient,
) -> None:
    response = client.get("/api/v1/events?format=acled-csv&event_type=missile_strike&sort=date")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    strike = next(r for r in rows if r["event_id_cnty"] == "ua-2024-05-30-kharkiv-missile-strike")
    assert {
        column: strike[column]
        for column in (
            "event_date", "year", "time_precision", "disorder_type", "event_type",
            "sub_event_type", "actor1", "inter1", "actor2", "inter2", "iso", "country",
            "admin1", "location", "geo_precision", "source", "fatalities",
        )
    } == {
        "event_date": "2024-05-30",
        "year": "2024",
        "time_precision": "1",
        "disorder_type": "Political violence",
        "event_type": "Explosions/Remote violence",
        "sub_event_type": "Shelling/artillery/missile attack",
        "actor1": "Military Forces of Russia",
        "inter1": "State forces",
        "actor2": "Civilians (Ukraine)",
        "inter2": "Civilians",
        "iso": "804",
        "country": "Ukraine",
        "admin1": "Kharkiv Oblast",
        "location": "Kharkiv",
        "geo_precision": "1",
        "source": "Ihor Terekhov; Oleh Syniehubov",
        "fatalities": "",
    }  # fmt: skip


def test_the_acled_export_takes_no_limit(client: FlaskClient) -> None:
    response = client.get("/api/v1/events?format=acled-csv&limit=5")
    assert response.status_code == 400
    assert response.get_json()["invalid_params"][0]["name"] == "limit"


ROOT = Path(__file__).resolve().parent.parent


def bring_your_data() -> str:
    """The README's "Bring your data" section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Bring your data\n", 1)[1].split("\n## ", 1)[0]


def test_the_readmes_bring_your_data_commands_print_what_it_shows(tmp_path: Path) -> None:
    section = bring_your_data()
    commands, printed, exported = re.findall(r"```(?:sh|text)\n(.*?)```", section, re.S)
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    (tmp_path / "var").mkdir()
    assert seed_main(["--db", str(tmp_path / "var" / "salvo.db")]) == 0
    output = []
    for command in commands.splitlines():
        argv = shlex.split(command)
        assert argv[0] == ".venv/bin/python"
        result = subprocess.run(
            [sys.executable, *argv[1:]], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        output += result.stderr.splitlines() + result.stdout.splitlines()
    assert output == printed.splitlines()

    url = re.search(r"curl -s '(http://127\.0\.0\.1:8000[^']+)'", section)
    assert url is not None
    response = client_of(tmp_path / "var" / "salvo.db").get(
        url.group(1).removeprefix("http://127.0.0.1:8000")
    )
    # The timestamp of an event from outside ACLED is when this database imported it.
    rows = [line.rsplit(",", 1)[0] for line in response.text.splitlines()]
    assert rows == [line.rsplit(",", 1)[0] for line in exported.splitlines()]
