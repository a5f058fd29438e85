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


def event_feature(event_id: str, longitude: float, latitude: float, body: bytes) -> bytes:
    """A GeoJSON Feature (RFC 7946) around an event's stored document: a Point at
    [longitude, latitude], the whole event as properties."""
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


def csv_lines(rows: Iterable[str], chunk: int = 1000) -> Iterator[bytes]:
    """The CSV export: the header, then each event's stored CSV line (escaped, should
    the database predate escaping), yielded in chunks of lines."""
    lines = [csv_header()]
    for row in rows:
        lines.append(escaped_line(row))
        if len(lines) >= chunk:
            yield "".join(lines).encode()
            lines = []
    yield "".join(lines).encode()


def ndjson_lines(documents: Iterable[bytes], chunk: int = 1000) -> Iterator[bytes]:
    """The NDJSON export: one stored document per line, yielded in chunks of lines."""
    lines: list[bytes] = []
    for document in documents:
        lines.append(document)
        if len(lines) == chunk:
            yield b"\n".join(lines) + b"\n"
            lines = []
    if lines:
        yield b"\n".join(lines) + b"\n"


def acled_csv_lines(documents: Iterable[bytes], chunk: int = 1000) -> Iterator[bytes]:
    """The ACLED-shaped export: ACLED's header, then each stored document as a row of
    ACLED's columns, yielded in chunks of lines."""
    lines = [acled_header()]
    for document in documents:
        lines.append(acled_line(orjson.loads(document)))
        if len(lines) >= chunk:
            yield "".join(lines).encode()
            lines = []
    yield "".join(lines).encode()
