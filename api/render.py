"""Rendering: JSON documents and responses (serialised with orjson), GeoJSON
features, and the CSV and NDJSON exports."""

from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from flask import Response
from marshmallow import Schema

from schemas.acled_csv import acled_header, acled_line
from schemas.csv import csv_header, escaped_line


def render(document: Any, schema: Schema) -> bytes:
    """A document dumped through its response schema, as JSON bytes."""
    return orjson.dumps(schema.dump(document))


def json_response(body: bytes) -> Response:
    """A JSON response around an already rendered document."""
    return Response(body, content_type="application/json")


def projected(document: bytes, names: frozenset[str]) -> bytes:
    """A stored document narrowed to the members named (a sparse fieldset), in the
    document's own order, each value as the document holds it."""
    return orjson.dumps(
        {name: value for name, value in orjson.loads(document).items() if name in names}
    )


def event_feature(event_id: str, longitude: float, latitude: float, body: bytes) -> bytes:
    """A GeoJSON Feature (RFC 7946) around an event's stored document: a Point at
    [longitude, latitude], the event's document (whole, or projected) as properties."""
    return b"".join(
        (
            b'{"type":"Feature","id":',
            orjson.dumps(event_id),
            b',"geometry":{"type":"Point","coordinates":',
            orjson.dumps([longitude, latitude]),
            b'},"properties":',
            body,
            b"}",
        )
    )


# Bytes of an export per chunk handed to the server: small enough that a stalled
# reader leaves little in memory (the server queues a few chunks per response), large
# enough that a chunk costs one call, not one per line.
CHUNK_BYTES = 64 * 1024


def chunked(lines: Iterable[bytes]) -> Iterator[bytes]:
    """Lines joined into chunks of about CHUNK_BYTES (a chunk ends on a line's end)."""
    buffered: list[bytes] = []
    size = 0
    for line in lines:
        buffered.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield b"".join(buffered)
            buffered, size = [], 0
    if buffered:
        yield b"".join(buffered)


def csv_lines(rows: Iterable[str]) -> Iterator[bytes]:
    """The CSV export: the header, then each event's stored CSV line (escaped, should
    the database predate escaping)."""
    yield csv_header().encode()
    yield from chunked(escaped_line(row).encode() for row in rows)


def ndjson_lines(documents: Iterable[bytes]) -> Iterator[bytes]:
    """The NDJSON export: one stored document per line."""
    return chunked(document + b"\n" for document in documents)


def acled_csv_lines(documents: Iterable[bytes]) -> Iterator[bytes]:
    """The ACLED-shaped export: ACLED's header, then each stored document as a row of
    ACLED's columns."""
    yield acled_header().encode()
    yield from chunked(acled_line(orjson.loads(document)).encode() for document in documents)
