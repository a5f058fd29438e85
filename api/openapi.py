"""flask-smorest wired for Salvo: strict query parsing and problem+json in the spec."""

import functools
import http
from typing import Any, NoReturn
from urllib.parse import parse_qsl, unquote_to_bytes

import click
import flask
import flask_smorest
from flask.cli import with_appcontext
from marshmallow import Schema, ValidationError, fields, missing
from webargs.flaskparser import FlaskParser

from api.problems import PROBLEM_CONTENT_TYPE, invalid_body, invalid_parameters
from schemas.fields import flatten_messages
from schemas.query import QuerySchema
from schemas.responses import ProblemSchema

_LOCATION_NAMES = {"query": "query", "json": "body", "headers": "header", "view_args": "path"}


def query_args(schema: QuerySchema) -> dict[str, Any]:
    """The request's query string loaded through `schema`, so that nothing a client
    sends is silently ignored: unknown parameters and repeated single-valued ones are
    errors, reported as one 400 problem that names every refused parameter.

    Reads call this directly rather than through webargs: its location and wrapper
    layers cost as much again as the schema load (26 µs of a 390 µs page, measured)."""
    given: dict[str, list[str]] = {}
    for name, value in query_pairs(flask.request.query_string):
        given.setdefault(name, []).append(value)
    data: dict[str, Any] = {}
    repeated = {}
    for name, values in given.items():
        if isinstance(schema.fields.get(name), fields.List):
            data[name] = values
        elif len(values) > 1:
            repeated[name] = ["Given more than once; this parameter takes one value."]
        else:
            data[name] = values[0]
    if repeated:
        raise invalid_parameters(_refused(repeated, "query", schema))
    try:
        return load_given(schema, data)
    except ValidationError:
        pass  # marshmallow's own load names every error
    try:
        return schema.load(data)
    except ValidationError as error:
        raise invalid_parameters(_refused(error.normalized_messages(), "query", schema)) from None


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


def load_given(schema: QuerySchema, data: dict[str, Any]) -> dict[str, Any]:
    """What `schema.load(data)` returns, when it returns: each given parameter through
    its field (which runs the field's validators), the defaults of the others, then the
    schema's `check` and `finish`. marshmallow's load visits every field of the schema
    and its hook machinery, which measured twice the cost (16 µs for an empty query of
    the event filters); tests/test_query_args.py proves both load alike. Raises
    ValidationError, not necessarily marshmallow's, on any refusal."""
    schema_fields = schema.fields
    loaded = dict(_defaults(schema))
    for name, value in data.items():
        field = schema_fields.get(name)
        if field is None:
            raise ValidationError("Unknown field.", name)
        loaded[name] = field.deserialize(value, name, data)
    schema.check(loaded)
    return schema.finish(loaded)


@functools.cache
def _defaults(schema: Schema) -> dict[str, Any]:
    defaults = {
        name: field.load_default
        for name, field in schema.fields.items()
        if field.load_default is not missing
    }
    # Shared by every load, so a callable default (a fresh value per load) would be wrong.
    if any(callable(value) for value in defaults.values()):
        raise TypeError(f"{type(schema).__name__}: query defaults must be constants")
    return defaults


def _refused(messages: Any, location: str, schema: Schema) -> list[dict[str, str]]:
    """Validation messages as RFC 9457 invalid_params entries."""
    params = []
    for name, reason in flatten_messages(messages):
        if reason == "Unknown field.":
            known = ", ".join(sorted(schema.fields)) or "none"
            reason = f"Unknown parameter. This endpoint takes: {known}."
        params.append({"name": name, "in": location, "reason": reason})
    return params


class BodyParser(FlaskParser):
    """Parses JSON request bodies (the write operations) through their schemas and
    reports a body that does not validate as one 422 problem naming every field."""

    DEFAULT_VALIDATION_STATUS = 422
    # None defers to each schema's Meta.unknown, which is RAISE for every schema here.
    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = dict.fromkeys(
        FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION
    )

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
        raise invalid_body(params)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = BodyParser()


# The spec-level parts of the contract, for generated clients and linters (Redocly's
# recommended rules want all three).
# The first server is relative: the interactive docs ("Try it out") then call the
# server that served them, on whatever host and port. The second is absolute for
# generators that take `servers` as the client's default base URL (openapi-generator,
# Orval) and cannot resolve a relative one; openapi-python-client and
# openapi-typescript ask for the base URL anyway.
# Reads are open to everyone and a key only raises the caller's rate limit: the empty
# requirement says "no credentials". It is the spec's default rather than each read's
# own, because openapi-python-client 0.29 makes any operation with a `security` of
# its own demand an AuthenticatedClient, `{}` or not (its issue #1372); writes
# override it with WRITE_SECURITY.
_CONTRACT: dict[str, Any] = {
    "info": {"license": {"name": "MIT", "url": "https://opensource.org/licenses/MIT"}},
    "servers": [
        {"url": "/", "description": "The server this document was fetched from."},
        {"url": "http://127.0.0.1:8000", "description": "`make run` on this machine."},
    ],
    "security": [{}, {"bearer": []}],
}
WRITE_SECURITY = [{"bearer": []}]


class Api(flask_smorest.Api):
    """Documents every error response as RFC 9457 application/problem+json, and adds
    the contract's license, servers and default security to the spec."""

    ERROR_SCHEMA = ProblemSchema

    def __init__(
        self, app: flask.Flask | None = None, *, spec_kwargs: dict[str, Any] | None = None
    ) -> None:
        given = spec_kwargs or {}
        spec_kwargs = {
            **_CONTRACT,
            **given,
            "info": {**_CONTRACT["info"], **given.get("info", {})},
        }
        super().__init__(app, spec_kwargs=spec_kwargs)

    def init_app(self, app: flask.Flask, *, spec_kwargs: dict[str, Any] | None = None) -> None:
        super().init_app(app, spec_kwargs=spec_kwargs)
        app.cli.add_command(write_contract)

    def _register_pagination_header(self) -> None:
        """Nothing: Salvo pages with links.next and a Link header, not flask-smorest's
        X-Pagination header, whose schema would sit unused in the spec."""

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": self.ERROR_SCHEMA}}
            self.spec.components.response(status.name, response, lazy=True)
        self.spec.components.response(
            self.DEFAULT_ERROR_RESPONSE_NAME,
            {
                "description": "Any other error, as problem details (RFC 9457).",
                "content": {PROBLEM_CONTENT_TYPE: {"schema": self.ERROR_SCHEMA}},
            },
            lazy=True,
        )


@click.command("contract")
@click.argument("output", type=click.File("w"))
@with_appcontext
def write_contract(output: Any) -> None:
    """Write the OpenAPI contract to OUTPUT as YAML, keys in the spec's own order.

    Not `flask openapi write --format=yaml`: it sorts the keys, which puts
    application/geo+json before application/json, and generated clients take the
    first media type of a response as the one to parse."""
    api = flask.current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    output.write(api.spec.to_yaml())


_CACHE_HEADERS = {
    "ETag": {
        "description": "Validator of this representation; send it back in If-None-Match.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "How long the response may be reused.",
        "schema": {"type": "string"},
    },
}
_LINK_HEADER = {
    "Link": {
        "description": 'The next page as `<url>; rel="next"` (RFC 8288), absent on the last page.',
        "schema": {"type": "string"},
    }
}


def read_operation(
    blp: Blueprint,
    rule: str,
    *,
    operation_id: str,
    args: type[QuerySchema],
    response: type[Schema],
    paged: bool = False,
    problems: tuple[int, ...] = (),
    alternatives: dict[str, Any] | None = None,
) -> Any:
    """Route a GET operation with its query schema and every response it can give:
    200 (with ETag, and Link when paged), 304 on If-None-Match, 400 for bad
    parameters, the error statuses in `problems` (404 where it looks up one
    resource), and problem details otherwise. `operation_id` names the operation for
    generated clients (their method names), so it must not change once published.
    `alternatives` maps further media types of the 200 response to their schemas;
    flask-smorest puts them after `response`'s application/json, which generated
    clients therefore take as the default."""

    def decorate(view: Any) -> Any:
        # flask-smorest's decorators document the operation; at request time each
        # would add a wrapper, so the route runs `operation`, which carries their
        # documentation (_apidoc) and loads the query string itself.
        responses: dict[Any, Any] = {
            304: {"description": "Not modified: the If-None-Match ETag still holds."},
            401: "UNAUTHORIZED",
            429: "TOO_MANY_REQUESTS",
        }
        if alternatives:
            content = {
                media_type: {"schema": schema} for media_type, schema in alternatives.items()
            }
            responses[200] = {"content": content}
        documented = blp.doc(operationId=operation_id, responses=responses)(view)
        for status in problems:
            documented = blp.alt_response(status, response=http.HTTPStatus(status).name)(documented)
        headers = {**_CACHE_HEADERS, **(_LINK_HEADER if paged else {})}
        documented = blp.response(200, response, headers=headers)(documented)
        schema = args()
        documented = blp.arguments(
            schema, location="query", as_kwargs=False, error_status_code=400
        )(documented)

        @functools.wraps(view)
        def operation(**path: Any) -> Any:
            return view(query_args(schema), **path)

        operation._apidoc = documented._apidoc  # type: ignore[attr-defined]
        return blp.get(rule)(operation)

    return decorate
