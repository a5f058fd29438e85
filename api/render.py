"""Rendering: JSON documents and responses (serialised with orjson), GeoJSON
features, and the CSV and NDJSON exports."""

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson
from flask import Response
from marshmallow import Schema

from schemas.csv import CSV_COLUMNS, csv_row


def render(document: Any, schema: Schema) -> bytes:
    """A document dumped through its response schema, as JSON bytes."""
    return orjson.dumps(schema.dump(document))


def json_response(body: bytes) -> Response:
    """A JSON response around an already rendered document."""
    return Response(body, content_type="application/json")


def event_feature(row: Mapping[str, Any]) -> bytes:
    """A GeoJSON Feature (RFC 7946) around an event's stored document: a Point at
    [longitude, latitude], the whole event as properties."""
    return b"".join(
        (
            b'{"type":"Feature","id":',
            orjson.dumps(row["id"]),
            b',"geometry":{"type":"Point","coordinates":',
            orjson.dumps([row["longitude"], row["latitude"]]),
            b'},"properties":',
            row["body"].encode(),
            b"}",
        )
    )


def csv_lines(rows: Iterable[Mapping[str, Any]], chunk: int = 1000) -> Iterator[bytes]:
    """The CSV export of event rows: a header, then one line per event, yielded in
    chunks of lines."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for count, row in enumerate(rows, start=1):
        writer.writerow(csv_row(orjson.loads(row["body"])))
        if count % chunk == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def ndjson_lines(rows: Iterable[Mapping[str, Any]], chunk: int = 1000) -> Iterator[bytes]:
    """The NDJSON export of event rows: one stored document per line."""
    lines: list[bytes] = []
    for row in rows:
        lines.append(row["body"].encode())
        if len(lines) == chunk:
            yield b"\n".join(lines) + b"\n"
            lines = []
    if lines:
        yield b"\n".join(lines) + b"\n"
