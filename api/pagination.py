"""Page links and the page envelope of keyset pagination (cursors: api/store/cursors.py)."""

import hashlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, unquote_plus

import orjson
from flask import Response, request

from api.store.cursors import BEFORE, encode_cursor


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
