"""python -m seed: load the curated events; python -m seed synthetic: generate events at scale;
python -m seed import: events from an ACLED, UCDP GED or missile-attacks CSV.

Each validates every record through the event schema and write in one transaction:
a bad record or a failed write leaves the database exactly as it was.
Re-seeding keeps what partners deleted or edited through the API (the rule is
api.store.sqlite.writes.write_curated's). A database an earlier release wrote is first
upgraded in place, as `python -m api migrate` does, and the seed says so.

A postgresql:// database is written through its store only: the curated load by its
writer's load_curated, in one transaction; the synthetic load and the import by its
bulk_load, staged and then merged in slices that readers never wait on (a failed one
leaves whole slices written, and the same command run again finishes it).
"""

import argparse
import datetime
import os
import re
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database

from api.config import database_path
from api.store import (
    POSTGRESQL_SCHEMES,
    AuditRecord,
    Author,
    BulkCounts,
    BulkWrites,
    CuratedLoad,
    Store,
    StoreError,
    Unavailable,
    command_author,
    database_file,
    open_store,
)
from api.store.sqlite.audit import AuditEntry, append_audit
from api.store.sqlite.backups import private_files, recover, terminate_as_interrupt
from api.store.sqlite.layout import OutdatedLayout, gather_statistics
from api.store.sqlite.migrations import open_migrated
from api.store.sqlite.writes import CopyInvalid, bulk_writes, write_curated
from seed import imports, synthetic
from seed.curated import DATA_DIR, InvalidRecord, load_events

T = TypeVar("T")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seed", description=__doc__)
    parser.add_argument(
        "--db",
        help="database to write: a SQLite file, or a postgresql:// URL for the curated "
        "and synthetic loads (default: $SALVO_DATABASE, else var/salvo.db)",
    )
    parser.add_argument(
        "--data", type=Path, default=DATA_DIR, help="folder of curated *.yaml files"
    )
    # `python -m seed` alone is the curated load, with nothing to restore.
    parser.set_defaults(restore=[])
    commands = parser.add_subparsers(dest="command")
    curated = commands.add_parser("curated", help="the curated events (the default)")
    # Also accepted after the command; SUPPRESS keeps a value given before it.
    curated.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    curated.add_argument("--data", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    curated.add_argument(
        "--restore",
        action="append",
        default=[],
        metavar="ID",
        help="load this curated event again although it was deleted through the API "
        "(repeatable); the seed otherwise keeps such events deleted",
    )
    generated = commands.add_parser("synthetic", help="deterministic synthetic events at scale")
    generated.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    generated.add_argument("--events", type=int, required=True, help="how many events")
    generated.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    generated.add_argument(
        "--until",
        type=datetime.date.fromisoformat,
        default=datetime.date.today(),
        help="last possible event date, ISO (default today); events start on 2022-02-24",
    )
    generated.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes generating and validating (default: one per core)",
    )
    imported = commands.add_parser(
        "import",
        help="events from a dataset's CSV: ACLED, UCDP GED or missile attacks (docs/imports.md)",
    )
    imported.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    imported.add_argument(
        "--format", required=True, choices=list(imports.LAYOUTS), help="the file's layout"
    )
    imported.add_argument("file", metavar="FILE", help="the CSV file, or - for standard input")
    imported.add_argument(
        "--skip-invalid",
        action="store_true",
        help="load the valid rows and write the rejected ones, with their reasons, to "
        "FILE.rejected.csv (default: any invalid row refuses the whole file)",
    )
    imported.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes mapping and validating rows (default: one per core)",
    )
    imported.add_argument(
        "--na-values",
        type=_na_values,
        default=imports.NA_VALUES,
        metavar="LIST",
        help="comma-separated cells that mean 'missing', as empty cells do (default: the "
        "ones pandas reads as missing, R's NA and N/A among them; '' for empty cells only)",
    )
    imported.add_argument(
        "--date-format",
        metavar="FORMAT",
        help="the form of ACLED's event_date as a strptime format, such as %%d/%%m/%%Y: "
        "needed only where a date could be read two ways (05/06/2020)",
    )
    imported.add_argument(
        "--models",
        metavar="TABLE",
        help="missile-attacks: a table of weapon models and their categories in the "
        "layout of the dataset's missiles_and_uavs.csv (columns model, category); its "
        "rows take precedence over Salvo's model table (docs/imports.md)",
    )
    args = parser.parse_args(argv)
    database = args.db or database_path()
    if database.startswith(POSTGRESQL_SCHEMES):
        if args.command == "synthetic":
            return _load_synthetic(database, args)
        if args.command == "import":
            return _import(database, args)
        return _load_curated(database, args.data, args.restore)
    try:
        path = database_file(database)
    except Unavailable as error:
        print(f"seed: {error}", file=sys.stderr)
        return 2
    with private_files():
        if args.command == "synthetic":
            return _load_synthetic(path, args)
        if args.command == "import":
            return _import(path, args)
        return _load_curated(path, args.data, args.restore)


def _load_curated(path: str, data: Path, restore: list[str]) -> int:
    try:
        # Everything is validated before the database is opened.
        events = load_events(data)
    except InvalidRecord as error:
        print(f"seed: invalid record, nothing written: {error}", file=sys.stderr)
        return 1
    unknown = sorted(set(restore) - {event["id"] for event in events})
    if unknown:
        print(
            f"seed: --restore names no curated event: {', '.join(unknown)}; nothing written",
            file=sys.stderr,
        )
        return 2
    author, at = command_author(), datetime.datetime.now(datetime.UTC)
    if path.startswith(POSTGRESQL_SCHEMES):
        load = _write_store(
            path, lambda store: _curated_through(store, events, author, at, restore)
        )
    else:
        load = _write(path, lambda db: write_curated(db, events, author, at, restore))
    if load is None:
        return 1
    print(f"seed: {len(events)} curated events from {data} into {_shown(path)}: {_summary(load)}")
    return 0


def _shown(database: str) -> str:
    """A database setting as the seed says it: a URL without its password."""
    return re.sub(r"^([a-z]+://[^:/@]*):[^@/]*@", r"\1@", database)


def _summary(load: CuratedLoad) -> str:
    return (
        f"{load.new} new, {load.updated} updated, {load.unchanged} unchanged, "
        f"{load.kept_edited} kept as edited through the API, "
        f"{load.kept_deleted} kept deleted through the API{_rerendered(load.rerendered)}"
    )


def _rerendered(count: int) -> str:
    """What a load's summary adds when it changed a place or source other events copy."""
    if not count:
        return ""
    events = "1 other event" if count == 1 else f"{count:,} other events"
    return f"; {events} re-rendered with the places and sources it changed"


def _load_synthetic(path: str, args: argparse.Namespace) -> int:
    if args.events < 1 or args.workers < 1:
        print("seed: --events and --workers must be at least 1", file=sys.stderr)
        return 2
    started = time.perf_counter()

    # One entry for the whole load: one per event would double a 1M-event load.
    detail = {"events": args.events, "seed": args.seed, "until": args.until.isoformat()}

    def generate(bulk: BulkWrites) -> int:
        return synthetic.load(bulk, args.events, args.seed, args.until, args.workers)

    def load(store: Store) -> int:
        now = datetime.datetime.now(datetime.UTC)
        audit: list[AuditRecord] = [("synthetic", None, None, None, detail)]
        with store.bulk_load(command_author(), now, lambda counts: audit) as bulk:
            return generate(bulk)

    def load_file(db: Database) -> int:
        with bulk_writes(db) as bulk:
            count = generate(bulk)
        _audit_load(db, AuditEntry("synthetic", detail=detail))
        return count

    try:
        with terminate_as_interrupt():
            if path.startswith(POSTGRESQL_SCHEMES):
                count = _write_store(path, load, _SLICES_LEFT)
            else:
                count = _write(path, load_file, bulk=True)
    except KeyboardInterrupt:
        print(_interrupted(path), file=sys.stderr)
        return 130
    if count is None:
        return 1
    seconds = time.perf_counter() - started
    # ru_maxrss is in KiB on Linux; children are the worker processes.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"seed: {count} synthetic events (seed {args.seed}) loaded into {_shown(path)} "
        f"in {seconds:.1f} s ({count / seconds:,.0f} events/s); peak RSS {own:.0f} MB "
        f"(largest worker {workers:.0f} MB)"
    )
    return 0


def _na_values(text: str) -> frozenset[str]:
    return frozenset(value.strip() for value in text.split(",") if value.strip())


def _import(path: str, args: argparse.Namespace) -> int:
    if args.workers < 1:
        print("seed: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.date_format is not None and not imports.LAYOUTS[args.format].dates:
        print(
            f"seed: --date-format is for ACLED's event_date; {args.format} files give ISO dates",
            file=sys.stderr,
        )
        return 2
    label = "standard input" if args.file == "-" else args.file
    models: dict[str, str] = {}
    if args.models is not None:
        try:
            models = imports.read_models(args.models)
        except imports.ImportRefused as error:
            print(f"seed: {error}; nothing written", file=sys.stderr)
            return 1
        except OSError as error:
            print(f"seed: cannot read {args.models}: {error.strerror}", file=sys.stderr)
            return 2
    try:
        # utf-8-sig: spreadsheet programs start their CSV exports with a byte-order mark.
        # The stream is closed by the `with` below, standard input excepted.
        name = sys.stdin.fileno() if args.file == "-" else args.file
        stream = open(name, encoding="utf-8-sig", newline="", closefd=args.file != "-")  # noqa: SIM115
    except OSError as error:
        print(f"seed: cannot read {label}: {error.strerror}", file=sys.stderr)
        return 2
    rejects = None
    if args.skip_invalid:
        rejects = imports.RejectedFile(imports.rejects_path(args.file))
    progress = imports.Progress(sys.stderr)
    changed_at = datetime.datetime.now(datetime.UTC)

    def read(db: Database, into: BulkWrites | None = None) -> imports.ImportResult:
        return imports.import_rows(
            db,
            args.format,
            label,
            stream,
            changed_at=changed_at,
            on_rejected=None if rejects is None else rejects.write,
            on_progress=progress.advance,
            workers=args.workers,
            reading=imports.Reading(args.na_values, args.date_format),
            into=into,
        )

    def detail(result: imports.ImportResult) -> dict[str, Any]:
        # One entry for the whole file, as for a synthetic load.
        counts = {name: getattr(result, name) for name in _IMPORT_COUNTS}
        return {"file": label, "format": args.format, **counts}

    def load(db: Database) -> imports.ImportResult:
        result = read(db)
        _audit_load(db, AuditEntry("import", detail=detail(result)), changed_at)
        return result

    def load_store(store: Store) -> imports.ImportResult:
        # import_rows' temporary tables (the ids given so far, the rows of a file of
        # one row per actor) in a SQLite file of the import's own, as they are on
        # SQLite: memory stays flat however long the file.
        read_so_far: list[imports.ImportResult] = []

        def audit(counts: BulkCounts) -> list[AuditRecord]:
            (result,) = read_so_far
            result.wrote(counts)
            return [("import", None, None, None, detail(result))]

        with tempfile.TemporaryDirectory(prefix="salvo-import-") as scratch:
            db, _ = open_migrated(str(Path(scratch) / "import.db"))
            try:
                with store.bulk_load(command_author(), changed_at, audit) as bulk:
                    read_so_far.append(read(db, into=bulk))
            finally:
                db.close()
        return read_so_far[0]

    try:
        with stream, progress, terminate_as_interrupt(), imports.use_models(models):
            if path.startswith(POSTGRESQL_SCHEMES):
                result = _write_store(path, load_store, _SLICES_LEFT)
            else:
                # A bulk load's worth of new or changed events moves the statistics.
                result = _write(
                    path,
                    load,
                    bulk=True,
                    changed_much=lambda r: r.new + r.updated >= imports.BULK_AFTER_ROWS,
                )
    except imports.ImportRefused as error:
        print(f"seed: {error}; nothing written", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(_interrupted(path), file=sys.stderr)
        return 130
    finally:
        if rejects is not None:
            rejects.close()
    if result is None:
        return 1
    for warning in result.warnings:
        print(f"seed: warning: {warning}", file=sys.stderr)
    if result.warning_count > len(result.warnings):
        print(
            f"seed: ... and {result.warning_count - len(result.warnings)} more warnings",
            file=sys.stderr,
        )
    for warning, rows in sorted(result.tallied.items()):
        count = "1 row" if rows == 1 else f"{rows:,} rows"
        print(f"seed: warning: {label}: {warning} ({count})", file=sys.stderr)
    rejected = ""
    if result.repeated:
        rejected += f", {result.repeated} repeated (skipped)"
    if rejects is not None:
        rejected += f", {result.rejected} rejected (listed in {rejects.path})"
    print(
        f"seed: {result.read} {args.format} rows from {label} into {_shown(path)}: "
        f"{result.new} new, "
        f"{result.updated} updated, {result.unchanged} unchanged{rejected}"
        f"{_rerendered(result.rerendered)}"
    )
    return 0


_IMPORT_COUNTS = ("read", "new", "updated", "unchanged", "rejected", "rerendered")


def _audit_load(db: Database, entry: AuditEntry, at: datetime.datetime | None = None) -> None:
    append_audit(db.conn, command_author(), at or datetime.datetime.now(datetime.UTC), [entry])


def _write(
    path: str,
    write: Callable[[Database], T],
    bulk: bool = False,
    changed_much: Callable[[T], bool] = lambda result: True,
) -> T | None:
    """Run write(db) in one transaction; None (after saying why) if it failed. Table
    statistics are gathered after it, unless the database has them and
    `changed_much(result)` says the write changed too little to move them (ANALYZE
    reads every index: 2.5 s at 1M events).

    A `bulk` write runs with a rollback journal rather than the WAL when no other
    connection has the database open: a new page then goes to the database file once,
    where the WAL would take each page and copy it again at the checkpoint (measured:
    a sixth of a 1M-event load). The write is as atomic either way."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    recovered = recover(path)
    if recovered:
        print(f"seed: recovered {path}: {recovered}")
    try:
        db, migration = open_migrated(path)
    except OutdatedLayout as error:
        print(f"seed: {error}", file=sys.stderr)
        return None
    except sqlite3.DatabaseError as error:
        print(f"seed: upgrading {path} failed, the database is unchanged: {error}", file=sys.stderr)
        return None
    # Upgrading a file an earlier release wrote is said (a new file is not).
    if migration.upgraded:
        print(f"seed: {migration.described()}", flush=True)
    try:
        if bulk:
            _leave_wal_if_alone(db)
        with db.atomic():
            has_statistics = db["sqlite_stat1"].exists()
            result = write(db)
            # Table statistics let the query planner choose between walking the
            # sort index and collecting a filter's matches (see api/store/sqlite/query.py).
            if not has_statistics or changed_much(result):
                gather_statistics(db)
        return result
    except sqlite3.DatabaseError as error:
        print(f"seed: writing failed, the database is unchanged: {error}", file=sys.stderr)
        return None
    except CopyInvalid as error:
        print(f"seed: nothing written: {error}", file=sys.stderr)
        return None
    finally:
        if bulk:
            _restore_wal(db, path)
        db.close()


# What a failed bulk load leaves on PostgreSQL (Store.bulk_load).
_SLICES_LEFT = (
    "the slices merged before the failure stay written (each whole, seqs in order); "
    "run the same command again to write the rest"
)


def _interrupted(database: str) -> str:
    """What an interrupted bulk load leaves: nothing on SQLite (one transaction); on
    PostgreSQL, the slices merged before it (none if it was still reading)."""
    if database.startswith(POSTGRESQL_SCHEMES):
        return (
            "seed: interrupted; the slices merged before it stay written (each whole, seqs "
            "in order; none if it was still reading); run the same command again to write "
            "the rest"
        )
    return f"seed: interrupted, nothing written; {database} is as it was"


def _curated_through(
    store: Store,
    events: list[dict[str, Any]],
    author: Author,
    at: datetime.datetime,
    restore: list[str],
) -> CuratedLoad:
    with store.writer() as writer:
        return writer.load_curated(events, author, at, restore)


def _write_store(
    database: str, write: Callable[[Store], T], left: str = "the database is unchanged"
) -> T | None:
    """Run write(store) on the store at `database` (a PostgreSQL URL), after creating
    or upgrading its layout as `python -m api migrate` does (said unless there was
    nothing to do); None (after saying why, and what a failure left: `left`) if it
    failed."""
    store = open_store(database)
    try:
        try:
            said = store.migrate()
        except StoreError as error:
            # Nothing is written before the layout is this release's.
            print(
                f"seed: writing failed, the database is unchanged: {error.detail}", file=sys.stderr
            )
            return None
        if not said.endswith("nothing to do"):
            print(f"seed: {said}", flush=True)
        return write(store)
    except StoreError as error:
        print(f"seed: writing failed, {left}: {error.detail}", file=sys.stderr)
        return None
    except CopyInvalid as error:
        print(f"seed: nothing written: {error}", file=sys.stderr)
        return None
    finally:
        store.close()


def _leave_wal_if_alone(db: Database) -> None:
    """Switch to a rollback journal, unless another connection (a running server)
    has the database open: SQLite refuses the switch then, and the WAL stays, so
    that readers are never locked out."""
    (timeout,) = db.execute("PRAGMA busy_timeout").fetchone()
    db.execute("PRAGMA busy_timeout = 0")
    try:
        db.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.OperationalError:
        pass  # "database is locked": someone is reading
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(timeout)}")


def _restore_wal(db: Database, path: str) -> None:
    """Back to the WAL, which readers need beside a writer. (A no-op if the load kept
    it.) It fails only if a server opened the file during the load."""
    try:
        db.enable_wal()
    except sqlite3.OperationalError as error:
        restore = f"import sqlite3; sqlite3.connect({path!r}).execute('PRAGMA journal_mode=WAL')"
        print(
            f"seed: the events are written, but {path} is left with a rollback journal "
            f"({error}), where writers block readers; stop the servers reading it and "
            f'run: python -c "{restore}"',
            file=sys.stderr,
        )


if __name__ == "__main__":
    sys.exit(main())
