"""API keys: created once, shown once, stored only as a salted SHA-256 hash.

A key reads `salvo_<key id>_<secret>`. The id finds the stored row; the secret,
256 random bits, is checked against SHA-256(salt + secret). A fast hash is enough
for secrets of that entropy (no one guesses them), and keeps verification cheap on
every request. Revocation takes effect at once: nothing is cached.
"""

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from api.store import StoredKey

# read: GET only; write: also create events, and change or delete those the key
# created; admin: also change or delete any event, the curators' included.
SCOPES = ("read", "write", "admin")
WRITE_SCOPES = frozenset({"write", "admin"})
_KEY = re.compile(r"salvo_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scope: str


def new_key(name: str, scope: str) -> tuple[StoredKey, str]:
    """A new key: what the store keeps of it (its hash), and the key itself, which
    is shown once and not kept."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_bytes(16)
    return StoredKey(key_id, name, scope, salt, _hash(salt, secret)), f"salvo_{key_id}_{secret}"


def well_formed(key: str) -> tuple[str, str] | None:
    """The key's id and secret, or None if it cannot be a key: checked before any
    database lookup, so that malformed keys cost none."""
    match = _KEY.fullmatch(key)
    return None if match is None else (match[1], match[2])


def verify_key(live_key: Callable[[str], StoredKey | None], key: str) -> ApiKey | None:
    """The live key this is (looked up by `live_key`, a store's), or None for a
    malformed, unknown, wrong or revoked one."""
    parts = well_formed(key)
    if parts is None:
        return None
    key_id, secret = parts
    stored = live_key(key_id)
    if stored is None or not hmac.compare_digest(_hash(stored.salt, secret), stored.hash):
        return None
    return ApiKey(stored.id, stored.name, stored.scope)


def _hash(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()
