"""The missile-attacks importer on a file in the shapes of the public dataset
(missile_attacks_daily.csv: float counts, Facebook post paths without a scheme, the
regional air commands' posts, Cyrillic and Latin-C spellings, two waves told apart
only by their target, an exact repeat) and of its companion model table
(missiles_and_uavs.csv).

SQLite only: the whole module tests the CSV import, whose bulk path writes SQLite
files only yet (`seed import` refuses a postgresql:// URL, saying so)."""

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from seed import imports
from seed.__main__ import main as seed_main
from seed.imports import model_category
from tests.test_imports import client_of, event_count, read_rows

FIXTURES = Path(__file__).parent / "fixtures" / "imports"
DAILY = FIXTURES / "missile-attacks-daily.csv"
MODELS = FIXTURES / "missiles_and_uavs.csv"
BAD_MODELS = FIXTURES / "missiles_and_uavs-bad.csv"
ROOT = Path(__file__).parent.parent


def run_import(db: Path, path: Path | str, *extra: str) -> int:
    arguments = ["import", "--format", "missile-attacks", str(path), "--workers", "1"]
    return seed_main(["--db", str(db), *arguments, *extra])


def events(db: Path) -> dict[str, dict[str, Any]]:
    """Every imported event's document, by id."""
    client = client_of(db)
    data = client.get("/api/v1/events?limit=1000&sort=date").get_json()["data"]
    return {event["id"]: event for event in data}


def last_write(db: Path) -> int:
    """The change sequence number of the last write: every write takes the next."""
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT max(seq) FROM events").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    db = tmp_path / "salvo.db"
    assert run_import(db, DAILY) == 0
    return db


def by(documents: dict[str, dict[str, Any]], model: str, target: str) -> dict[str, Any]:
    (event,) = [
        e
        for e in documents.values()
        if e["munitions"][0]["model"] == model and e["notes"].endswith(f"target: {target}.")
    ]
    return event


def test_every_distinct_row_is_an_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "salvo.db"
    assert run_import(db, DAILY) == 0
    out = capsys.readouterr().out
    assert out.endswith(": 23 new, 0 updated, 0 unchanged, 1 repeated (skipped)\n")
    documents = events(db)
    assert len(documents) == 23
    # Two Iskander-M launched from Crimea on 2025-07-09, reported in one post: one
    # at Odesa oblast, one at Mykolaiv oblast.
    odesa = by(documents, "Iskander-M", "Odesa oblast")
    mykolaiv = by(documents, "Iskander-M", "Mykolaiv oblast")
    assert odesa["id"] != mykolaiv["id"]
    assert odesa["provenance"]["launch_place"] == mykolaiv["provenance"]["launch_place"]
    # Two reports of three Orlan-10 each on one day, in two posts: two events.
    orlans = [e for e in documents.values() if e["munitions"][0]["model"] == "Orlan-10"]
    assert len(orlans) == 2
    assert orlans[0]["source"]["url"] != orlans[1]["source"]["url"]


def test_a_reordered_file_gives_the_same_ids_and_a_reimport_writes_nothing(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids, written = set(events(imported)), last_write(imported)
    header, *rows = DAILY.read_text(encoding="utf-8").splitlines(keepends=True)
    reordered = tmp_path / "reordered.csv"
    reordered.write_text(header + "".join(reversed(rows)), encoding="utf-8")
    capsys.readouterr()
    assert run_import(imported, reordered) == 0
    captured = capsys.readouterr()
    assert captured.out.endswith(": 0 new, 0 updated, 23 unchanged, 1 repeated (skipped)\n")
    # Reversed, the repeat (line 24) comes first, at line 3, and line 18 repeats it.
    assert f"seed: warning: {reordered}: line 18 repeats line 3 exactly; skipped\n" in (
        captured.err
    )
    assert set(events(imported)) == ids
    assert last_write(imported) == written
    assert run_import(imported, DAILY) == 0
    assert last_write(imported) == written


@pytest.mark.parametrize("batch_size", [2_000, 5])
def test_an_exact_repeat_is_skipped_with_a_warning_naming_both_lines(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    batch_size: int,
) -> None:
    # In one batch, and (5 rows a batch) 15 lines after, in another.
    monkeypatch.setattr(imports, "BATCH_SIZE", batch_size)
    db = tmp_path / "salvo.db"
    assert run_import(db, DAILY, "--skip-invalid") == 0
    captured = capsys.readouterr()
    assert f"seed: warning: {DAILY}: line 24 repeats line 9 exactly; skipped\n" in captured.err
    assert "23 new, 0 updated, 0 unchanged, 1 repeated (skipped), 0 rejected" in captured.out
    # Not invalid: the rejected rows' file lists none.
    assert read_rows(FIXTURES / "missile-attacks-daily.rejected.csv") == [
        ["line", "column", "reason"]
    ]
    (FIXTURES / "missile-attacks-daily.rejected.csv").unlink()


def test_rows_of_one_wave_that_differ_elsewhere_are_still_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Line 3 again with a carrier: the same wave (time, model, places, counts, report)
    # said two ways. Which is right is the partner's to say; nothing is written.
    header, *rows = DAILY.read_text(encoding="utf-8").splitlines(keepends=True)
    twice = tmp_path / "twice.csv"
    twice.write_text(header + rows[1] + rows[1].replace(",{},,,,,", ",{},,,,Tu-22M3,"))
    db = tmp_path / "salvo.db"
    assert run_import(db, twice) == 1
    err = capsys.readouterr().err
    assert (
        f"seed: {twice}: line 3: column time_start: gives the event id 'missile-20250709-1800-c"
        in (err)
    )
    assert "as line 2 does; a file gives each event once; nothing written\n" in err


@pytest.mark.parametrize(
    ("model", "category"),
    [
        # The dataset's Latin C for the Cyrillic S of S-300/S-400.
        ("C-300", "missile"),
        ("C-400", "missile"),
        ("C-300/C-400", "missile"),
        ("S-300", "missile"),
        ("C-400 and Iskander-M", "missile"),
        ("C-300/C-400 and Iskander-M", "missile"),
        # Drones, in Latin and Cyrillic.
        ("Молнія", "drone"),
        ("Merlin-VR", "drone"),
        ("Orion", "drone"),
        ("Mohajer-6", "drone"),
        ("Kub", "drone"),
        ("Forpost", "drone"),
        ("Eleron", "drone"),
        ("Granat-4", "drone"),
        ("Фенікс", "drone"),
        ("Картограф", "drone"),
        ("Привет-82", "drone"),
        ("Unknown UAV", "drone"),
        ("Reconnaissance UAV", "drone"),
        ("Молнія and Lancet", "drone"),
        ("Orlan-10 and Orlan-30 and ZALA and Supercam", "drone"),
        ("Shahed-136/131 and Lancet", "drone"),
        # A guided glide bomb, and a cruise missile.
        ("GBU", "aerial_bomb"),
        ("Aerial Bomb", "aerial_bomb"),
        ("Banderol", "missile"),
        ("X-47 Kinzhal", "missile"),
        ("3M22 Zircon", "missile"),
        ("P-800 Oniks", "missile"),
        ("X-31PD", "missile"),
        ("X-59MK2", "missile"),
        ("Kh-101", "missile"),
        ("Unknown Missile", "missile"),
        ("Intercontinental Ballistic Missile", "missile"),
        ("Iskander-M/KN-23 and Iskander-K and X-59/X-69", "missile"),
        # Only rows that really combine categories are mixed.
        ("X-101/X-555 and Kalibr and Shahed-136/131", "mixed"),
        ("Iskander-M and Shahed-136", "mixed"),
        # A part no table knows leaves the whole string unknown.
        ("S-70 Okhotnik", None),
        ("S-70 Okhotnik and Shahed-136/131", None),
    ],
)
def test_the_model_table_knows_the_datasets_spellings(model: str, category: str | None) -> None:
    assert model_category(model) == category


def test_stats_count_each_model_in_its_category(imported: Path) -> None:
    stats = client_of(imported).get("/api/v1/stats?event_type=air_defense_interception")
    totals = stats.get_json()["data"][0]["munitions"]
    assert {
        category: (t["launched"], t["intercepted"], t["events"])
        for category, t in totals.items()
        if t["events"]
    } == {
        "missile": (24, 4, 7),
        "drone": (350, 326, 13),
        "aerial_bomb": (3, 2, 1),
        # The, Kalibr and Shahed wave (60, 52), and S-70 Okhotnik (1, 1).
        "mixed": (61, 53, 2),
        # Every entry together; each wave's entries are of one category.
        "all": (438, 385, 23),
    }


def test_an_unknown_model_is_kept_verbatim_and_warned_once_with_its_row_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header, *rows = DAILY.read_text(encoding="utf-8").splitlines(keepends=True)
    okhotnik = rows[-1]
    two = tmp_path / "two.csv"
    two.write_text(header + okhotnik + okhotnik.replace("2025-07-02", "2025-07-03"))
    assert run_import(tmp_path / "salvo.db", two) == 0
    assert capsys.readouterr().err == (
        f"seed: warning: {two}: model 'S-70 Okhotnik' is not in the model table; counted "
        "as mixed (2 rows)\n"
    )
    (event, _) = events(tmp_path / "salvo.db").values()
    assert event["munitions"][0]["model"] == "S-70 Okhotnik"
    assert event["munitions"][0]["category"] == "mixed"


def test_models_reads_the_companion_table_and_takes_precedence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "salvo.db"
    # Worker processes too: they are forked with the table.
    assert seed_main(
        ["--db", str(db), "import", "--format", "missile-attacks", str(DAILY), "--workers", "2",
         "--models", str(MODELS)]
    ) == 0  # fmt: skip
    assert "not in the model table" not in capsys.readouterr().err
    documents = events(db)
    category = {
        e["munitions"][0]["model"]: e["munitions"][0]["category"] for e in documents.values()
    }
    assert category["S-70 Okhotnik"] == "drone"  # UAV in the table
    assert category["Banderol"] == "drone"  # the partner's UAV over the built-in missile
    assert category["GBU"] == "aerial_bomb"  # guided bomb
    assert category["C-400 and Iskander-M"] == "missile"
    assert category["Orlan-10"] == "drone"  # not in the partner's table: the built-in one
    # A row whose category is 'unknown' gives none: the built-in table decides.
    assert model_category("Reconnaissance UAV") == "drone"
    # The table applies to that import only.
    assert model_category("S-70 Okhotnik") is None


def test_a_models_table_with_a_category_salvo_cannot_map_refuses_the_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "salvo.db"
    assert run_import(db, DAILY, "--models", str(BAD_MODELS)) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"seed: --models {BAD_MODELS}: line 3: column category: 'hypersonic' is not a "
        "category Salvo maps (uav, loitering munition, cruise missile, "
    )
    assert err.endswith("; nothing written\n")
    assert not db.exists() or event_count(db) == 0


def test_the_report_is_a_link_naming_the_command_that_gave_it(imported: Path) -> None:
    documents = events(imported)

    def report(model: str, target: str) -> tuple[Any, ...]:
        event = by(documents, model, target)
        source = event["source"]
        assert event["munitions"][0]["reported_by"] == event["reported_by"][0]["name"]
        assert source["publisher"] == event["reported_by"][0]["name"]
        assert source["title"] == f"{source['publisher']} report of {event['date']}"
        return source["url"], source["publisher"], event["reported_by"][0]["kind"]

    assert report("Shahed-136/131", "Ukraine") == (
        "https://www.facebook.com/kpszsu/posts/pfbid02sQmXWrPfKx8yNn4cJhTbE1DvUq7oGzAaLk3RtY9e"
        "HwV5jMZpCdBf6nSiQ2gWu1xl",
        "Air Force of Ukraine",
        "military",
    )
    assert report("Iskander-M", "Odesa oblast")[1:] == ("Air Command South", "military")
    assert report("Orion", "Kherson oblast") == (
        "https://www.facebook.com/PvKPivden/videos/877352513463110",
        "Air Command South",
        "military",
    )
    assert report("Kub", "east")[1] == "Air Command East"
    assert report("Eleron", "west")[1] == "Air Command West"
    assert report("Фенікс", "Donetsk oblast")[1] == "General Staff of the Armed Forces of Ukraine"
    assert report("S-70 Okhotnik", "Donetsk oblast")[1] == (
        "Commander-in-Chief of the Armed Forces of Ukraine"
    )
    # A full URL is kept; a Telegram channel names its page.
    assert report("Banderol", "Ukraine") == (
        "https://t.me/kpszsu/44624",
        "Air Force of Ukraine",
        "military",
    )
    # A Facebook video names no page: the dataset's reporter, the Air Force.
    assert report("X-101/X-555 and Kalibr and Shahed-136/131", "Ukraine")[:2] == (
        "https://www.facebook.com/watch/?v=1216014506516442",
        "Air Force of Ukraine",
    )
    # A site's own path (a first part with dots, not a Facebook page's posts).
    assert report("C-300", "Kharkiv") == (
        "https://kharkivoda.gov.ua/news/123125",
        "Kharkiv Regional Military Administration",
        "government",
    )


def test_the_command_line_takes_models(tmp_path: Path) -> None:
    db = tmp_path / "salvo.db"
    done = subprocess.run(
        [sys.executable, "-m", "seed", "--db", str(db), "import", "--format",
         "missile-attacks", "--models", str(MODELS), str(DAILY)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"seed: warning: {DAILY}: line 24 repeats line 9 exactly; skipped\n"
    client: FlaskClient = client_of(db)
    response = client.get("/api/v1/events?weapon=mixed&limit=100")
    assert [e["munitions"][0]["model"] for e in response.get_json()["data"]] == [
        "X-101/X-555 and Kalibr and Shahed-136/131"
    ]
