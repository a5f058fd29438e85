"""The suite runs on both engines (issue 22): a test that reaches the database
through the engine's fixtures runs on SQLite and on PostgreSQL, a module that stays on
one engine says which of its features keeps it there, and a run without PostgreSQL
says that it was skipped."""

import ast
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent
# The fixtures of one engine alone (tests/conftest.py, tests/postgres.py).
SQLITE_ONLY = {"seeded_db", "synthetic_db"}
POSTGRESQL_ONLY = {"postgres_server", "postgres_url", "fresh_postgres_url"}


def fixtures_asked(tree: ast.Module) -> set[str]:
    """The parameter names of the module's functions: the fixtures they ask for."""
    return {
        arg.arg
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        for arg in node.args.args
    }


def test_a_module_on_one_engine_says_why() -> None:
    unexplained = []
    for path in sorted(TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        docstring = ast.get_docstring(tree) or ""
        asked = fixtures_asked(tree)
        if asked & SQLITE_ONLY and "SQLite" not in docstring:
            unexplained.append(f"{path.name} uses {sorted(asked & SQLITE_ONLY)}")
        if asked & POSTGRESQL_ONLY and "PostgreSQL" not in docstring:
            unexplained.append(f"{path.name} uses {sorted(asked & POSTGRESQL_ONLY)}")
    assert unexplained == [], (
        "a module on one engine's fixtures must name, in its docstring, the engine and "
        "the feature that keeps it there"
    )


def test_a_run_without_postgresql_says_it_was_skipped() -> None:
    # The run as `make test` makes it on a machine without PostgreSQL: where the
    # server's binaries are looked for is changed before the tests start.
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import pathlib, sys, pytest, ops.postgres\n"
            "ops.postgres.BIN = pathlib.Path('/nonexistent')\n"
            "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/test_resources.py']))",
        ],
        cwd=TESTS.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("PostgreSQL was skipped: 6 tests did not run on it."), last
    assert "PostgreSQL 15 is not installed" in last
