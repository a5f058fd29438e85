"""Rendering: JSON documents and responses (serialised with orjson), GeoJSON
features, and the CSV and NDJSON exports."""

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson
from flask import Response
from marshmallow import Schema

from schemas.csv import csv_header


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
            row["body"],
            b"}",
        )
    )


def csv_lines(rows: Iterable[Mapping[str, Any]], chunk: int = 1000) -> Iterator[bytes]:
    """The CSV export of event rows: the header, then each event's stored CSV line,
    yielded in chunks of lines."""
    lines = [csv_header()]
    for row in rows:
        lines.append(row["csv"])
        if len(lines) >= chunk:
            yield "".join(lines).encode()
            lines = []
    yield "".join(lines).encode()


def ndjson_lines(rows: Iterable[Mapping[str, Any]], chunk: int = 1000) -> Iterator[bytes]:
    """The NDJSON export of event rows: one stored document per line."""
    lines: list[bytes] = []
    for row in rows:
        lines.append(row["body"])
        if len(lines) == chunk:
            yield b"\n".join(lines) + b"\n"
            lines = []
    if lines:
        yield b"\n".join(lines) + b"\n"
