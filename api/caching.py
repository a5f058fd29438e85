"""What a response becomes on the wire: validators for successful reads (ETag,
Cache-Control), a content coding negotiated from Accept-Encoding (zstd, br or gzip,
by flask-compress), then the answer to If-None-Match. One hook does the three in
that order, so that every ETag names the bytes it is sent with (RFC 9110: a strong
validator differs per content coding) and a 304 is decided on that ETag."""

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from flask import Flask, Request, Response, g, request
from flask_compress import Compress

# Encoded bodies kept for reuse: a dashboard's pages are asked for again and again,
# and compressing a 128 KB page costs ~0.1 ms, a fifth of serving it (make bench,
# "Compression"). Bounded, least recently used out first.
ENCODED_CACHE_BYTES = 32 * 1024 * 1024
_UNCACHED = ""

# Media types worth compressing: Salvo's own and the docs' assets.
COMPRESSIBLE = [
    "application/json",
    "application/geo+json",
    "application/problem+json",
    "application/x-ndjson",
    "application/yaml",
    "text/csv",
    "text/html",
    "text/css",
    "text/javascript",
    "application/javascript",
]
COMPRESSION: dict[str, Any] = {
    # In order of preference when a client accepts several equally (browsers send
    # "gzip, deflate, br, zstd"): zstd is the cheapest per byte saved.
    "COMPRESS_ALGORITHM": ["zstd", "br", "gzip"],
    "COMPRESS_ALGORITHM_STREAMING": ["zstd", "br", "gzip"],
    # Fast levels: on a 128 KB page zstd 3 costs ~0.06 ms (to 6.7 KB), brotli 4
    # ~0.3 ms (6.0 KB), gzip 1 ~0.2 ms (9.0 KB); gzip 6 would cost 0.56 ms for 6.2 KB.
    "COMPRESS_ZSTD_LEVEL": 3,
    "COMPRESS_BR_LEVEL": 4,
    "COMPRESS_LEVEL": 1,
    # Below about a packet, compression saves no round trip and costs CPU.
    "COMPRESS_MIN_SIZE": 1024,
    "COMPRESS_MIMETYPES": COMPRESSIBLE,
    # Called from finish_response below, after the ETag exists and before the
    # conditional check, rather than as a hook of its own.
    "COMPRESS_REGISTER": False,
    "COMPRESS_EVALUATE_CONDITIONAL_REQUEST": False,
}


class EncodedBodies:
    """flask-compress's cache of encoded bodies, keyed by the coding and the strong
    ETag of the identity body. An ETag names exact bytes, so a hit is the encoding
    of the very body being sent; a body without one is never kept."""

    def __init__(self, max_bytes: int = ENCODED_CACHE_BYTES) -> None:
        self.max_bytes, self.size = max_bytes, 0
        self.entries: OrderedDict[str, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self.lock:
            value = self.entries.get(key)
            if value is not None:
                self.entries.move_to_end(key)
            return value

    def set(self, key: str, value: bytes) -> None:
        if key.endswith(f";{_UNCACHED}") or len(value) > self.max_bytes:
            return
        with self.lock:
            previous = self.entries.pop(key, None)
            self.size += len(value) - (len(previous) if previous is not None else 0)
            self.entries[key] = value
            while self.size > self.max_bytes:
                _, evicted = self.entries.popitem(last=False)
                self.size -= len(evicted)


def _identity_etag(request: Request) -> str:
    """The cache key flask-compress asks for: the identity body's ETag, which
    finish_response leaves on `g` for the responses it may keep."""
    return str(g.get("identity_etag", _UNCACHED))


def validators(etag: str) -> list[str]:
    """Every strong ETag a representation with identity ETag `etag` may be sent with:
    as it is, and with each content coding appended (as flask-compress writes them).
    A client may send back any of them in If-Match."""
    return [etag, *(f"{etag}:{coding}" for coding in COMPRESSION["COMPRESS_ALGORITHM"])]


def init_app(app: Flask) -> None:
    """Add the validators, compression and conditional requests to every response."""
    for name, value in COMPRESSION.items():
        app.config.setdefault(name, value)
    app.config.setdefault("COMPRESS_CACHE_BACKEND", EncodedBodies)
    app.config.setdefault("COMPRESS_CACHE_KEY", _identity_etag)
    compress = Compress(app)
    app.before_request(_accept_coded_validators)
    app.after_request(_finish_response(compress, app.config["CACHE_MAX_AGE"]))


# A strong ETag with the content coding flask-compress appended ("abc:zstd").
_CODED_ETAG = re.compile(r'"([^"]*):(?:{})"'.format("|".join(COMPRESSION["COMPRESS_ALGORITHM"])))


def _accept_coded_validators() -> None:
    """Let an If-None-Match naming a compressed answer's ETag ("abc:zstd") match the
    identity ETag ("abc") too. The files Flask sends (the explorer's, the docs') are
    checked by Flask before compression adds the suffix, so a browser revalidating
    them got the whole file again; the content is the same whatever its coding."""
    header = request.environ.get("HTTP_IF_NONE_MATCH")
    if header and ":" in header:
        identities = _CODED_ETAG.findall(header)
        if identities:
            extra = "".join(f', "{etag}"' for etag in identities)
            request.environ["HTTP_IF_NONE_MATCH"] = header + extra


def _finish_response(compress: Compress, max_age: int) -> Callable[[Response], Response]:
    cache_control = f"public, max-age={max_age}"

    def finish_response(response: Response) -> Response:
        cacheable = (
            response.status_code == 200
            and request.method in ("GET", "HEAD")
            and not response.is_streamed
        )
        if cacheable:
            # One pass over the names: werkzeug's `name in headers` raises and catches
            # an exception for every header that is absent.
            present = {name.lower() for name, _ in response.headers}
            if "cache-control" not in present:
                response.headers["Cache-Control"] = cache_control
            if "etag" not in present:
                digest = hashlib.sha1(response.get_data(), usedforsecurity=False)
                response.set_etag(digest.hexdigest())
        if "HTTP_ACCEPT_ENCODING" in request.environ:
            if cacheable:
                etag = response.headers.get("ETag", _UNCACHED)
                # A weak ETag names equivalent content, not these bytes.
                g.identity_etag = _UNCACHED if etag.startswith("W/") else etag
            # flask-compress replaces a streamed body (a file) with a generator over it,
            # which never closes the file: the response's close does.
            streamed_body = response.response if response.is_streamed else None
            if streamed_body is not None and hasattr(streamed_body, "close"):
                response.call_on_close(streamed_body.close)
            # Adds Vary: Accept-Encoding, and ":zstd" (etc.) to a strong ETag it encodes.
            response = compress.after_request(response)
        else:
            # Nothing to negotiate; a cache must still key on the header.
            response.vary.add("Accept-Encoding")
        # Only a revalidation pays for werkzeug's conditional handling; measured,
        # calling it on every read cost a fifth of a page's serving time.
        if cacheable and "HTTP_IF_NONE_MATCH" in request.environ:
            response.make_conditional(request)
        return response

    return finish_response
