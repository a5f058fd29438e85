"""API keys: api/keys.py makes and checks them; these statements store them, audited
as a command's (keys are made on the server only, `python -m api keys`)."""

import datetime
import sqlite3

import sqlite_utils

from api.keys import new_key
from api.store import Author, KeyListing, StoredKey, command_author
from api.store.sqlite.audit import AuditEntry, append_audit, stamp


def insert_key(
    db: sqlite_utils.Database, key: StoredKey, created_at: datetime.datetime, author: Author
) -> None:
    """Store a new, live key, and audit it (never its hash)."""
    with db.atomic():
        db.execute(
            "INSERT INTO api_keys (id, name, scope, salt, hash, created_at, revoked_at) "
            "VALUES (?, ?, ?, ?, ?, ?, NULL)",
            [*key, stamp(created_at)],
        )
        detail = {"key_id": key.id, "name": key.name, "scope": key.scope}
        append_audit(db.conn, author, created_at, [AuditEntry("key-create", detail=detail)])


def live_key(conn: sqlite3.Connection, key_id: str) -> StoredKey | None:
    """The key with this id, unless there is none or it was revoked."""
    row = conn.execute(
        "SELECT id, name, scope, salt, hash FROM api_keys WHERE id = ? AND revoked_at IS NULL",
        [key_id],
    ).fetchone()
    return None if row is None else StoredKey(*row)


def mark_key_revoked(
    db: sqlite_utils.Database, key_id: str, revoked_at: datetime.datetime, author: Author
) -> bool:
    """Revoke a live key, and audit it; False if there is no live key with this id."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            [stamp(revoked_at), key_id],
        )
        if cursor.rowcount != 1:
            return False
        entry = AuditEntry("key-revoke", detail={"key_id": key_id})
        append_audit(db.conn, author, revoked_at, [entry])
    return True


def key_listings(conn: sqlite3.Connection) -> list[KeyListing]:
    """Every key, revoked ones included, oldest first."""
    return [
        KeyListing(*row)
        for row in conn.execute(
            "SELECT id, name, scope, created_at, revoked_at FROM api_keys ORDER BY created_at"
        )
    ]


def create_key(db: sqlite_utils.Database, name: str, scope: str) -> str:
    """Store a new key's hash and return the key itself, which is not kept."""
    stored, key = new_key(name, scope)
    insert_key(db, stored, _now(), command_author())
    return key


def revoke_key(db: sqlite_utils.Database, key_id: str) -> bool:
    """Revoke a key by its id; False if there is no such live key."""
    return mark_key_revoked(db, key_id, _now(), command_author())


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
