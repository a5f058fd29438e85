"""Writes through the API: each is audited, and a POST's answer is kept for replay."""

import datetime
import sqlite3
from typing import Any

import sqlite_utils

from api.store import (
    Answer,
    Author,
    IdempotencyKeyReused,
    IdempotentRequest,
    IdsTaken,
    NotTheOwner,
    SharedRecordsDiffer,
)
from api.store.dialect import Executes
from api.store.sqlite.audit import AuditEntry, append_audit, stamp
from api.store.sqlite.layout import placeholders
from api.store.sqlite.writes import delete_events, event_documents, taken_ids, write_events


def check_owner(conn: Executes, event_id: str, key_id: str, admin: bool) -> None:
    """Raise NotTheOwner unless the key with this id may change the event: an admin
    key may change any, a write key only those it created."""
    if admin:
        return
    owner = event_owner(conn, event_id)
    if owner != key_id:
        raise NotTheOwner(event_id, owner)


def event_owner(conn: Executes, event_id: str) -> str | None:
    """The id of the API key that created the event, None for the curators' events
    (curated, imported, synthetic)."""
    row = conn.execute("SELECT key_id FROM event_owners WHERE event_id = ?", [event_id]).fetchone()
    return None if row is None else str(row[0])


# How long the answer to a POST sent with an Idempotency-Key is replayed: at least
# this long after it was given, a retry with the same key and body gets it again;
# after it, the key is new (docs/operations.md, "Idempotency keys"). A day, as
# Stripe keeps its keys: long enough for any client's retries.
IDEMPOTENCY_KEEP = datetime.timedelta(hours=24)
# Expired answers each POST deletes, oldest first: more than the one answer a POST
# may add, so that the table holds about a day of keyed POSTs, and a backlog (the
# answers kept forever before answers expired) drains as partners write.
IDEMPOTENCY_PURGE_BATCH = 10


_SHARED = {
    "locations": (
        "name",
        "admin1",
        "country",
        "country_code",
        "latitude",
        "longitude",
        "precision",
    ),
    "sources": ("title", "publisher", "url", "published", "reference"),
}


def check_shared_records(conn: Executes, events: list[dict[str, Any]]) -> None:
    """Raise SharedRecordsDiffer if these validated events describe a stored place or
    source, or one another's, with other values than it has. Partners' writes call
    it, on either engine (`conn`: Executes); the curated seed, which owns its places
    and sources, may change them."""
    differences, records = [], []
    for table, columns in _SHARED.items():
        sent: dict[str, dict[str, Any]] = {}
        for event in events:
            record = _shared_record(event, table)
            first = sent.setdefault(record["id"], record)
            differing = [column for column in columns if first[column] != record[column]]
            if differing:
                differences.append(
                    f"{table[:-1]} {record['id']!r} comes twice with other {', '.join(differing)}"
                )
                records.append(_conflict(table, record["id"], differing, "batch"))
        stored = conn.execute(
            f"SELECT id, {', '.join(columns)} FROM {table} WHERE id IN ({placeholders(sent)})",
            list(sent),
        ).fetchall()
        for record_id, *values in stored:
            changed = [
                (column, value)
                for column, value in zip(columns, values, strict=True)
                if sent[record_id][column] != value
            ]
            if changed:
                as_stored = ", ".join(f"{column} {value!r}" for column, value in changed)
                differences.append(f"{table[:-1]} {record_id!r} is stored with {as_stored}")
                records.append(
                    _conflict(table, record_id, [column for column, _ in changed], "stored")
                )
    if differences:
        raise SharedRecordsDiffer(differences, records)


def _conflict(table: str, record_id: str, fields: list[str], against: str) -> dict[str, Any]:
    """One entry of SharedRecordsDiffer.records."""
    return {"record": table[:-1], "id": record_id, "fields": fields, "against": against}


def _shared_record(event: dict[str, Any], table: str) -> dict[str, Any]:
    """The event's place or source as its table stores it."""
    if table == "locations":
        return dict(event["location"])
    return {**event["source"], "published": event["source"]["published"].isoformat()}


def create_events(
    db: sqlite_utils.Database,
    events: list[dict[str, Any]],
    author: Author,
    at: datetime.datetime,
    request: IdempotentRequest | None = None,
) -> tuple[Answer, bool]:
    """Create validated events for a POST, all or none, and audit each; returns the
    answer (201 and the created documents as `{"data": [...]}`) and False. A request
    whose Idempotency-Key was seen less than IDEMPOTENCY_KEEP before `at` writes
    nothing: its first answer and True. Every call purges a few expired answers.

    Raises IdsTaken if an id exists, existed or comes twice (nothing is written),
    and IdempotencyKeyReused if the key came with another body. The caller owns the
    transaction."""
    conn = db.conn
    purge_idempotent_requests(conn, at)
    if request is not None:
        replayed = _replayed_answer(conn, author, request, at)
        if replayed is not None:
            return replayed, True
    ids = [event["id"] for event in events]
    twice = {event_id for event_id in ids if ids.count(event_id) > 1}
    taken = set(taken_ids(conn, ids)) | twice
    if taken:
        raise IdsTaken(sorted(taken))
    check_shared_records(conn, events)
    write_events(db, events, at)
    documents = event_documents(conn, ids)
    conn.executemany(
        "INSERT INTO event_owners (event_id, key_id) VALUES (?, ?)",
        [(event_id, author.key_id) for event_id in ids],
    )
    append_audit(conn, author, at, [AuditEntry("create", i, None, documents[i]) for i in ids])
    answer = Answer(201, b'{"data":[' + b",".join(documents[i].encode() for i in ids) + b"]}")
    if request is not None:
        conn.execute(
            "INSERT INTO idempotent_requests "
            "(key_id, idempotency_key, request_digest, status, body, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [author.key_id, request.key, request.content_digest, *answer, stamp(at)],
        )
    return answer, False


def _replayed_answer(
    conn: sqlite3.Connection, author: Author, request: IdempotentRequest, at: datetime.datetime
) -> Answer | None:
    """The answer kept for this key, if it was given less than IDEMPOTENCY_KEEP ago;
    an expired one is deleted, so that the key is new. Raises IdempotencyKeyReused if
    the key came with another body."""
    row = conn.execute(
        "SELECT request_digest, status, body, created_at FROM idempotent_requests "
        "WHERE key_id = ? AND idempotency_key = ?",
        [author.key_id, request.key],
    ).fetchone()
    if row is None:
        return None
    digest, status, body, created_at = row
    if created_at < stamp(at - IDEMPOTENCY_KEEP):
        conn.execute(
            "DELETE FROM idempotent_requests WHERE key_id = ? AND idempotency_key = ?",
            [author.key_id, request.key],
        )
        return None
    # Answers kept before digests were taken of the parsed body hold the SHA-256 of
    # the bytes sent: the same bytes are the same request. (A content digest never
    # equals the SHA-256 of other content's bytes, so this replays nothing else;
    # those answers expire IDEMPOTENCY_KEEP after the upgrade.)
    if digest not in (request.content_digest, request.body_digest):
        raise IdempotencyKeyReused(request.key)
    return Answer(status, body)


def purge_idempotent_requests(
    conn: sqlite3.Connection, at: datetime.datetime, limit: int = IDEMPOTENCY_PURGE_BATCH
) -> int:
    """Delete up to `limit` answers given more than IDEMPOTENCY_KEEP before `at`,
    oldest first (one walk of idempotent_requests_created from its start: a seek when
    none has expired); returns how many. In the caller's transaction."""
    return conn.execute(
        "DELETE FROM idempotent_requests WHERE rowid IN (SELECT rowid FROM "
        "idempotent_requests WHERE created_at < ? ORDER BY created_at LIMIT ?)",
        [stamp(at - IDEMPOTENCY_KEEP), limit],
    ).rowcount


def update_event(
    db: sqlite_utils.Database,
    event: dict[str, Any],
    before: str,
    author: Author,
    at: datetime.datetime,
) -> str:
    """Replace a validated event whose stored document is `before`, and audit the
    change; returns its document now (`before` if nothing changed, which is neither
    written nor audited). Raises SharedRecordsDiffer if it would change a shared place
    or source. The caller owns the transaction."""
    check_shared_records(db.conn, [event])
    if not write_events(db, [event], at):
        return before
    after = event_documents(db.conn, [event["id"]])[event["id"]]
    append_audit(db.conn, author, at, [AuditEntry("update", event["id"], before, after)])
    return after


def delete_event(
    db: sqlite_utils.Database, event_id: str, before: str, author: Author, at: datetime.datetime
) -> None:
    """Delete an event whose stored document is `before` (see delete_events), and
    audit it. The caller owns the transaction."""
    delete_events(db, [event_id], at)
    # A deleted id is never created again through the API; only the curated seed may
    # bring it back (--restore), as a curated event.
    db.conn.execute("DELETE FROM event_owners WHERE event_id = ?", [event_id])
    append_audit(db.conn, author, at, [AuditEntry("delete", event_id, before, None)])
