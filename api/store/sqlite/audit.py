"""The audit log: who changed what, through the API or a command."""

import datetime
import sqlite3
from typing import Any, NamedTuple

import orjson

from api.store import Author
from schemas.fields import TIMESTAMP_FORMAT


class AuditEntry(NamedTuple):
    """One audit_log row but for its author and time."""

    action: str
    event_id: str | None = None
    before: str | None = None
    after: str | None = None
    detail: dict[str, Any] | None = None


def append_audit(
    conn: sqlite3.Connection, author: Author, at: datetime.datetime, entries: list[AuditEntry]
) -> None:
    """Append one audit_log row per entry, in the caller's transaction."""
    at_text = stamp(at)
    conn.executemany(
        "INSERT INTO audit_log (at, key_id, key_name, action, event_id, before, after, "
        "request_id, client_address, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                at_text,
                author.key_id,
                author.key_name,
                *entry[:4],
                author.request_id,
                author.client_address,
                None if entry.detail is None else orjson.dumps(entry.detail).decode(),
            )
            for entry in entries
        ],
    )


def stamp(at: datetime.datetime) -> str:
    return at.strftime(TIMESTAMP_FORMAT)
