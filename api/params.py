"""The request parser: the one place that reads a request's parameters and body.

flask-smorest's `arguments` decorator runs it (as webargs' parser) for every
operation: the query string is parsed once, as UTF-8, into the shape a schema
loads (a list for a list-valued parameter, one value otherwise), and loaded with
marshmallow's own `load`; a JSON body likewise. Whatever is refused, every
refused parameter or field is named in one problem: a 400 for the query string,
a 422 for the body.
"""

import functools
from typing import Any, NoReturn
from urllib.parse import parse_qsl, unquote_to_bytes

import flask
from marshmallow import Schema, ValidationError, fields, missing
from webargs.flaskparser import FlaskParser

from api.problems import invalid_body, invalid_parameters
from schemas.fields import flatten_messages
from schemas.query import QuerySchema, QueryString

_LOCATION_NAMES = {"query": "query", "json": "body", "headers": "header", "view_args": "path"}


class RequestParser(FlaskParser):
    """webargs' Flask parser with Salvo's query-string reading and problem details."""

    # None defers to each schema's Meta.unknown, which is RAISE for every schema here.
    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = dict.fromkeys(
        FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION
    )

    def parse(
        self,
        argmap: Any,
        req: Any = None,
        *,
        location: str | None = None,
        error_status_code: int | None = None,
        error_headers: Any = None,
        **kwargs: Any,
    ) -> Any:
        """As webargs parses, but a query string goes straight to marshmallow's load
        of its schema, narrowed (marshmallow's `only`) to the parameters given and
        those with defaults: webargs' location machinery and a load visiting all 19
        fields of /events for the 4 a page typically gives cost ~40 µs of a ~700 µs
        page (bench/params.py measures it)."""
        if location != "query" or not isinstance(argmap, QuerySchema):
            return super().parse(
                argmap,
                req,
                location=location,
                error_status_code=error_status_code,
                error_headers=error_headers,
                **kwargs,
            )
        request = flask.request
        data = self.load_querystring(request, argmap)
        try:
            return _narrowed(argmap, frozenset(data)).load(data)
        except ValidationError as error:
            self.handle_error(
                ValidationError({"query": error.messages}),
                request,
                argmap,
                error_status_code=error_status_code,
                error_headers=error_headers,
            )

    def load_querystring(self, req: flask.Request, schema: Schema) -> QueryString:
        given: dict[str, list[str]] = {}
        for name, value in query_pairs(req.query_string):
            given.setdefault(name, []).append(value)
        values: dict[str, Any] = {}
        repeated = set()
        for name, sent in given.items():
            if isinstance(schema.fields.get(name), fields.List):
                values[name] = sent
            else:
                values[name] = sent[0]
                if len(sent) > 1:
                    repeated.add(name)
        # The schema refuses the repeated ones (schemas.query.QuerySchema) together
        # with whatever else it refuses.
        return QueryString(values, frozenset(repeated))

    def handle_error(
        self,
        error: ValidationError,
        req: flask.Request,
        schema: Schema,
        *,
        error_status_code: int | None,
        error_headers: Any,
    ) -> NoReturn:
        params = []
        for location, messages in error.normalized_messages().items():
            params += _refused(messages, _LOCATION_NAMES.get(location, location), schema)
        if all(param["in"] == "query" for param in params):
            raise invalid_parameters(params)
        raise invalid_body(params)


def query_pairs(query_string: bytes) -> list[tuple[str, str]]:
    """The (name, value) pairs of a query string, percent-decoded as UTF-8; a 400
    naming every parameter that is not UTF-8. (werkzeug's request.args fails with a
    500 on raw non-UTF-8 bytes, and keeps bad percent-escapes as text.)"""
    try:
        return parse_qsl(query_string.decode(), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        pass
    refused = []
    for pair in query_string.split(b"&"):
        try:
            parse_qsl(pair.decode(), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            name = unquote_to_bytes(pair.partition(b"=")[0].replace(b"+", b" "))
            refused.append(
                {
                    "name": name.decode(errors="replace"),
                    "in": "query",
                    "reason": "Not UTF-8 text: percent-encode the UTF-8 bytes (RFC 3986).",
                }
            )
    raise invalid_parameters(refused)


def sent_parameters() -> set[str]:
    """The names of the query parameters the client sent (defaults excluded)."""
    return {name for name, _ in query_pairs(flask.request.query_string)}


def _narrowed(schema: QuerySchema, given: frozenset[str]) -> QuerySchema:
    """`schema` loading only the given parameters and those with defaults; the whole
    schema when one is unknown, so that its error lists every parameter it takes."""
    if not given <= schema.fields.keys():
        return schema
    return _narrow(type(schema), given)


@functools.lru_cache(maxsize=256)
def _narrow(schema: type[QuerySchema], given: frozenset[str]) -> QuerySchema:
    whole = schema()
    defaulted = {name for name, field in whole.fields.items() if field.load_default is not missing}
    return schema(only=given | defaulted)


def _refused(messages: Any, location: str, schema: Schema) -> list[dict[str, str]]:
    """Validation messages as RFC 9457 invalid_params entries."""
    params = []
    for name, reason in flatten_messages(messages):
        if reason == "Unknown field.":
            known = ", ".join(sorted(schema.fields)) or "none"
            reason = f"Unknown parameter. This endpoint takes: {known}."
        params.append({"name": name, "in": location, "reason": reason})
    return params
