"""A re-import maps and validates only the rows that are new or changed: a row an
earlier import wrote is known by the digest of its cells, as long as its event is
still as that import left it (seed/imports.py, _SourceRows; issue 19's speed targets).
On SQLite and PostgreSQL (the `engine` fixture): on PostgreSQL the digests are
looked up and recorded through the store's bulk load."""

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from seed import imports
from tests.engines import rows as database_rows
from tests.engines import write_key
from tests.test_acled_layouts import MONADIC
from tests.test_imports import ACLED, read_rows, run_import


@pytest.fixture
def client_of(open_app: Callable[..., Flask]) -> Callable[[str], FlaskClient]:
    return lambda database: open_app(database).test_client()


@pytest.fixture
def mapped(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The lines map_batch maps and validates (the imports here run with one worker,
    in this process): the real function, whose calls are recorded."""
    lines: list[int] = []
    map_batch = imports.map_batch

    def recording(*args: object) -> imports.Batch:
        lines.extend(line for line, _ in args[3])  # type: ignore[attr-defined]
        return map_batch(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(imports, "map_batch", recording)
    return lines


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(rows)
    return path


def summary(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out.rsplit(": ", 1)[-1].strip()


def source_rows(db: str) -> list[str]:
    return [event_id for (event_id,) in database_rows(db, "SELECT event_id FROM import_sources")]


def first_import(
    db: str, path: Path, mapped: list[int], capsys: pytest.CaptureFixture[str]
) -> list[int]:
    """Import a file into a database of the curated events; the lines it mapped (where
    each row starts: one fixture row has a newline in a quoted cell), with the record
    and output then cleared for the import under test."""
    assert run_import(db, "acled", path) == 0
    lines = list(mapped)
    mapped.clear()
    capsys.readouterr()
    return lines


def test_an_unchanged_file_is_skipped_unread_in_any_row_order(
    fresh_database: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mapped: list[int],
    client_of: Callable[[str], FlaskClient],
) -> None:
    db = fresh_database
    assert len(first_import(db, ACLED, mapped, capsys)) == 5
    changes = client_of(db).get("/api/v1/changes?limit=1000").get_json()["data"]

    assert run_import(db, "acled", ACLED) == 0
    assert summary(capsys) == "0 new, 0 updated, 5 unchanged"
    assert mapped == []
    header, *rows = read_rows(ACLED)
    reordered = write_rows(tmp_path / "reordered.csv", [header, *reversed(rows)])
    assert run_import(db, "acled", reordered) == 0
    assert summary(capsys) == "0 new, 0 updated, 5 unchanged"
    assert mapped == []
    assert client_of(db).get("/api/v1/changes?limit=1000").get_json()["data"] == changes


def test_only_the_changed_row_is_mapped_and_its_old_digest_goes(
    fresh_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], mapped: list[int]
) -> None:
    db = fresh_database
    lines = first_import(db, ACLED, mapped, capsys)
    rows = read_rows(ACLED)
    rows[3][rows[0].index("fatalities")] = "9"  # ACLED revised one figure
    assert run_import(db, "acled", write_rows(tmp_path / "revised.csv", rows)) == 0
    assert summary(capsys) == "0 new, 1 updated, 4 unchanged"
    assert mapped == [lines[2]]
    # One digest an event: the revised row's replaced the first import's.
    assert sorted(source_rows(db)) == sorted(set(source_rows(db)))
    assert len(source_rows(db)) == 5


def test_an_event_edited_or_deleted_since_is_mapped_and_written_again(
    fresh_database: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mapped: list[int],
    client_of: Callable[[str], FlaskClient],
) -> None:
    db = fresh_database
    lines = first_import(db, ACLED, mapped, capsys)
    key = write_key(db, "Newsroom", "admin")
    client = client_of(db)
    auth = {"Authorization": f"Bearer {key}"}
    edited, deleted = "acled-ukr100001", "acled-ukr100002"
    etag = client.get(f"/api/v1/events/{edited}").headers["ETag"]
    response = client.patch(
        f"/api/v1/events/{edited}",
        data=json.dumps({"notes": "Edited by a partner."}),
        headers={**auth, "If-Match": etag, "Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.get_json()
    etag = client.get(f"/api/v1/events/{deleted}").headers["ETag"]
    response = client.delete(f"/api/v1/events/{deleted}", headers={**auth, "If-Match": etag})
    assert response.status_code == 204, response.get_json()

    # The file is the import's truth, as it was before digests: both rows are mapped
    # again and written.
    assert run_import(db, "acled", ACLED) == 0
    assert summary(capsys) == "0 new, 2 updated, 3 unchanged"
    assert mapped == lines[:2]
    assert client.get(f"/api/v1/events/{edited}").get_json()["notes"] != "Edited by a partner."
    assert client.get(f"/api/v1/events/{deleted}").status_code == 200


def test_another_reading_of_the_cells_maps_every_row_again(
    fresh_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], mapped: list[int]
) -> None:
    db = fresh_database
    lines = first_import(db, ACLED, mapped, capsys)
    # What counts as a missing cell changes what a row means: no digest holds.
    assert run_import(db, "acled", ACLED, "--na-values", "NA,none") == 0
    assert summary(capsys) == "0 new, 0 updated, 5 unchanged"
    assert mapped == lines


def test_a_monadic_file_is_skipped_unread_event_by_event(
    fresh_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], mapped: list[int]
) -> None:
    db = fresh_database
    first_import(db, MONADIC, mapped, capsys)
    assert run_import(db, "acled", MONADIC) == 0
    assert summary(capsys) == "0 new, 0 updated, 3 unchanged"
    assert mapped == []
    # A new actor's row changes its event's rows: that event alone is mapped again.
    header, *rows = read_rows(MONADIC)
    actor = header.index("actor1")
    first = next(row for row in rows if row[header.index("event_id_cnty")] == "UKR800001")
    extra = [*first]
    extra[actor] = "Police Forces of Ukraine (2019-)"
    changed = write_rows(tmp_path / "monadic.csv", [header, *rows, extra])
    assert run_import(db, "acled", changed) == 0
    assert summary(capsys) == "0 new, 1 updated, 2 unchanged"
    assert sorted(mapped) == [2, 3, len(rows) + 2]


def test_known_rows_given_twice_are_repeats_and_a_changed_twin_is_refused(
    fresh_database: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = fresh_database
    assert run_import(db, "acled", ACLED) == 0
    capsys.readouterr()
    header, *rows = read_rows(ACLED)
    twin = [*rows[0]]
    twin[header.index("notes")] = "A second account."
    path = write_rows(tmp_path / "twice.csv", [header, *rows])
    repeat = path.read_text(encoding="utf-8").count("\n") + 1
    for batch_size in (2000, 2):
        monkeypatch.setattr(imports, "BATCH_SIZE", batch_size)
        write_rows(path, [header, *rows, rows[0], twin])
        assert run_import(db, "acled", path, "--skip-invalid") == 0
        out, err = capsys.readouterr()
        assert f"line {repeat} repeats line 2 exactly; skipped" in err
        assert out.rstrip().endswith(
            "0 new, 0 updated, 5 unchanged, 1 repeated (skipped), 1 rejected "
            f"(listed in {tmp_path / 'twice.rejected.csv'})"
        )
        rejected = read_rows(tmp_path / "twice.rejected.csv")[1:]
        assert [row[:2] for row in rejected] == [[str(repeat + 1), "event_id_cnty"]]
