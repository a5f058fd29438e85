"""Keyset cursors: their format, and how many items a page serves.

A cursor is the sort name and the (sort value, id) of the last row served,
base64url-encoded JSON. It is opaque to clients; the server checks its shape
and that it belongs to the sort being asked for.
"""

import base64
import binascii
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from api.store import InvalidParameters
from schemas.query import MAX_PAGE_BYTES

# SQLite's INTEGER range: a larger integer in a forged cursor would overflow when
# bound to a query (an error) instead of being refused.
_SQLITE_INTEGERS = range(-(2**63), 2**63)
_FOREIGN = "Not a cursor issued by this API; use links.next as given."


def items_within_bound(sizes: Iterable[int]) -> int:
    """How many of a page's items, of these sizes in bytes, it serves: all of them,
    or up to and including the one whose bytes pass MAX_PAGE_BYTES (so a page always
    holds one item, however large). The next page continues after the last served."""
    served = total = 0
    for size in sizes:
        served += 1
        total += size
        if total >= MAX_PAGE_BYTES:
            break
    return served


def encode_cursor(sort: str, key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([sort, *key])).rstrip(b"=").decode("ascii")


# What a `prev` cursor's sort name ends with: it pages back from the key it carries.
BEFORE = ":before"


def decode_page_cursor(
    token: str, sort: str, types: Sequence[type]
) -> tuple[tuple[Any, ...], bool]:
    """The key a `next` or `prev` cursor carries, and whether it pages backwards
    (a `prev` cursor: the rows before the key); InvalidParameters as decode_cursor."""
    values = _values(token)
    backwards = isinstance(values, list) and values[0:1] == [sort + BEFORE]
    return decode_cursor(token, sort + BEFORE if backwards else sort, types), backwards


def _values(token: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None


def decode_cursor(
    token: str, sort: str, types: Sequence[type], param: str = "cursor"
) -> tuple[Any, ...]:
    """The key a cursor carries; InvalidParameters naming `param` if it is not one of
    ours for `sort`."""
    values = _values(token)
    if (
        not isinstance(values, list)
        or len(values) != len(types) + 1
        or not isinstance(values[0], str)
    ):
        raise _invalid(param, _FOREIGN)
    if values[0] != sort:
        raise _invalid(param, f"This cursor continues sort={values[0]!r}, not sort={sort!r}.")
    key = tuple(values[1:])
    if not all(map(_sort_value, key, types)):
        raise _invalid(param, _FOREIGN)
    return key


def _sort_value(value: Any, expected: type) -> bool:
    """Whether a cursor's value could be one the API issued for a column of `expected` type."""
    if value is None:
        return True
    # bool is an int subclass; a JSON true is no sort value.
    if not isinstance(value, expected) or isinstance(value, bool):
        return False
    # orjson refuses non-finite numbers (NaN, 1e400) as it parses; an integer can
    # still be too large for SQLite.
    return not isinstance(value, int) or value in _SQLITE_INTEGERS


def _invalid(param: str, reason: str) -> InvalidParameters:
    return InvalidParameters([{"name": param, "reason": reason}])
