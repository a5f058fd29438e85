"""The README's guide runs as written: its shell blocks, in order, in one bash process
against the server `make run` starts, and its Python mirror loop against the same
server. `make run` serves SQLite, so these run on SQLite.

Which blocks run: every ```sh block of the sections in EXECUTED. Every other ```sh
block must sit in a section of SETUP (installing, serving, benchmarking, generating
data: running those is what the rest of the suite and `make bench` do), so that a
new example cannot be added outside both lists without this file failing.
"""

import base64
import contextlib
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api.store.sqlite.keys import create_key
from api.store.sqlite.layout import open_for_writing
from tests.server import ROOT, Server, serving

README = (ROOT / "README.md").read_text()
EXECUTED = ("Partners' guide", "Keeping a copy in sync")
SETUP = (
    "Two commands",
    "Serving in production",
    "Many instances: `make cluster`",
    "Reads from a replica",
    "Operations",
    "Bring your data",
    "Synthetic data at scale",
    "Development",
)
# Where the guide says the server is (`make run`), in its one shell and one Python
# assignment of BASE, and the interpreter it names.
MAKE_RUN = "http://127.0.0.1:8000"
SET_BASE = {"sh": f"BASE={MAKE_RUN}", "python": f'BASE = "{MAKE_RUN}"'}
VENV_PYTHON = ".venv/bin/python"
EXAMPLE_ID = "ua-2024-06-01-example-odesa-drone-strike"
KEY_PATTERN = r"salvo_([0-9a-f]{12})_[A-Za-z0-9_-]{43}"


@dataclass
class Block:
    section: str
    language: str
    text: str


def readme_blocks() -> list[Block]:
    """The fenced blocks of the README in order, each with the heading (## or ###) it
    sits under; lines inside a block are never taken for headings."""
    blocks: list[Block] = []
    section, language = "", None
    lines: list[str] = []
    for line in README.splitlines():
        if language is None:
            if line.startswith("```"):
                language, lines = line[3:].strip(), []
            elif heading := re.match(r"#{2,3} (.+)$", line):
                section = heading.group(1)
        elif line == "```":
            blocks.append(Block(section, language, "\n".join(lines) + "\n"))
            language = None
        else:
            lines.append(line)
    return blocks


BLOCKS = readme_blocks()
GUIDE = [b for b in BLOCKS if b.section in EXECUTED and b.language in ("sh", "python")]


def for_server(block: Block, server: Server) -> str:
    """A README block as it runs in the test: BASE set to the test's server, and the
    test's interpreter (the .venv one under `make test`, but not necessarily)."""
    text = block.text.replace(VENV_PYTHON, shlex.quote(sys.executable))
    base = SET_BASE[block.language]
    return text.replace(base, base.replace(MAKE_RUN, server.url))


def test_the_guide_names_the_server_once() -> None:
    """A reader points the guide at their server by setting BASE, once for the shell
    and once in the Python loop: no command spells the address out."""
    for language in ("sh", "python"):
        text = "".join(b.text for b in GUIDE if b.language == language)
        assert text.count(MAKE_RUN) == 1, language
        assert SET_BASE[language] in text


def test_every_shell_block_is_run_or_is_about_setting_up() -> None:
    sections = [b.section for b in BLOCKS if b.language == "sh"]
    assert sorted(set(sections) - set(EXECUTED)) == sorted(SETUP)
    assert {b.section for b in GUIDE} == set(EXECUTED)
    assert [b.language for b in GUIDE].count("python") == 1


def bash(script: str, cwd: Path, db: Path) -> subprocess.CompletedProcess[str]:
    """One bash process for the whole script, so that variables carry from block to
    block as in a reader's shell, stopping at the first failing command. Only PATH is
    inherited, so that no SALVO_* setting of the caller's changes what the guide does;
    PYTHONPATH finds `api` as the project root, the working directory, would; TMPDIR
    (`mktemp`'s) is a folder of the test's own, to see what the guide leaves there."""
    scratch = cwd.parent / "scratch"
    scratch.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "PYTHONPATH": str(ROOT),
        "SALVO_DATABASE": str(db),
        "TMPDIR": str(scratch),
    }
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def project_like(tmp: Path) -> Path:
    """A directory standing in for the project root: the guide reads `examples/` from
    it, so the repository itself gets no files even if the guide wrote some."""
    cwd = tmp / "root"
    cwd.mkdir()
    (cwd / "examples").symlink_to(ROOT / "examples")
    return cwd


def get(url: str) -> Any:
    with urllib.request.urlopen(url) as response:
        return json.load(response)


@dataclass
class GuideRun:
    server: Server
    db: Path
    cwd: Path
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def guide(seeded_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuideRun]:
    """The guide's shell blocks, run once on a copy of the seeded database behind a
    real server with the default rate limits; the server stays up for the tests."""
    tmp = tmp_path_factory.mktemp("guide")
    db = tmp / "salvo.db"
    shutil.copy(seeded_db, db)
    with serving(db, tmp / "server.log") as server:
        script = "".join(for_server(b, server) for b in GUIDE if b.language == "sh")
        cwd = project_like(tmp)
        result = bash(script, cwd, db)
        yield GuideRun(server, db, cwd, result)


def test_the_guide_runs_as_written(guide: GuideRun) -> None:
    assert guide.result.returncode == 0, guide.result.stderr
    assert guide.result.stderr == ""
    # No 429 waits: the guide stays within the default limits. Read from the access
    # log rather than timed, since the guide's seconds vary with the machine's load.
    statuses = re.findall(r'HTTP/1.1" (\d+)', guide.server.log.read_text())
    assert len(statuses) > 10 and "429" not in statuses


def guide_output(guide: GuideRun) -> tuple[list[str], list[Any]]:
    """The lines the guide prints, then the JSON documents it ends with: `curl -s`
    prints a body as sent, without a newline, so the last two come on one line."""
    *lines, documents = guide.result.stdout.splitlines()
    decoder, parsed, at = json.JSONDecoder(), [], 0
    while at < len(documents):
        document, at = decoder.raw_decode(documents, at)
        parsed.append(document)
    return lines, parsed


def test_the_guide_prints_what_it_says(guide: GuideRun) -> None:
    lines, _ = guide_output(guide)
    # Get a key: the key, then `keys list` with both keys, then the revoked key refused.
    key = re.fullmatch(KEY_PATTERN, lines[0])
    assert key is not None
    listed = [line.split("\t") for line in lines[1:3]]
    assert [row[:3] for row in listed] == [
        [key.group(1), "Example Newsroom", "write"],
        [listed[1][0], "Old dashboard", "read"],
    ]
    # Both created just now, neither revoked when listed.
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", row[3]) for row in listed)
    assert [row[4] for row in listed] == ["", ""]
    assert lines[3:] == [
        "401",  # the revoked key
        "17",  # the pull, one event a line
        "10",  # the CSV of Kharkiv Oblast: its header and 9 events
        "201",  # POST
        "idempotent-replayed: true",  # the same POST again
        "200",  # PATCH
        "412",  # DELETE with the ETag from before the PATCH
        "204",  # DELETE with the ETag read again
        "410",  # the deleted event
    ]


def test_the_changes_since_the_seed_are_the_guides_writes(guide: GuideRun) -> None:
    """The 429 block's call (here without a 429: see test_curl_retries_past_a_429)."""
    _, (changes, _) = guide_output(guide)
    for change in changes["data"]:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", change.pop("changed_at"))
    # Created, updated, deleted: the feed gives each event once, at its latest change.
    history = history_id(guide.db)
    since = changes_token(history, 20)
    url = f"{guide.server.url}/api/v1/changes?since={changes_token(history, 17)}"
    assert changes == {
        "data": [{"seq": 20, "change": "deleted", "event_id": EXAMPLE_ID, "event": None}],
        "links": {"self": url, "next": None},
        "meta": {"count": 1, "limit": 100, "since": since},
    }


def history_id(db: Path) -> str:
    """The id of the database's change history, which its change tokens carry."""
    conn = sqlite3.connect(db)
    [(history,)] = conn.execute("SELECT id FROM change_history").fetchall()
    conn.close()
    return str(history)


def changes_token(history: str, seq: int) -> str:
    raw = json.dumps(["changes", history, seq], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_the_guide_leaves_no_file_behind(guide: GuideRun) -> None:
    """Its downloads go to a scratch folder (`mktemp -d`), which its last step removes:
    nothing in the directory it runs in (the project root for a reader), nothing in
    TMPDIR. What it pulled, it counted (test_the_guide_prints_what_it_says)."""
    assert [p.name for p in guide.cwd.iterdir()] == ["examples"]
    assert list((guide.cwd.parent / "scratch").iterdir()) == []


def test_the_guide_wrote_through_the_api(guide: GuideRun) -> None:
    """The audit log: one create, one update, one delete of the example event, by the
    guide's key; the replayed POST and the refused DELETE wrote nothing."""
    conn = sqlite3.connect(guide.db)
    rows = conn.execute(
        "SELECT key_name, action, event_id, after FROM audit_log WHERE key_id IS NOT NULL "
        "ORDER BY seq"
    )
    audit = rows.fetchall()
    conn.close()
    assert [row[:3] for row in audit] == [
        ("Example Newsroom", "create", EXAMPLE_ID),
        ("Example Newsroom", "update", EXAMPLE_ID),
        ("Example Newsroom", "delete", EXAMPLE_ID),
    ]
    posted = json.loads((ROOT / "examples" / "new-events.json").read_text())["events"][0]
    created, updated = json.loads(audit[0][3]), json.loads(audit[1][3])
    assert {k: v for k, v in created.items() if k not in ("acled", "updated_at")} == posted
    assert updated["casualties"]["injured"] == {
        **posted["casualties"]["injured"],
        "best": 5,
        "low": 5,
    }


def test_the_changes_example_shows_the_feed_as_it_is(guide: GuideRun) -> None:
    (shown,) = [b for b in GUIDE if b.section == "Keeping a copy in sync" and b.language == "sh"]
    assert shown.text == 'curl -s "$BASE/api/v1/changes?limit=1"\n'
    (document,) = [
        b for b in BLOCKS if b.language == "json" and b.section == "Keeping a copy in sync"
    ]
    expected = json.loads(document.text.replace(MAKE_RUN, guide.server.url))
    _, (_, page) = guide_output(guide)
    # changed_at is when the test database was seeded; the event is elided in the README.
    for change in (*expected["data"], *page["data"]):
        change["changed_at"] = "..."
    page["data"][0]["event"] = {"...": "the event, as GET /api/v1/events/{id} returns it"}
    # The README shows a made-up history id; the test database has its own.
    readme_token = changes_token("5c0ffee0d15ea5e5", 1)
    token = changes_token(history_id(guide.db), 1)
    page["meta"]["since"] = page["meta"]["since"].replace(token, readme_token)
    page["links"]["next"] = page["links"]["next"].replace(token, readme_token)
    assert page == expected


def test_the_mirror_loop_copies_what_the_api_lists(guide: GuideRun) -> None:
    (code,) = [b for b in GUIDE if b.language == "python"]
    namespace: dict[str, Any] = {}
    exec(for_server(code, guide.server), namespace)  # the README's own code, as a reader runs it
    mirror: dict[str, dict] = {}
    since = namespace["sync"](mirror, None)
    listed = get(f"{guide.server.url}/api/v1/events?limit=1000")["data"]
    assert mirror == {event["id"]: event for event in listed}
    assert len(mirror) == 17
    # A second sync from the token finds nothing new and keeps its place.
    assert namespace["sync"](mirror, since) == since
    assert len(mirror) == 17


def test_curl_retries_past_a_429(seeded_db: Path, tmp_path: Path) -> None:
    """The guide's 429 block, run three times on a key allowed two calls in 3 seconds:
    the third call is refused, and curl --retry waits the Retry-After and gets it."""
    (block,) = [b.text for b in GUIDE if "--retry" in b.text]
    db = tmp_path / "salvo.db"
    shutil.copy(seeded_db, db)
    writable = open_for_writing(str(db))
    key = create_key(writable, "Example Newsroom", "read")
    writable.close()
    log = tmp_path / "server.log"
    with serving(db, log, env={"SALVO_RATE_LIMIT_KEY": "2/3seconds"}) as server:
        # SINCE as the guide's "Sync daily" block leaves it: after the seed's 17 changes.
        since = changes_token(history_id(db), 17)
        script = f"BASE={server.url}\nKEY={shlex.quote(key)}\nSINCE={since}\n" + block * 3
        started = time.monotonic()
        result = bash(script, project_like(tmp_path), db)
        seconds = time.monotonic() - started
        logged = "\n".join(server.access_log('"GET /api/v1/changes', 4))
    assert result.returncode == 0, result.stderr
    # -S: curl names the refused attempt; -f: it wrote no body for it.
    assert result.stderr == "curl: (22) The requested URL returned error: 429\n"
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(result.stdout):
        document, at = decoder.raw_decode(result.stdout, at)
        documents.append(document)
    # Nothing changed since the seed's 17 changes: three times the same empty page.
    assert documents == [documents[0]] * 3
    assert documents[0]["data"] == [] and documents[0]["meta"]["count"] == 0
    # The access log: the refused call, then curl's retry once the window let it in.
    statuses = re.findall(r'"GET /api/v1/changes\?\S* HTTP/1.1" (\d+)', logged)
    assert statuses == ["200", "200", "429", "200"]
    # curl waited the Retry-After: the seconds, rounded up, until the first call left
    # the 3-second window (the calls before it take milliseconds).
    assert 2 < seconds < 10


def test_the_429_shown_is_the_429_served(seeded_db: Path, tmp_path: Path) -> None:
    (shown,) = [b for b in BLOCKS if b.language == "json" and b.section == "Partners' guide"]
    expected = json.loads(shown.text)
    with serving(seeded_db, tmp_path / "server.log") as server:
        for _ in range(601):  # the default anonymous limit's minute, and one more
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(f"{server.url}/api/v1/event-types").close()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server.url}/api/v1/event-types")
    served = json.loads(refused.value.read())
    # The seconds left in the window vary from run to run.
    served["detail"] = re.sub(r"Retry after \d+ s", "Retry after 58 s", served["detail"])
    assert served == expected
