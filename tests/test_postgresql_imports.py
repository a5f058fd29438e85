"""`python -m seed import` into PostgreSQL (a throwaway server, tests/postgres.py): the
rows are read, mapped and validated as for a SQLite file, then written through the
store's bulk load. The fixtures of every layout answer as on SQLite (events, places,
sources, stats and the change feed), a second import writes nothing, a changed row
is an update in /changes, a refused file writes nothing, --skip-invalid writes the
valid rows, and the audit entry counts what was written."""

import csv
import re
from pathlib import Path

import orjson
import pytest

from api.store.sqlite.rollups import ROLLUPS
from tests.test_acled_layouts import MONADIC
from tests.test_imports import ACLED, GED, INVALID, MISSILES, read_rows
from tests.test_postgresql_seed import ANSWERS, answers, counts, feed, rows, seed

IMPORTS = (("acled", ACLED), ("ucdp-ged", GED), ("missile-attacks", MISSILES))
# The imported events beside the curated ones, filtered as partners filter them.
IMPORTED_ANSWERS = (
    *ANSWERS,
    "/api/v1/events?limit=1000&sort=-killed",
    "/api/v1/events?limit=1000&country=UA&date_from=2024-01-01",
    "/api/v1/events?limit=1000&q=shelling",
    "/api/v1/stats?group_by=admin1",
    "/api/v1/stats?interval=month&country=UA",
)


def run_import(database: str, layout: str, path: Path | str, *extra: str) -> int:
    return seed(database, "import", "--format", layout, str(path), "--workers", "1", *extra)


def said(output: str) -> tuple[int, int, int]:
    """The new, updated and unchanged counts of an import's last line."""
    found = re.search(r": (\d+) new, (\d+) updated, (\d+) unchanged", output)
    assert found, output
    new, updated, unchanged = map(int, found.groups())
    return new, updated, unchanged


def test_every_layout_imports_and_answers_as_on_sqlite(
    fresh_postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite = str(tmp_path / "salvo.db")
    for database in (sqlite, fresh_postgres_url):
        assert seed(database) == 0
        for layout, path in (*IMPORTS, ("acled", MONADIC)):
            capsys.readouterr()
            assert run_import(database, layout, path) == 0
            out = capsys.readouterr().out
            assert said(out)[0] > 0, out
            assert ":salvo@" not in out  # no password in what the seed prints
    assert answers(fresh_postgres_url, IMPORTED_ANSWERS) == answers(sqlite, IMPORTED_ANSWERS)
    # One seq per event written, in the same order on both engines.
    assert feed(fresh_postgres_url) == feed(sqlite)


def test_a_second_import_writes_nothing_and_a_changed_row_is_an_update(
    fresh_postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_import(fresh_postgres_url, "acled", ACLED) == 0
    new, updated, unchanged = said(capsys.readouterr().out)
    assert (new, updated, unchanged) == (new, 0, 0) and new > 0
    before = counts(fresh_postgres_url)

    assert run_import(fresh_postgres_url, "acled", ACLED) == 0
    assert said(capsys.readouterr().out) == (0, 0, new)
    # The import's audit entry is all that was written.
    assert counts(fresh_postgres_url) == {**before, "audit_log": before["audit_log"] + 1}

    # One row's fatalities changed: its event, and it alone, is written again.
    table = read_rows(ACLED)
    header, first = table[0], table[1]
    first[header.index("fatalities")] = str(int(first[header.index("fatalities")]) + 2)
    changed = tmp_path / "acled-changed.csv"
    with changed.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows(table)
    assert run_import(fresh_postgres_url, "acled", changed) == 0
    assert said(capsys.readouterr().out) == (0, 1, new - 1)
    event_id = f"acled-{first[header.index('event_id_cnty')].lower()}"
    (last,) = rows(
        fresh_postgres_url,
        "SELECT e.id, e.seq, e.first_seq FROM events e ORDER BY e.seq DESC LIMIT 1",
    )
    assert last[0] == event_id and last[1] == before["highest_seq"] + 1 and last[2] < last[1]
    # The audit entries count what each import wrote.
    details = [
        detail
        for (detail,) in rows(
            fresh_postgres_url, "SELECT detail FROM audit_log WHERE action = 'import' ORDER BY seq"
        )
    ]
    written = [
        (d["new"], d["updated"], d["unchanged"])
        for d in (orjson.loads(detail) if isinstance(detail, str) else detail for detail in details)
    ]
    assert written == [(new, 0, 0), (0, 0, new), (0, 1, new - 1)]


def test_a_refused_file_writes_nothing_and_skip_invalid_writes_the_valid_rows(
    fresh_postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert seed(fresh_postgres_url) == 0
    before = counts(fresh_postgres_url)
    capsys.readouterr()
    assert run_import(fresh_postgres_url, "acled", INVALID) == 1
    assert "nothing written" in capsys.readouterr().err
    assert counts(fresh_postgres_url) == before

    sqlite = str(tmp_path / "salvo.db")
    assert seed(sqlite) == 0
    for database in (sqlite, fresh_postgres_url):
        copy = tmp_path / f"{'pg' if database.startswith('postgresql') else 'sqlite'}.csv"
        copy.write_bytes(INVALID.read_bytes())
        capsys.readouterr()
        assert run_import(database, "acled", copy, "--skip-invalid") == 0
        out = capsys.readouterr().out
        assert re.search(r"\d+ rejected \(listed in ", out), out
        assert said(out)[0] > 0
    rejected = (tmp_path / "pg.rejected.csv").read_text()
    assert rejected == (tmp_path / "sqlite.rejected.csv").read_text() and rejected
    assert answers(fresh_postgres_url) == answers(sqlite)


def test_an_import_ends_by_vacuuming_every_rollup(fresh_postgres_url: str) -> None:
    # /locations and /stats read the rollups through covering indexes, which PostgreSQL
    # reads alone only on pages its visibility map marks all-visible, as VACUUM does;
    # ANALYZE alone left them to be read whole until autovacuum came by. (Whether a
    # page is marked also depends on what else runs on the server at that moment, such
    # as autovacuum's own ANALYZE of the fresh tables: the test checks the VACUUM ran.)
    assert run_import(fresh_postgres_url, "acled", ACLED) == 0
    vacuumed = dict(
        rows(
            fresh_postgres_url,
            "SELECT relname, last_vacuum IS NOT NULL FROM pg_stat_user_tables",
        )
    )
    assert {rollup.table: vacuumed[rollup.table] for rollup in ROLLUPS} == {
        rollup.table: True for rollup in ROLLUPS
    }
