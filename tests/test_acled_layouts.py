"""The ACLED files partners hold: every layout since 2019 (older and newer columns, any
order, monadic files of one row per actor), R's NA cells and dates a spreadsheet
rewrote, each imported through `python -m seed import` and read back through the API;
and the ACLED-shaped export, which gives no value the source did not. On SQLite: the
mapping is the same for both engines (tests/test_postgresql_imports.py imports a
monadic file into both and compares them)."""

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from seed import imports
from tests.test_imports import FIXTURES, client_of, document, event_count, read_rows, run_import

OLD, NEW = FIXTURES / "acled-2020.csv", FIXTURES / "acled-2024.csv"
REORDERED, MONADIC = FIXTURES / "acled-reordered.csv", FIXTURES / "acled-monadic.csv"
R_WRITTEN, SPREADSHEET = FIXTURES / "acled-r.csv", FIXTURES / "acled-spreadsheet.csv"


def imported(tmp_path: Path, path: Path, *extra: str) -> FlaskClient:
    db = tmp_path / "salvo.db"
    assert run_import(db, "acled", path, *extra) == 0
    return client_of(db)


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(rows)
    return path


def exported(client: FlaskClient) -> dict[str, dict[str, str]]:
    response = client.get("/api/v1/events?format=acled-csv")
    assert response.status_code == 200
    return {row["event_id_cnty"]: row for row in csv.DictReader(io.StringIO(response.text))}


def test_the_2019_2022_layout_imports_with_disorder_types_derived(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # data_id, iso, event_id_no_cnty and iso3; no disorder_type, civilian_targeting, tags;
    # '21 March 2020' dates; inter codes; inter2 0 where there is no actor2.
    client = imported(tmp_path, OLD)
    assert capsys.readouterr().out.endswith(": 3 new, 0 updated, 0 unchanged\n")
    shelling = document(client, "acled-ukr55001")
    assert shelling["date"] == "2020-03-21"
    assert shelling["acled"] == {
        "disorder_type": "Political violence",
        "event_type": "Explosions/Remote violence",
        "sub_event_type": "Shelling/artillery/missile attack",
    }
    assert shelling["location"]["country_code"] == "UA"
    assert shelling["actors"] == [
        {"name": "Military Forces of Ukraine (2019-)", "role": "initiator", "kind": "state_forces"},
        {
            "name": "Unidentified Armed Group (Ukraine)",
            "role": "target",
            "kind": "political_militia",
        },
    ]
    assert (shelling["provenance"]["tags"], shelling["provenance"]["civilian_targeting"]) == (
        None,
        None,
    )
    protest = document(client, "acled-ukr55002")
    assert protest["acled"]["disorder_type"] == "Demonstrations"
    assert [actor["name"] for actor in protest["actors"]] == [
        "Protesters (Ukraine)",
        "Women (Ukraine)",
    ]
    mob = document(client, "acled-ukr55003")
    # Mob violence is both, as ACLED codes it.
    assert mob["acled"]["disorder_type"] == "Political violence; Demonstrations"
    assert (mob["date"], mob["date_precision"]) == ("2020-02-07", "week")


def test_the_newest_layout_with_extra_columns_and_any_column_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = imported(tmp_path, NEW)
    strike = document(client, "acled-ukr700001")
    assert strike["event_type"] == "air_strike"
    assert strike["provenance"]["civilian_targeting"] == "Civilian targeting"
    assert strike["casualties"]["killed"]["best"] == 1
    # The same event from a file of other columns in another order, with no iso (the
    # country's name) and no assoc_actor columns, is the same event: nothing to write.
    db = tmp_path / "salvo.db"
    assert run_import(db, "acled", REORDERED) == 0
    assert capsys.readouterr().out.endswith(": 0 new, 0 updated, 1 unchanged\n")
    assert document(client_of(db), "acled-ukr700001") == strike


def test_the_header_must_have_only_the_columns_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = read_rows(NEW)
    dropped = [rows[0].index(c) for c in ("fatalities", "iso", "country", "region", "tags")]
    path = write_rows(
        tmp_path / "acled.csv", [[c for n, c in enumerate(r) if n not in dropped] for r in rows]
    )
    assert run_import(tmp_path / "salvo.db", "acled", path) == 1
    assert capsys.readouterr().err == (
        f"seed: {path}: line 1: the header lacks the column(s) fatalities, iso or country; "
        "nothing written\n"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_monadic_file_merges_each_events_rows_across_batches(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    workers: str,
) -> None:
    # UKR800002's rows are lines 4 and 6, in different batches of two rows; UKR800001's
    # are lines 2 and 3, one batch.
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    db = tmp_path / "salvo.db"
    assert run_import(db, "acled", MONADIC, "--workers", workers) == 0
    assert capsys.readouterr().out.endswith(": 3 new, 0 updated, 0 unchanged\n")
    assert event_count(db) == 3
    client = client_of(db)
    shelling = document(client, "acled-ukr800001")
    assert shelling["actors"] == [
        {"name": "Military Forces of Russia (2000-)", "role": "initiator", "kind": "state_forces"},
        {"name": "Civilians (Ukraine)", "role": "target", "kind": "civilians"},
    ]
    assert shelling["casualties"]["killed"]["best"] == 2  # the event's figure, not summed
    clash = document(client, "acled-ukr800002")
    assert clash["actors"] == [
        {"name": "Military Forces of Ukraine (2019-)", "role": "initiator", "kind": "state_forces"},
        {"name": "National Guard of Ukraine", "role": "associated", "kind": "other"},
        {"name": "Military Forces of Russia (2000-)", "role": "target", "kind": "state_forces"},
    ]
    assert [a["name"] for a in document(client, "acled-ukr800003")["actors"]] == [
        "Protesters (Ukraine)"
    ]
    before = client.get("/api/v1/changes?limit=1000").get_json()["data"]
    assert run_import(db, "acled", MONADIC, "--workers", workers) == 0
    assert capsys.readouterr().out.endswith(": 0 new, 0 updated, 3 unchanged\n")
    assert client.get("/api/v1/changes?limit=1000").get_json()["data"] == before


def test_rows_of_one_event_that_disagree_are_refused_with_their_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = read_rows(MONADIC)
    rows[5][rows[0].index("fatalities")] = "3"  # line 6, UKR800002's second row
    path = write_rows(tmp_path / "acled.csv", rows)
    assert run_import(tmp_path / "salvo.db", "acled", path) == 1
    assert capsys.readouterr().err == (
        f"seed: {path}: line 4: column (row): is a row of the event of line 6, which is "
        "refused; nothing written\n"
    )
    assert run_import(tmp_path / "salvo.db", "acled", path, "--skip-invalid") == 0
    rejected = read_rows(tmp_path / "acled.rejected.csv")
    assert [row[:3] for row in rejected[1:]] == [
        ["4", "(row)", "is a row of the event of line 6, which is refused"],
        [
            "6",
            "fatalities",
            "'3' differs from '0' on line 4, a row of the same event; a monadic file "
            "repeats an event's cells on each actor's row",
        ],
    ]
    assert event_count(tmp_path / "salvo.db") == 2


def test_r_written_na_cells_are_missing(tmp_path: Path) -> None:
    # R's write.csv: quoted text, NA unquoted, and a first column of row names.
    client = imported(tmp_path, R_WRITTEN)
    protest = document(client, "acled-ukr900001")
    assert protest["actors"] == [
        {"name": "Protesters (Ukraine)", "role": "initiator", "kind": "protesters"}
    ]
    assert (protest["provenance"]["tags"], protest["provenance"]["civilian_targeting"]) == (
        None,
        None,
    )
    interception = document(client, "acled-ukr900002")
    assert [actor["name"] for actor in interception["actors"]] == [
        "Military Forces of Ukraine (2019-)",
        "Military Forces of Russia (2000-)",
    ]


def test_na_values_says_which_cells_are_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # With empty cells only missing, R's NA is a value: an actor type 'NA' is refused.
    assert run_import(tmp_path / "salvo.db", "acled", R_WRITTEN, "--na-values", "") == 1
    assert "line 2: column inter2: 'NA' is neither an ACLED inter code" in capsys.readouterr().err
    # A set of one's own: '-' for missing; NA then is a value again.
    rows = read_rows(NEW)
    rows[1][rows[0].index("tags")] = "-"
    path = write_rows(tmp_path / "acled.csv", rows)
    client = imported(tmp_path, path, "--na-values=-,n.a.")  # = : a value starting with -
    assert document(client, "acled-ukr700001")["provenance"]["tags"] is None


def test_dates_a_spreadsheet_rewrote(tmp_path: Path) -> None:
    client = imported(tmp_path, SPREADSHEET)
    assert [document(client, f"acled-ukr60000{n}")["date"] for n in range(1, 5)] == [
        "2020-05-09",  # 9-May-20
        "2024-08-05",  # 5-Aug-24
        "2019-12-31",  # 31-12-19: day, month, two-digit year
        "2020-03-21",  # 03/21/2020: only the month can come first
    ]


def test_an_ambiguous_date_is_refused_until_date_format_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = read_rows(SPREADSHEET)
    rows[4][rows[0].index("event_date")] = "05/06/2020"
    path = write_rows(tmp_path / "acled.csv", rows)
    db = tmp_path / "salvo.db"
    assert run_import(db, "acled", path) == 1
    assert capsys.readouterr().err == (
        f"seed: {path}: line 5: column event_date: '05/06/2020' is ambiguous: 5 June 2020 or "
        "May 6 2020; say which with --date-format (%d/%m/%Y for day first); nothing written\n"
    )
    assert run_import(db, "acled", path, "--date-format", "%m/%d/%Y") == 0
    assert document(client_of(db), "acled-ukr600004")["date"] == "2020-05-06"
    # The other rows' forms are read as before.
    assert document(client_of(db), "acled-ukr600001")["date"] == "2020-05-09"


@pytest.mark.parametrize(
    ("cell", "date"),
    [
        ("1-Jan-97", "1997-01-01"),  # ACLED's first year
        ("31-Dec-99", "1999-12-31"),
        ("1-Jan-00", "2000-01-01"),
        ("28-Feb-96", "2096-02-28"),  # no ACLED data before 1997: 96 is 2096
        ("21.03.2020", "2020-03-21"),
        ("March 21, 2020", "2020-03-21"),
        ("30 Sept 2020", "2020-09-30"),
        ("05/05/2020", "2020-05-05"),  # either order gives one date
    ],
)
def test_date_forms(cell: str, date: str) -> None:
    assert str(imports.read_date(cell)) == date


def test_date_format_is_for_acled_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "ged.csv"
    assert run_import(tmp_path / "x.db", "ucdp-ged", path, "--date-format", "%d/%m/%Y") == 2
    assert capsys.readouterr().err == (
        "seed: --date-format is for ACLED's event_date; ucdp-ged files give ISO dates\n"
    )


def test_the_export_invents_no_civilian_targeting(tmp_path: Path) -> None:
    db = tmp_path / "salvo.db"
    for path in (OLD, NEW):
        assert run_import(db, "acled", path) == 0
    rows: dict[str, Any] = exported(client_of(db))
    # The 2020 export had no civilian_targeting column; the 2024 one said it.
    assert rows["UKR55003"]["civilian_targeting"] == ""
    assert rows["UKR55003"]["actor2"] == "Civilians (Ukraine)"
    assert rows["UKR700001"]["civilian_targeting"] == "Civilian targeting"
    assert rows["UKR700002"]["civilian_targeting"] == ""
    assert rows["UKR55001"]["tags"] == ""
