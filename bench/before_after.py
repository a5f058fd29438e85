"""Before and after (issue 21, item 7): the predecessor release against this checkout,
in one run, in-process through the Flask test client: every /events page case of
bench/run.py's case_urls and every /stats shape of its STATS_CASES on the
1,000,000-event database, and a one-event POST /api/v1/events with a write key on a
small curated database. Targets: pages and stats within 5% (after / before <= 1.05),
the POST within 10% (<= 1.10).

    .venv/bin/python bench/before_after.py [--base 3cbda1a] [--db var/bench.db] [--rounds 9]

"Before" is --base, checked out with `git worktree add --detach` into a temporary
directory that is removed at the end (also on an error, Ctrl-C or SIGTERM). "After"
is the checkout this script runs from, as its files are (uncommitted changes
included). Each side is measured in a process of its own checkout (cwd and
PYTHONPATH set to it), with its own bench/run.py (case_urls, STATS_CASES,
_in_process_client, median_ms), api and seed, alive for the whole run (Side): this
process sends it case names and reads back medians as JSON.

A round measures every case on both sides, case by case, the sides taking turns to
go first (ABBA by case and round, so that a load rising or falling counts against
both alike and both warm the same caches): a case's median of up to 21 calls (fewer
for slow /stats shapes, never under 5), or of 41 POSTs. The figure of a case is the
median over the rounds of each round's median. A missed target prints MISSED; the
exit status is non-zero only on errors, as bench/run.py's.

Databases. Both sides read one copy of --db (built by bench/run.py's ensure_database
if missing), var/<db>-head.db beside it, when the base's reads serve it (shared_copy
says why one file); each side's answer to every case is hashed, and a case whose
bytes differ is noted. Otherwise each side reads its own copy, var/<db>-base.db and
var/<db>-head.db, about 3.4 GB each for the 1,000,000-event file. A copy is made
once by copying and reused while --db is unchanged (its size and mtime are kept in
<copy>.source). A side may refuse a file another version made (its own
`python -m api keys list` checks the layout, and a page must answer 200); then its
own tooling prepares its copy: the head's `python -m api migrate` if that command
exists, else `python -m api init`; the base's seed rebuilds it (`python -m seed
synthetic` with ensure_database's parameters and --db's number of events, which
takes minutes for 1,000,000). The POST's databases are made in the
temporary directory by each side's `python -m seed --db <tmp>/post-<side>.db`, each
with a write key from that side's `python -m api keys create`; every POST sends a new
event id.

The machine's load average is printed at the start and the end: other work on its
shared cores moves these figures.
"""

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIDES = ("base", "head")
EVENTS = 1_000_000  # ensure_database's default size, as `make bench` builds var/bench.db
PAGE_BOUND = 1.05  # pages and /stats shapes: after / before
POST_BOUND = 1.10  # the one-event POST
POSTS = 41  # timed POSTs per round and side, after one to warm up
CASE_BUDGET_MS = 600  # per case and round: slow /stats shapes get fewer calls
MIN_REPEAT, MAX_REPEAT = 5, 21
POST_CASE = "POST one event"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", default="3cbda1a", help="the release before (default 3cbda1a)")
    parser.add_argument("--db", type=Path, default=ROOT / "var" / "bench.db")
    parser.add_argument("--rounds", type=int, default=9, help="rounds (default 9)")
    # The subprocesses' entry points, in a side's checkout (not for use by hand).
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(json.loads(args.measure))
        return 0
    if args.probe:
        print(json.dumps(probe(args.probe)))
        return 0
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    print(f"before_after: load average at the start {_load()}")
    try:
        figures, names = run(args)
    except KeyboardInterrupt:
        print("before_after: interrupted; the base's worktree is removed", file=sys.stderr)
        return 130
    except (subprocess.CalledProcessError, RuntimeError) as error:
        print(f"before_after: {error}", file=sys.stderr)
        return 1
    print_table(figures, names)
    print(
        f"\nbefore_after: load average at the end {_load()}; "
        f"{time.monotonic() - started:.0f} s in all"
    )
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg()) + f" ({os.cpu_count()} cores)"


def run(args: argparse.Namespace) -> tuple[dict[str, dict[str, list[float]]], list[str]]:
    """Each side's round medians by case, and the cases in the order measured."""
    sys.path.insert(0, str(ROOT))  # bench.run, for ensure_database and UNTIL
    source = args.db.resolve()
    if not source.exists():
        from bench.run import ensure_database

        ensure_database(source, EVENTS)
    base_commit = _git("rev-parse", "--verify", f"{args.base}^{{commit}}")
    head_commit = _git("rev-parse", "HEAD")
    dirty = " plus uncommitted changes" if _git("status", "--porcelain", "--", ".") else ""
    print(f"before_after: before {base_commit[:10]} ({args.base}), after {ROOT}")
    print(f"before_after: after is {head_commit[:10]}{dirty}")

    with (
        tempfile.TemporaryDirectory(prefix="salvo-before-after-") as tmp,
        worktree(base_commit, Path(tmp) / "base") as base_checkout,
    ):
        checkouts = {"base": base_checkout, "head": ROOT}
        copies = {"head": prepare_copy("head", ROOT, source, _copy_path(source, "head"))}
        copies["base"] = shared_copy(base_checkout, copies["head"]) or prepare_copy(
            "base", base_checkout, source, _copy_path(source, "base")
        )
        keys = {side: post_database(side, checkouts[side], Path(tmp)) for side in SIDES}
        specs = {
            side: {
                "side": side,
                "db": str(copies[side]),
                "post_db": str(Path(tmp) / f"post-{side}.db"),
                "key": keys[side],
            }
            for side in SIDES
        }
        with contextlib.ExitStack() as stack:
            sides = {
                side: stack.enter_context(Side(checkouts[side], specs[side])) for side in SIDES
            }
            names = [*sides["head"].cases, POST_CASE]
            figures: dict[str, dict[str, list[float]]] = {side: {} for side in SIDES}
            for round_no in range(args.rounds):
                began = time.monotonic()
                for number, name in enumerate(names):
                    # ABBA by case and round: the sides take turns going first.
                    order = SIDES if (round_no + number) % 2 == 0 else SIDES[::-1]
                    for side in order:
                        figures[side].setdefault(name, []).append(sides[side].median(name))
                print(
                    f"before_after: round {round_no + 1}/{args.rounds}: "
                    f"{time.monotonic() - began:.0f} s, load {os.getloadavg()[0]:.2f}"
                )
            for name in sides["head"].cases:
                before, after = sides["base"].cases.get(name), sides["head"].cases[name]
                if before is None or before["query"] != after["query"]:
                    print(f"before_after: note: {name} is {before!r} before and {after!r} after")
                elif copies["base"] == copies["head"] and before["answer"] != after["answer"]:
                    print(f"before_after: note: {name} answers other bytes after than before")
    return figures, names


class Side:
    """One side's measuring process, alive for the whole run: this script's --measure
    in the side's checkout, which prints its cases (query string, hash of the answer)
    and then answers each case name sent on its stdin with that case's median in ms.
    One process per side, asked case by case in turns, so that the sides' figures of
    a case are taken seconds apart, not a round (tens of seconds) apart: a burst of
    other work on the shared cores then lands on both sides alike."""

    def __init__(self, checkout: Path, spec: dict[str, Any]) -> None:
        self.checkout = checkout
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--measure", json.dumps(spec)],
            cwd=checkout,
            env=_env(checkout),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.cases: dict[str, dict[str, str]] = self._answer()

    def median(self, name: str) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(name + "\n")
        self.process.stdin.flush()
        return float(self._answer())

    def _answer(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the measuring process in {self.checkout} ended")
        return json.loads(line)

    def __enter__(self) -> "Side":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _copy_path(source: Path, side: str) -> Path:
    return source.with_name(f"{source.stem}-{side}{source.suffix}")


@contextlib.contextmanager
def worktree(commit: str, path: Path) -> Iterator[Path]:
    """The commit checked out, detached, at path for the block; removed afterwards."""
    _git("worktree", "add", "--detach", "--quiet", str(path), commit)
    try:
        yield path
    finally:
        removed = subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if removed.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=False)


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def _env(checkout: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(checkout), "SALVO_RATE_LIMITS": "off"}


def _side(checkout: Path, args: list[str], timeout: float = 600) -> str:
    """`python ARGS` in the side's checkout, with its code first on the path: stdout."""
    completed = subprocess.run(
        [sys.executable, *args],
        cwd=checkout,
        env=_env(checkout),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"`python {' '.join(args)[:200]}` in {checkout} failed "
            f"({completed.returncode}):\n{completed.stderr.strip()[-3000:]}"
        )
    return completed.stdout


def _side_json(checkout: Path, args: list[str], timeout: float = 600) -> Any:
    """This script run in the side's checkout (its entry points --measure, --probe),
    which prints one JSON document."""
    return json.loads(_side(checkout, [str(Path(__file__).resolve()), *args], timeout))


def prepare_copy(side: str, checkout: Path, source: Path, copy: Path) -> Path:
    """The side's own copy of source, made once and reused while source is unchanged;
    prepared by the side's own tooling if the side refuses a plain copy."""
    stamp = copy.with_name(copy.name + ".source")
    status = source.stat()
    made_from = f"{source} {status.st_size} {status.st_mtime_ns}\n"
    if copy.exists() and stamp.exists() and stamp.read_text() == made_from:
        refused = refusal(checkout, copy)
        if refused is None:
            print(f"before_after: {side} reads {copy} (made before)")
            return copy
        print(f"before_after: {side} refuses {copy}, made before: {refused}; making it again")
    _remove_database(copy)
    stamp.unlink(missing_ok=True)
    print(f"before_after: copying {source} to {copy}")
    copy_database(source, copy)
    refused = refusal(checkout, copy)
    if refused is not None:
        print(f"before_after: {side} refuses a copy of {source}: {refused}")
        if side == "head":
            tool = "migrate" if "migrate" in _side(checkout, ["-m", "api", "--help"]) else "init"
            print(f"before_after: head: python -m api --db {copy} {tool}")
            print(_side(checkout, ["-m", "api", "--db", str(copy), tool], timeout=3600).strip())
        else:
            # The base's own seed builds it anew, as ensure_database would have.
            from bench.run import UNTIL

            _remove_database(copy)
            events = _event_count(source)
            command = ["-m", "seed", "--db", str(copy), "synthetic", "--events", str(events)]
            command += ["--seed", "1", "--until", UNTIL]
            print(f"before_after: base: python {' '.join(command)} (this takes minutes)")
            _side(checkout, command, timeout=7200)
        refused = refusal(checkout, copy)
        if refused is not None:
            raise RuntimeError(f"{side} refuses {copy} even after its own tooling: {refused}")
    stamp.write_text(made_from)
    return copy


def shared_copy(checkout: Path, copy: Path) -> Path | None:
    """The head's copy, if the base's reads serve it: then both sides read the same
    bytes. Two copies of one database, one of them migrated, measured the same
    statement 10-20% apart (the bbox page, 2.5 against 3.0 ms, alternating in one
    process), more than the 5% this script judges; one file takes that out.

    The base's layout check (`keys list`) may refuse the file where its reads serve
    it: it guards the base's writes against indexes it did not make (version 1's
    unique seq indexes), and the base only reads here."""
    answer = _side_json(checkout, ["--probe", str(copy)])
    if not answer["ok"]:
        print(f"before_after: base cannot read {copy}: {answer['detail']}")
        print("before_after: the sides read different files: expect 10-20% between them")
        return None
    print(f"before_after: both sides read {copy} (the same bytes)")
    return copy


def _event_count(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
    finally:
        conn.close()
    return int(count)


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def copy_database(source: Path, target: Path) -> None:
    """A copy of a database that no one writes to: the file (cp --reflink=auto) if its
    write-ahead log is empty, else SQLite's backup of what the log holds too."""
    wal = source.with_name(source.name + "-wal")
    if not wal.exists() or wal.stat().st_size == 0:
        subprocess.run(["cp", "--reflink=auto", str(source), str(target)], check=True)
        return
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    writer = sqlite3.connect(target)
    try:
        reader.backup(writer)
    finally:
        reader.close()
        writer.close()


def refusal(checkout: Path, db: Path) -> str | None:
    """Why the side's code refuses the database (its own layout check, `python -m api
    keys list`, and a page in-process), or None if it serves it."""
    try:
        _side(checkout, ["-m", "api", "--db", str(db), "keys", "list"])
    except RuntimeError as error:
        return str(error).splitlines()[-1]
    answer = _side_json(checkout, ["--probe", str(db)])
    return None if answer["ok"] else answer["detail"]


def post_database(side: str, checkout: Path, tmp: Path) -> str:
    """A curated database seeded by the side's own seed, and a write key for it."""
    path = tmp / f"post-{side}.db"
    _side(checkout, ["-m", "seed", "--db", str(path)])
    command = ["-m", "api", "--db", str(path), "keys", "create", "--name", "bench", "--scope"]
    return _side(checkout, [*command, "write"]).strip().splitlines()[-1]


# What runs in a side's checkout: its own bench.run, api and examples.


def _own_code_first() -> None:
    """Drop this script's folder from the path (Python put it first) and check that
    api comes from the checkout named by PYTHONPATH."""
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != here]
    import api

    checkout = Path(os.environ["PYTHONPATH"]).resolve()
    if not Path(api.__file__).resolve().is_relative_to(checkout):
        raise RuntimeError(f"api is imported from {api.__file__}, not from {checkout}")


def probe(db: str) -> dict[str, Any]:
    _own_code_first()
    from api import create_app

    try:
        client = create_app({"DATABASE": db, "RATE_LIMITS_ENABLED": False}).test_client()
        response = client.get("/api/v1/events?limit=1")
    except Exception as error:  # any refusal is reported, not raised
        return {"ok": False, "detail": f"{type(error).__name__}: {error}"}
    if response.status_code != 200:
        return {"ok": False, "detail": f"{response.status_code} {response.get_data(True)[:300]}"}
    return {"ok": True, "detail": ""}


def measure(spec: dict[str, Any]) -> None:
    """A side's measuring process (see Side): prints each case's query string and the
    hash of its answer as one JSON line, then, for each case name read from stdin,
    that case's median in ms."""
    _own_code_first()
    from api import create_app
    from bench import run

    db = Path(spec["db"])
    median_ms, get = run._in_process_client(db)
    # The timed client's budget (run._in_process_client's): a slow /stats shape under
    # load must not be hashed as a "too costly" answer on one side only.
    client = create_app(
        {"DATABASE": str(db), "RATE_LIMITS_ENABLED": False, "QUERY_BUDGET_S": 60.0}
    ).test_client()
    urls = {
        f"page {name}": f"/api/v1/events?{query}"
        for name, query in run.case_urls(db).items()
        if not name.startswith("stats")  # stats_month is STATS_CASES' interval=month
    }
    urls |= {
        f"stats {name}": f"/api/v1/stats?{query}" for name, (query, _, _) in run.STATS_CASES.items()
    }
    cases = {
        name: {
            "query": url.partition("?")[2],
            "answer": hashlib.sha256(client.get(url).get_data()).hexdigest(),
        }
        for name, url in urls.items()
    }
    print(json.dumps(cases), flush=True)
    posts = _poster(spec)
    for line in sys.stdin:
        name = line.strip()
        ms = posts() if name == POST_CASE else _timed(median_ms, get(urls[name]))
        print(json.dumps(ms), flush=True)


def _timed(median_ms: Callable[..., float], call: Callable[[], Any]) -> float:
    """median_ms of the call, with as many repeats as fit CASE_BUDGET_MS (5 to 21)."""
    started = time.perf_counter()
    call()
    once = (time.perf_counter() - started) * 1000
    repeat = max(MIN_REPEAT, min(MAX_REPEAT, int(CASE_BUDGET_MS / max(once, 0.001))))
    return float(median_ms(call, repeat=repeat))


def _poster(spec: dict[str, Any]) -> Callable[[], float]:
    """A call that times POSTS one-event creates, each a new id, after one to warm up,
    and returns their median in ms."""
    from api import create_app

    client = create_app({"DATABASE": spec["post_db"], "RATE_LIMITS_ENABLED": False}).test_client()
    headers = {"Authorization": f"Bearer {spec['key']}"}
    example = json.loads(Path("examples/new-events.json").read_text())["events"][0]
    numbers = itertools.count()

    def posts() -> float:
        times = []
        for n in range(POSTS + 1):
            event = {**example, "id": f"bench-before-after-{spec['side']}-{next(numbers)}"}
            started = time.perf_counter()
            response = client.post("/api/v1/events", json={"events": [event]}, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 201:
                raise RuntimeError(
                    f"POST answered {response.status_code}: {response.get_data(True)}"
                )
            if n:
                times.append(elapsed)
        return statistics.median(times)

    return posts


def print_table(figures: dict[str, dict[str, list[float]]], names: list[str]) -> None:
    """Per case: the median of the round medians before and after, their ratio and the
    verdict; `spread` is (max - min) / median of a side's round medians, the noise."""
    print(
        f"\n{'case':<46}{'before ms':>11}{'after ms':>11}{'after/before':>14}  "
        f"{'verdict':<22}{'spread before/after':>20}"
    )
    missed, spreads = [], []
    for name in names:
        before, after = figures["base"].get(name), figures["head"].get(name)
        if not before or not after:
            print(f"{name:<46}  measured on one side only: {'after' if after else 'before'}")
            continue
        bound = POST_BOUND if name == POST_CASE else PAGE_BOUND
        b, a = statistics.median(before), statistics.median(after)
        ratio = a / b
        if ratio > bound:
            missed.append(name)
        spreads += [_spread(before), _spread(after)]
        verdict = f"{'ok' if ratio <= bound else 'MISSED'} (<= {bound:.2f})"
        print(
            f"{name:<46}{b:>11.2f}{a:>11.2f}{ratio:>14.3f}  {verdict:<22}"
            f"{_spread(before):>12.0%} /{_spread(after):>4.0%}"
        )
    if missed and len(figures["base"][names[0]]) > 1:
        # The bounds are 5% and 10%: when the rounds of one side differ by more, a
        # miss may be the machine's other work rather than the code.
        print(
            f"\n{len(missed)} of {len(names)} cases over their bound; the rounds' median "
            f"spread is {statistics.median(spreads):.0%}. Where a case's spread is wider "
            "than its margin, rerun before reading the miss as the code's."
        )


def _spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values)


if __name__ == "__main__":
    sys.exit(main())
