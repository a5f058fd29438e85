"""JSON documents and responses, serialised with orjson."""

from typing import Any

import orjson
from flask import Response
from marshmallow import Schema


def render(document: Any, schema: Schema) -> bytes:
    """A document dumped through its response schema, as JSON bytes."""
    return orjson.dumps(schema.dump(document))


def json_response(body: bytes) -> Response:
    """A JSON response around an already rendered document."""
    return Response(body, content_type="application/json")
