"""Backups, restores and recovery (docs/operations.md): whole-file copies through
SQLite's backup API, which copies a consistent snapshot page by page under the
database's own locks, so that a serving database is never copied half-written."""

import datetime
import os
import re
import signal
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from api.store import DatabaseSummary, NotRestorable, command_author
from api.store.sqlite.audit import AuditEntry, append_audit
from api.store.sqlite.layout import (
    SCHEMA_VERSION,
    MissingDatabase,
    layout_differences,
    next_seq,
    placeholders,
    renew_history,
    schema_version,
)

# A staging file is named .salvo-<pid>-<random>.db after the process making it, so
# that a later backup or restore can tell one left by a killed process (gone) from
# one a concurrent run is still writing (alive).
_STAGING = re.compile(r"\.salvo-(\d+)-[a-z0-9_]+\.db(-wal|-shm|-journal)?")


@contextmanager
def private_files() -> Iterator[None]:
    """Within the block, the files and folders this process creates are readable by
    their owner only (0600, 0700), whatever the umask (a stricter one is kept): the
    database, its -wal and -shm (SQLite gives them the database's mode), its backups
    and an import's rejected rows hold key hashes, the audit log, unpublished events."""
    previous = os.umask(0o077)
    os.umask(previous | 0o077)
    try:
        yield
    finally:
        os.umask(previous)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (a service manager's stop, `kill`) raises
    KeyboardInterrupt in this process as Ctrl-C does, so that a command cleans up
    on its way out (rolls a load back, removes a staging file) instead of dying."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def back_up(source: str, target: str, *, replace: bool = False) -> DatabaseSummary:
    """Copy the database at source to a new file at target, in WAL mode like the
    original, while others read and write it: the copy is the database as of one
    moment (every transaction committed before the copy began, none half). The copy
    is made beside target and renamed into place, so target is never half-written.

    Raises MissingDatabase if there is no database at source, FileExistsError if
    target exists (unless `replace`), and ValueError if target is source."""
    if Path(target).exists():
        if Path(source).exists() and os.path.samefile(source, target):
            raise ValueError(f"{target} is the database itself")
        if not replace:
            raise FileExistsError(target)
    reader = _connect_read_only(source)
    # A first backup goes into a folder that may not exist yet (var/backups/ on a
    # fresh clone); it is made as private_files makes folders.
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with _staging(Path(target).parent) as staged:
        try:
            _copy(reader, staged, wal=True)
        finally:
            reader.close()
        summary = _summarise(staged)
        # A -wal or -shm left beside target by the file it replaces belongs to that
        # file: SQLite would apply that WAL's pages to the copy.
        for leftover in (f"{target}-wal", f"{target}-shm"):
            Path(leftover).unlink(missing_ok=True)
        os.replace(staged, target)
    return summary


def restore(source: str, target: str) -> DatabaseSummary:
    """Replace the content of the database at target (created if missing) by that
    of the Salvo database at source, in one write transaction through the backup
    API: servers may keep their connections, and read the restored content from
    their next statement on. The restored content starts a new change history, so
    that partners' change tokens from before the restore are refused.

    Raises NotRestorable, leaving target untouched, if source is not a database of
    this version's layout."""
    try:
        reader = _connect_read_only(source)
    except MissingDatabase as error:
        raise NotRestorable(str(error)) from error
    except sqlite3.DatabaseError as error:
        raise NotRestorable(f"{source} is not a SQLite database ({error})") from error
    try:
        version = schema_version(reader)
        if version is not None and version > SCHEMA_VERSION:
            raise NotRestorable(
                f"{source} is at schema version {version}, newer than this Salvo's "
                f"{SCHEMA_VERSION}: restore it with the release that made it, or a later one"
            )
        missing, differing = layout_differences(reader)
        if differing:
            earlier = (
                "; if an earlier release made it, upgrade a copy of it with `python -m api "
                "--db COPY migrate`, and restore the copy"
                if version is not None and version < SCHEMA_VERSION
                else ""
            )
            raise NotRestorable(
                f"{source} was made by another version of Salvo ({', '.join(differing)} "
                f"differ){earlier}"
            )
        if missing:
            raise NotRestorable(
                f"{source} lacks {', '.join(missing)}; add them to a copy of it with "
                "`python -m api --db COPY migrate`, and restore the copy"
            )
    except BaseException:
        reader.close()
        raise
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with _staging(Path(target).parent) as staged:
        # The copy made here is the one checked and restored: source may change meanwhile.
        try:
            _copy(reader, staged, wal=False)
        finally:
            reader.close()
        stage = sqlite3.connect(staged)
        try:
            renew_history(stage)
            _carry_audit_over(stage, target, source)
            stage.commit()
            summary = _summarise(staged)
            live = sqlite3.connect(target, timeout=30)
            try:
                # A new file becomes a WAL database before the copy; an existing one is
                # one already (the backup API keeps the destination's journal mode).
                live.execute("PRAGMA journal_mode = WAL")
                stage.backup(live)
                # The restored pages are in the WAL; copy them into the file now
                # rather than at some later write's checkpoint.
                live.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                live.close()
        finally:
            stage.close()
    return summary


def _carry_audit_over(stage: sqlite3.Connection, target: str, source: str) -> None:
    """Make the audit log append-only across a restore: append to the restored copy
    the entries of the live database's log that the backup lacks, then a 'restore'
    entry naming the file. The backup's log is a prefix of the live one when it was
    taken from this database (its last entry is the live one of the same seq): then
    the later entries are carried over; otherwise the backup comes from elsewhere,
    and every live entry is, after the backup's own."""
    carried: list[tuple[Any, ...]] = []
    if Path(target).exists():
        live = _connect_read_only(target)
        try:
            if live.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit_log'").fetchone():
                columns = [row[1] for row in live.execute("PRAGMA table_info(audit_log)")]
                ours = [row[1] for row in stage.execute("PRAGMA table_info(audit_log)")]
                shared = [c for c in columns if c in ours and c != "seq"]
                last = stage.execute(
                    f"SELECT seq, {', '.join(shared)} FROM audit_log ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                same = (
                    last is not None
                    and last
                    == live.execute(
                        f"SELECT seq, {', '.join(shared)} FROM audit_log WHERE seq = ?", [last[0]]
                    ).fetchone()
                )
                carried = live.execute(
                    f"SELECT {', '.join(shared)} FROM audit_log WHERE seq > ? ORDER BY seq",
                    [last[0] if same else 0],
                ).fetchall()
                stage.executemany(
                    f"INSERT INTO audit_log ({', '.join(shared)}) VALUES ({placeholders(shared)})",
                    carried,
                )
        finally:
            live.close()
    detail = {"file": str(Path(source).resolve()), "entries_carried_over": len(carried)}
    append_audit(
        stage,
        command_author(),
        datetime.datetime.now(datetime.UTC),
        [AuditEntry("restore", detail=detail)],
    )


def _connect_read_only(path: str) -> sqlite3.Connection:
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
    except sqlite3.OperationalError as error:
        raise MissingDatabase(f"{path} cannot be opened: {error}") from error
    return conn


@contextmanager
def _staging(folder: Path) -> Iterator[Path]:
    """A new empty file in folder for the block to copy into: removed when the block
    ends, however it ends (unless the block moved it away). Staging files left in
    folder by processes that are gone (killed) are removed first."""
    for leftover in folder.iterdir():
        named = _STAGING.fullmatch(leftover.name)
        if named and not _running(int(named[1])):
            leftover.unlink(missing_ok=True)
    handle, name = tempfile.mkstemp(dir=folder, prefix=f".salvo-{os.getpid()}-", suffix=".db")
    staged = Path(name)
    try:
        os.close(handle)
        yield staged
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{staged}{suffix}").unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _copy(reader: sqlite3.Connection, staged: Path, *, wal: bool) -> None:
    """Copy reader's database into the empty file staged, in one step of the backup
    API: one read transaction, hence one consistent snapshot."""
    copy = sqlite3.connect(staged)
    try:
        if wal:
            copy.execute("PRAGMA journal_mode = WAL")
        reader.backup(copy)
    finally:
        # Closing the last connection checkpoints the WAL and deletes it.
        copy.close()


def _summarise(path: Path) -> DatabaseSummary:
    conn = sqlite3.connect(path)
    try:
        (events,) = conn.execute("SELECT count(*) FROM events").fetchone()
        return DatabaseSummary(events, next_seq(conn) - 1)
    finally:
        conn.close()


def recover(path: str) -> str | None:
    """Put a database left outside WAL mode back into it: a bulk load (python -m seed
    synthetic) writes through a rollback journal, and one killed mid-write leaves the
    file in that mode with a hot `-journal` beside it. Opening the file read-write
    rolls the interrupted write back (SQLite replays the journal); then the WAL is
    restored. Returns a sentence saying what was done, None if the file (or its
    absence) needed nothing."""
    file = Path(path)
    try:
        with file.open("rb") as opened:
            header = opened.read(20)
    except FileNotFoundError:
        return None
    # Bytes 18 and 19 of the header are 2 in WAL mode, 1 with a rollback journal.
    if not header.startswith(b"SQLite format 3\x00") or header[18] == 2:
        return None
    journal = Path(f"{path}-journal")
    interrupted = journal.exists() and journal.stat().st_size > 0
    conn = sqlite3.connect(path)
    try:
        # The first read takes the shared lock, and with it rolls a hot journal back.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    finally:
        conn.close()
    if mode != "wal":
        raise sqlite3.OperationalError(f"{path} stays in {mode} mode; is a bulk load running?")
    if interrupted:
        return "an interrupted write was rolled back; WAL mode restored"
    return "it was left with a rollback journal; WAL mode restored"
