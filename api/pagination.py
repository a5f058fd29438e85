"""Keyset pagination: the cursor format, page links and the page envelope.

A cursor is the sort name and the (sort value, id) of the last row served,
base64url-encoded JSON. It is opaque to clients; the server checks its shape
and that it belongs to the sort being asked for.
"""

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote, unquote_plus

import orjson
from flask import Response, request

from api.problems import invalid_parameter
from schemas.query import MAX_PAGE_BYTES

# SQLite's INTEGER range: a larger integer in a forged cursor would overflow when
# bound to a query (a 500) instead of being refused.
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
    (a `prev` cursor: the rows before the key); a 400 as decode_cursor."""
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
    """The key a cursor carries; a 400 naming `param` if it is not one of ours for `sort`."""
    values = _values(token)
    if (
        not isinstance(values, list)
        or len(values) != len(types) + 1
        or not isinstance(values[0], str)
    ):
        raise invalid_parameter(param, _FOREIGN)
    if values[0] != sort:
        raise invalid_parameter(
            param, f"This cursor continues sort={values[0]!r}, not sort={sort!r}."
        )
    key = tuple(values[1:])
    if not all(map(_sort_value, key, types)):
        raise invalid_parameter(param, _FOREIGN)
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


def page_response(
    items: list[bytes],
    next_key: Sequence[Any] | None,
    sort: str,
    meta: dict[str, Any],
    *,
    param: str = "cursor",
    geojson: bool = False,
    digests: list[bytes] | None = None,
    beside: dict[str, Any] | None = None,
    with_prev: bool = False,
    prev_key: Sequence[Any] | None = None,
) -> Response:
    """A page of rendered items in the {data, links, meta} envelope, or for GeoJSON a
    FeatureCollection with links and meta as foreign members (RFC 7946 section 6.1);
    the next page is also in a Link header. `param` is the query parameter that
    carries the position (`cursor`, or `since` for /changes); `beside` holds members
    that go between the items and the links (the stats' `coarser`). A listing that
    pages backwards too (`with_prev`) has a `prev` link, to the page before
    `prev_key` (null without one), also sent in the Link header.

    With the items' stored digests the ETag is the hash of those and of the rest of
    the body, which identifies the bytes as well as hashing them would, for a
    fraction of the cost."""
    req = request._get_current_object()  # type: ignore[attr-defined]  # read five times: the proxy once
    # The query string as sent, but with any bytes a client left unencoded
    # percent-encoded, so that the links are URLs.
    query = quote(req.query_string, safe="/?:@!$&'()*+,;=%")
    # Assembled from the request's parts: werkzeug's request.url converts the whole
    # URL to an IRI, which measured a tenth of a page's serving time.
    base = f"{req.scheme}://{req.host}{quote(req.root_path + req.path)}"
    # The client's own query string, as sent, with the cursor replaced; a cursor is
    # base64url and needs no escaping.
    kept = [p for p in query.split("&") if p and unquote_plus(p.split("=")[0]) != param]

    def url(position: str) -> str:
        return f"{base}?{'&'.join([*kept, f'{param}={position}'])}"

    next_url = None if next_key is None else url(encode_cursor(sort, next_key))
    links = {"self": f"{base}?{query}" if query else base, "next": next_url}
    prev_url = None if prev_key is None else url(encode_cursor(sort + BEFORE, prev_key))
    if with_prev:
        links["prev"] = prev_url
    opening = b'{"type":"FeatureCollection","features":[' if geojson else b'{"data":['
    members = b"".join(
        b',"' + name.encode() + b'":' + orjson.dumps(value)
        for name, value in (beside or {}).items()
    )
    closing = b"".join(
        (
            b"]",
            members,
            b',"links":',
            orjson.dumps(links),
            b',"meta":',
            orjson.dumps({"count": len(items), **meta}),
            b"}",
        )
    )
    # A page is ~150 KB: it is copied once, by one join whose first and last items
    # carry the envelope. A second buffer that size (joining the items, then the
    # envelope around them) measured 40 µs, the allocator mapping fresh pages for it.
    framed = list(items) or [b""]
    framed[0] = opening + framed[0]
    framed[-1] += closing
    body = b",".join(framed)
    headers = []
    if digests is not None:
        validator = hashlib.sha1(b"".join((opening, *digests, closing)), usedforsecurity=False)
        headers.append(("ETag", f'"{validator.hexdigest()}"'))
    relations = [f'<{next_url}>; rel="next"'] if next_url is not None else []
    if prev_url is not None:
        relations.append(f'<{prev_url}>; rel="prev"')
    if relations:
        headers.append(("Link", ", ".join(relations)))
    content_type = "application/geo+json" if geojson else "application/json"
    return Response(body, headers=headers, content_type=content_type)
