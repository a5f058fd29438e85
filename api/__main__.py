"""python -m api serve: run the API under Granian; python -m api init: create the database
with its tables; python -m api migrate: upgrade a database an earlier release wrote, in
place; python -m api keys create|list|revoke: manage the API keys partners send as
`Authorization: Bearer <key>`; python -m api backup PATH and python -m api restore FILE:
copy the database out, or back in, while it serves; python -m api renew-history: begin a
new change history after a restore made by other tools (pg_restore, a point-in-time
recovery), as `restore` does for its own (see docs/operations.md)."""

import argparse
import os
import re
import shlex
import sqlite3
import sys
from pathlib import Path

from api.config import database_path, database_replica, rate_limit_storage, rate_limits_enabled
from api.keys import SCOPES
from api.store import (
    POSTGRESQL_SCHEMES,
    DatabaseSummary,
    NotRestorable,
    StoreError,
    Unavailable,
    database_file,
    open_store,
    pooling_refusal,
    replica_refusal,
)
from api.store.sqlite.backups import (
    private_files,
    recover,
    terminate_as_interrupt,
)
from api.store.sqlite.layout import (
    SCHEMA_VERSION,
    MissingDatabase,
    NewerSchema,
    OutdatedLayout,
    init_database,
    schema_version,
)

# The access log's line, as api.edge writes it; bench/run.py gives it to Granian for the
# floor app, so that both pay for the same log.
ACCESS_LOG_FORMAT = (
    '[%(time)s] %(addr)s "%(method)s %(path)s?%(query_string)s %(protocol)s" '
    "%(status)d %(dt_ms).1f ms"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    parser.add_argument(
        "--db",
        help="SQLite file or postgresql:// URL (default: $SALVO_DATABASE, else var/salvo.db)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API with Granian (stop with Ctrl-C)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes (default 1; see README)"
    )
    serve.add_argument(
        "--threads", type=int, default=4, help="Python threads per worker for reads (default 4)"
    )
    commands.add_parser(
        "init",
        help="create the database with every table and index, or add the ones a file of "
        "this version lacks (the API never creates them)",
    )
    commands.add_parser(
        "migrate",
        help="upgrade a database an earlier release of Salvo wrote to this release's schema "
        "version, in place, keeping everything it holds (a no-op on a current one)",
    )
    backup = commands.add_parser(
        "backup",
        help="copy the database to PATH while it serves: a consistent snapshot, in WAL mode",
    )
    backup.add_argument("path", help="the copy to write (refused if it exists)")
    backup.add_argument("--force", action="store_true", help="replace PATH if it exists")
    restore_command = commands.add_parser(
        "restore",
        help="replace the database's content by FILE's (a backup) while it serves; "
        "partners' change tokens from before are refused afterwards",
    )
    restore_command.add_argument("file", help="a Salvo database of this version, e.g. a backup")
    commands.add_parser(
        "renew-history",
        help="after restoring the database with other tools (pg_restore, a point-in-time "
        "recovery, a file copied back): begin a new change history, so that partners' "
        "change tokens from before are refused and they resync",
    )
    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create a key and print it (only this once)")
    create.add_argument("--name", required=True, help="who the key is for")
    create.add_argument("--scope", required=True, choices=SCOPES)
    keys.add_parser("list", help="list the keys (never the keys themselves)")
    revoke = keys.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id", help="the id shown by `keys list`")
    args = parser.parse_args(argv)
    path = args.db or database_path()
    if path.startswith(POSTGRESQL_SCHEMES):
        if args.command in ("init", "backup", "restore"):
            print(
                f"api: {args.command} works on SQLite files; on PostgreSQL, `migrate` "
                "creates the layout, and pg_dump and pg_restore back it up and restore it; "
                "after a restore, run `python -m api renew-history` (docs/operations.md, "
                '"Backup and restore on PostgreSQL")',
                file=sys.stderr,
            )
            return 2
    else:
        try:
            path = database_file(path)
        except Unavailable as error:
            print(f"api: {error}", file=sys.stderr)
            return 2
    if args.command == "serve":
        return _serve(args, path)
    with private_files():
        if args.command == "init":
            return _init(path)
        if args.command == "migrate":
            return _migrate(path)
        if args.command == "backup":
            return _backup(path, args.path, args.force)
        if args.command == "restore":
            return _restore(args.file, path)
        if args.command == "renew-history":
            return _renew_history(path)
        return _keys(path, args)


def _serve(args: argparse.Namespace, path: str) -> int:
    """Replace this process with Granian serving api:create_app, so that signals reach
    Granian directly: on SIGTERM or Ctrl-C it stops accepting connections and lets
    the requests in flight finish."""
    # A setting that cannot serve is said here, once, rather than by each of
    # Granian's workers as it loads the app.
    refusal = (
        replica_refusal(path, database_replica()) or pooling_refusal(path) or _unservable(path)
    )
    if refusal:
        print(f"api: {refusal}", file=sys.stderr)
        return 1
    if args.workers > 1 and rate_limits_enabled() and rate_limit_storage() == "memory://":
        print(
            "api: with more than one worker, each would count rate limits on its own and "
            "let through up to workers x the limit. Set SALVO_RATE_LIMIT_STORAGE="
            "redis://host:port (shared counters), or SALVO_RATE_LIMITS=off behind a "
            "gateway that enforces its own.",
            file=sys.stderr,
        )
        return 2
    environ = dict(os.environ)
    if args.db:
        environ["SALVO_DATABASE"] = args.db
    environ["SALVO_READ_THREADS"] = str(args.threads)
    command = [
        str(Path(sys.executable).parent / "granian"),
        # ASGI to api.edge, which runs the Flask app on its own bounded pools: under
        # Granian's WSGI interface a slow reader or a slow body held a thread.
        "--interface", "asgi",
        "--factory", "api.edge:create_edge",
        "--no-ws",
        "--host", args.host,
        "--port", str(args.port),
        "--workers", str(args.workers),
        # A worker that dies (kill -9, a SIGBUS from an unwritable -shm) is replaced
        # rather than ending the server.
        "--respawn-failed-workers",
        "--respawn-interval", "1",
        # Requests in flight get this long to finish after SIGTERM.
        "--workers-kill-timeout", "30",
    ]  # fmt: skip
    print("api: serving with", shlex.join(command), file=sys.stderr, flush=True)
    os.execve(command[0], command, environ)


def _unservable(path: str) -> str | None:
    """Why the database at path must not be served by this release: it records a newer
    schema version (a later release upgraded it). None if it may be served, warning
    on standard error about an older one, whose writes are refused until it is
    migrated. A missing file is served (every request then says how to create it)."""
    if not Path(path).exists():
        return None
    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
        try:
            version = schema_version(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        return None  # unreadable: each request says what is wrong
    if version is not None and version > SCHEMA_VERSION:
        return f"not serving: {NewerSchema(path, version)}"
    if version is not None and version < SCHEMA_VERSION:
        print(
            f"api: warning: {path} is at schema version {version}, older than this Salvo's "
            f"{SCHEMA_VERSION}: reads are served, writes refused (503) until you run "
            "`python -m api migrate`",
            file=sys.stderr,
        )
    return None


def _init(path: str) -> int:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    recovered = recover(path)
    if recovered:
        print(f"api: recovered {path}: {recovered}")
    try:
        created = init_database(path)
    except OutdatedLayout as error:
        print(f"api: {error}", file=sys.stderr)
        return 1
    if created:
        print(
            f"api: {path}: created {len(created)} tables, indexes and triggers: "
            f"{', '.join(created)}"
        )
    else:
        print(f"api: {path} has every table and index already; nothing to do")
    return 0


def _migrate(path: str) -> int:
    if path.startswith(POSTGRESQL_SCHEMES):
        return _migrate_postgresql(path)
    if not Path(path).exists():
        print(
            f"api: there is no database at {path}; create one with `python -m seed` or "
            "`python -m api init`",
            file=sys.stderr,
        )
        return 1
    store = open_store(path)
    recovered = store.recover()
    if recovered:
        print(f"api: recovered {path}: {recovered}")
    try:
        with terminate_as_interrupt():
            described = store.migrate()
    except KeyboardInterrupt:
        print(f"api: interrupted; {path} is as it was", file=sys.stderr)
        return 130
    except OutdatedLayout as error:
        print(f"api: not migrated, {path} is unchanged: {error}", file=sys.stderr)
        return 1
    except sqlite3.Error as error:
        print(f"api: migrating failed, {path} is unchanged: {error}", file=sys.stderr)
        return 1
    print(f"api: {described}")
    return 0


def _backup(path: str, target: str, force: bool) -> int:
    try:
        with terminate_as_interrupt():
            copied = open_store(path).back_up(target, replace=force)
    except KeyboardInterrupt:
        print(f"api: interrupted; {target} is as it was, no partial copy left", file=sys.stderr)
        return 130
    except MissingDatabase as error:
        print(f"api: nothing to back up: {error}", file=sys.stderr)
        return 1
    except FileExistsError:
        print(
            f"api: {target} exists; choose another path, or --force to replace it", file=sys.stderr
        )
        return 1
    except ValueError as error:
        print(f"api: {error}; back up to another path", file=sys.stderr)
        return 1
    print(f"api: backed up {path} to {target}: {_described(copied)}")
    return 0


def _restore(file: str, path: str) -> int:
    try:
        with terminate_as_interrupt():
            restored = open_store(path).restore(file)
    except KeyboardInterrupt:
        # The copy into the database is one transaction: it happened whole or not at all.
        print(
            f"api: interrupted; {path} holds its content from before, or {file}'s whole if "
            "the copy into it had begun (never a mix); no staging file is left",
            file=sys.stderr,
        )
        return 130
    except NotRestorable as error:
        print(f"api: not restored, {path} is unchanged: {error}", file=sys.stderr)
        return 1
    print(
        f"api: restored {file} into {path}: {_described(restored)}; a new change history "
        "begins, so partners resync (their tokens from before are refused)"
    )
    return 0


def _renew_history(path: str) -> int:
    store = open_store(path)
    try:
        renewed = store.renew_history()
    except StoreError as error:
        print(f"api: no new history, {_shown(path)} is unchanged: {error.detail}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(
        f"api: a new change history begins in {_shown(path)} at change seq "
        f"{renewed.highest_seq} (history {renewed.history}); partners resync (their "
        "tokens from before are refused)"
    )
    return 0


def _shown(database: str) -> str:
    """A database setting as messages name it: a postgresql:// URL without its password."""
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1@", database)


def _migrate_postgresql(url: str) -> int:
    """Create or upgrade a PostgreSQL database's layout (one transaction: a failure
    leaves it as it was). Messages name it without its password."""
    shown = _shown(url)
    try:
        described = open_store(url).migrate()
    except StoreError as error:
        print(f"api: not migrated, {shown} is unchanged: {error.detail}", file=sys.stderr)
        return 1
    print(f"api: {described}")
    return 0


def _described(summary: DatabaseSummary) -> str:
    return f"{summary.events} events, highest change seq {summary.highest_seq}"


def _keys(path: str, args: argparse.Namespace) -> int:
    store = open_store(path)
    try:
        if args.action == "create":
            print(store.create_key(args.name, args.scope))
        elif args.action == "list":
            for key in store.key_listings():
                print(
                    "\t".join((key.id, key.name, key.scope, key.created_at, key.revoked_at or ""))
                )
        elif not store.revoke_key(args.key_id):
            print(f"api: no live key has id {args.key_id!r}", file=sys.stderr)
            return 1
    except StoreError as error:
        print(f"api: {error}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader of standard output left (`keys list | head -0`): as Python's docs
        # recommend (signal, "Note on SIGPIPE"), stdout goes to devnull so that the
        # flush at exit cannot fail again, and the status is 1, not a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 1
    sys.exit(status)
