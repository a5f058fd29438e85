"""The store's boundary (issue 21): the store and the seed's import workers start
without the web stack, and the web layer reaches data only through the store's
interface (api/store/__init__.py), never through SQLite or its implementation."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The web layer: every module of api/ outside the store.
WEB_MODULES = sorted(
    path
    for path in (ROOT / "api").rglob("*.py")
    if "store" not in path.relative_to(ROOT / "api").parts
    and path.name not in ("__main__.py", "examples.py")
)


def test_the_store_and_the_import_workers_start_without_flask() -> None:
    """In a fresh interpreter, as an import worker starts: no Flask, no werkzeug."""
    code = (
        "import sys\n"
        "import api.store, api.store.sqlite.store, seed.imports, seed.workers, seed.synthetic\n"
        "web = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('flask', 'werkzeug', 'flask_smorest', 'flask_limiter'))\n"
        "print(','.join(web))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == ""


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", WEB_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_web_layer_reaches_data_only_through_the_store(path: Path) -> None:
    imported = _imports(path)
    assert "sqlite3" not in imported
    assert "sqlite_utils" not in imported
    assert not {name for name in imported if name.startswith("api.store.sqlite")}
