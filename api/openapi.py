"""flask-smorest wired for Salvo: operations documented from their schemas, parsed by
api.params, and every error response documented as problem+json."""

import copy
import http
from typing import Any

import click
import flask
import flask_smorest
from apispec import BasePlugin
from flask.cli import with_appcontext
from marshmallow import Schema

from api.examples import ExampleDocs, write_examples
from api.params import RequestParser
from api.problems import PROBLEM_CONTENT_TYPE
from api.store import POSITION_PATTERN
from schemas.query import QuerySchema
from schemas.responses import AnyOf, ProblemSchema


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = RequestParser()


# The spec-level parts of the contract, for generated clients and linters (Redocly's
# recommended rules want all three).
# The first server is relative: the interactive docs ("Try it out") then call the
# server that served them, on whatever host and port. The second is absolute for
# generators that take `servers` as the client's default base URL (openapi-generator,
# Orval) and cannot resolve a relative one; openapi-python-client and
# openapi-typescript ask for the base URL anyway.
# Reads are open to everyone and a key only raises the caller's rate limit, so the
# spec's default is no security (`[]`, which Redocly's security-defined rule takes as
# "public on purpose"). An optional key (`[{}, {"bearer": []}]`) made Swagger UI draw
# its padlock on every read, which told readers that reads need one. Writes override
# it with WRITE_SECURITY; the bearer scheme's description says a read may send a key.
# It is the spec's default rather than each read's own, because openapi-python-client
# 0.29 makes any operation with a non-empty `security` of its own demand an
# AuthenticatedClient (its issue #1372).
_CONTRACT: dict[str, Any] = {
    "info": {"license": {"name": "MIT", "url": "https://opensource.org/licenses/MIT"}},
    "servers": [
        {"url": "/", "description": "The server this document was fetched from."},
        {"url": "http://127.0.0.1:8000", "description": "`make run` on this machine."},
    ],
    "security": [],
}
WRITE_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


class ProblemDetails(BasePlugin):
    """Documents the error responses flask-smorest registers (every one a component
    response; success responses are written inline) as RFC 9457
    application/problem+json rather than plain JSON, and the 429's headers."""

    def response_helper(self, response: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        content = response.get("content", {})
        if "application/json" in content:
            response["content"] = {PROBLEM_CONTENT_TYPE: content["application/json"]}
        description = response.get("description")
        if description == http.HTTPStatus.TOO_MANY_REQUESTS.phrase:
            response["headers"] = _RATE_LIMIT_HEADERS
        if description in _TYPED_RESPONSES:
            response["description"] = f"{description}: {_TYPED_RESPONSES[description]}"
        return response


# The error responses whose problems have types of their own (api/problems.py), and
# the extension members each carries: generated clients show these descriptions.
_TYPED_RESPONSES = {
    http.HTTPStatus.CONFLICT.phrase: "a POST named an id that an event has, had or "
    "that comes twice (`/problems/id-taken`, the ids in `conflicting_ids`), or a write "
    "would change a place or source for every event naming it "
    "(`/problems/shared-record-conflict`, the records in `conflicting_records`).",
    http.HTTPStatus.GONE.phrase: "the event was deleted (`/problems/event-deleted`, with "
    "`event_id` and `deleted_at`).",
    http.HTTPStatus.PRECONDITION_FAILED.phrase: "the event changed since it was read "
    "(`/problems/precondition-failed`, its ETag now in `current_etag`).",
    http.HTTPStatus.UNPROCESSABLE_ENTITY.phrase: "the body does not validate "
    "(`/problems/invalid-body`, each refused field in `invalid_params`), or an "
    "Idempotency-Key came back with another body (`/problems/idempotency-key-reused`, "
    "the key in `idempotency_key`).",
}


class ReadPositions(BasePlugin):
    """Documents the `Salvo-Position` header every GET takes (api/db.py reads it
    before any view). A plugin rather than each operation's `parameters`: given to
    flask-smorest's doc, a list replaces the query parameters it documents."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        for method, operation in (operations or {}).items():
            if method == "get":
                # A copy each: one object shared would be written as a YAML alias.
                operation.setdefault("parameters", []).append(copy.deepcopy(POSITION))


# What a 429 (api/limits.py) carries, for clients that back off by it.
_RATE_LIMIT_HEADERS = {
    "Retry-After": {
        "description": "Seconds to wait before the limit lets another request through.",
        "schema": {"type": "integer", "minimum": 0},
    },
    **{
        f"RateLimit-{name}": {"description": description, "schema": {"type": "integer"}}
        for name, description in (
            ("Limit", "Requests allowed in the current window."),
            ("Remaining", "Requests left in the current window (0 here)."),
            ("Reset", "When the window ends, in seconds since the Unix epoch."),
        )
    },
}

# The request headers of writes (api/v1/event_writes.py), declared so that generated
# clients send them.
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "description": "The ETag of the event as you read it (GET /api/v1/events/{id}): a 412 "
    "says it changed since.",
    "schema": {"type": "string"},
}
# Visible ASCII, as the IETF draft's examples are (a UUID is 36 characters); 255 keeps
# a stored key small and leaves room for any key scheme.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,255}$"
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes a retry safe: the same key with the same body (the same JSON, "
    "whatever its key order or whitespace) replays the first answer instead of writing "
    "again, for 24 hours; after that the key is new. The same key with another body is a "
    "422 `/problems/idempotency-key-reused`. 1 to 255 visible ASCII characters, such as "
    "a UUID.",
    "schema": {
        "type": "string",
        "pattern": IDEMPOTENCY_KEY_PATTERN,
        "minLength": 1,
        "maxLength": 255,
    },
}


# Read-your-writes across a replica (api/db.py): the position every answer to a write
# (and /changes) carries, and that a read may send back.
POSITION = {
    "name": "Salvo-Position",
    "in": "header",
    "required": False,
    "description": "Where the database stood after your last write, as its answer's "
    "`Salvo-Position` header gave it: the read then sees that write, even where the "
    "server reads from a replica. Answers to writes also set it as the `salvo_position` "
    "cookie (30 s), which clients that keep cookies send back by themselves. A position "
    "looks like `0/3000148`; anything else is a 400 naming the header (or the cookie).",
    # No example: Swagger UI's "Try it out" would send it with every read.
    "schema": {"type": "string", "pattern": POSITION_PATTERN},
}
POSITION_HEADERS = {
    "Salvo-Position": {
        "description": "With a replica only: where the primary database stood after this "
        "answer was made. Send it back in the `Salvo-Position` header of your next reads to "
        "see every write up to it.",
        "schema": {"type": "string", "pattern": POSITION_PATTERN},
    }
}


def _null_only(self: Any, field: Any, ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """apispec writes a nullable nested object as anyOf its schema or `{type: object,
    nullable: true}`, which any object matches (`provenance: {}` was schema-valid, and
    a 422); the second branch is made to take null alone (with its type kept beside
    `nullable`, as OpenAPI 3.0 wants and Redocly checks)."""
    branches = ret.get("anyOf")
    if not branches:
        return {}
    return {
        "anyOf": [
            {**b, "enum": [None]} if b == {"type": "object", "nullable": True} else b
            for b in branches
        ]
    }


def _any_of(self: Any, field: Any, ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A field of several shapes (schemas.responses.AnyOf) as `anyOf` their
    components, each registered as any nested schema is."""
    if not isinstance(field, AnyOf):
        return {}
    return {"anyOf": [self.resolve_nested_schema(schema) for schema in field.schemas]}


class Api(flask_smorest.Api):
    """Documents every error response as RFC 9457 application/problem+json, adds the
    contract's license, servers and default security to the spec, and a real example
    to every operation (api.examples)."""

    ERROR_SCHEMA = ProblemSchema

    def __init__(
        self, app: flask.Flask | None = None, *, spec_kwargs: dict[str, Any] | None = None
    ) -> None:
        given = spec_kwargs or {}
        spec_kwargs = {
            **_CONTRACT,
            **given,
            "info": {**_CONTRACT["info"], **given.get("info", {})},
            "extra_plugins": [ProblemDetails(), ReadPositions(), ExampleDocs()],
        }
        super().__init__(app, spec_kwargs=spec_kwargs)

    def init_app(self, app: flask.Flask, *, spec_kwargs: dict[str, Any] | None = None) -> None:
        super().init_app(app, spec_kwargs=spec_kwargs)
        # Salvo pages with links.next and a Link header, not flask-smorest's
        # X-Pagination header, whose schema would sit unused in the spec.
        self.spec.components.schemas.pop("PaginationMetadata", None)
        self.ma_plugin.converter.add_attribute_function(_null_only)
        self.ma_plugin.converter.add_attribute_function(_any_of)
        app.cli.add_command(write_contract)
        app.cli.add_command(write_examples)
        self._rendered: dict[str, bytes] = {}

    def contract(self, kind: str) -> bytes:
        """The contract as `json` or `yaml`, rendered once per process: the spec is
        complete once the app serves, and rendering it costs 250-500 ms of CPU, which
        one client asking for it in a loop made everyone's wait."""
        rendered = self._rendered.get(kind)
        if rendered is None:
            if kind == "json":
                rendered = flask.json.dumps(self.spec.to_dict(), indent=2, sort_keys=False).encode()
            else:
                rendered = self.spec.to_yaml().encode()
            # Two threads may render it at once; either copy is the same.
            self._rendered[kind] = rendered
        return rendered

    def _openapi_json(self) -> flask.Response:
        return flask.Response(self.contract("json"), mimetype="application/json")


@click.command("contract")
@click.argument("output", type=click.File("w"))
@with_appcontext
def write_contract(output: Any) -> None:
    """Write the OpenAPI contract to OUTPUT as YAML, keys in the spec's own order.

    Not `flask openapi write --format=yaml`: it sorts the keys, which puts
    application/geo+json before application/json, and generated clients take the
    first media type of a response as the one to parse."""
    output.write(contract_api().contract("yaml").decode())


def contract_api() -> Api:
    """The app's Api, which holds the contract."""
    api: Api = flask.current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    return api


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
    primary: bool = False,
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
    clients therefore take as the default. `primary` for a read from the primary
    whose answer carries a position (the change feed); every read takes one
    (ReadPositions)."""

    def decorate(view: Any) -> Any:
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
        operation = blp.doc(operationId=operation_id, responses=responses)(view)
        for status in problems:
            operation = blp.alt_response(status, response=http.HTTPStatus(status).name)(operation)
        headers = {
            **_CACHE_HEADERS,
            **(_LINK_HEADER if paged else {}),
            **(POSITION_HEADERS if primary else {}),
        }
        operation = blp.response(200, response, headers=headers)(operation)
        operation = blp.arguments(args(), location="query", as_kwargs=False, error_status_code=400)(
            operation
        )
        return blp.get(rule)(operation)

    return decorate
