"""The request parser: the one place that reads a request's parameters and body.

flask-smorest's `arguments` decorator runs it (as webargs' parser) for every
operation: the query string is parsed once, as UTF-8, into the shape a schema
loads (a list for a list-valued parameter, one value otherwise), and loaded with
marshmallow's own `load`; a JSON body likewise. Whatever is refused, every
refused parameter or field is named in one problem: a 400 for the query string,
a 422 for the body.

A body is read by `json_body` alone, for the parser and for PATCH's merge patch:
a media type other than the method takes is a 415, a body over the app's
MAX_CONTENT_LENGTH a 413 (refused from Content-Length before a byte is read, or
as soon as a chunked body passes it), and bytes that are not JSON, or JSON nested
deeper than MAX_JSON_DEPTH, a 400 saying where.
"""

import functools
from itertools import accumulate
from typing import Any, NoReturn
from urllib.parse import parse_qsl, unquote_to_bytes

import flask
import orjson
from marshmallow import Schema, ValidationError, fields, missing
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import RequestEntityTooLarge

from api.problems import Problem, invalid_body, invalid_parameters
from schemas.fields import flatten_messages
from schemas.query import QuerySchema, QueryString

_LOCATION_NAMES = {"query": "query", "json": "body", "headers": "header", "view_args": "path"}

# A body that cannot be read as JSON at all (a 400; one that is JSON but does not
# validate is /problems/invalid-body, a 422). Documented in docs/problems.md.
MALFORMED_BODY = "/problems/malformed-body"

# The one parameter every endpoint accepts and ignores: jQuery's `cache: false` (and
# other cache-busting clients) add `_=<timestamp>` to each GET. Any other parameter an
# endpoint does not take is a 400.
CACHE_BUSTER = "_"

# The media types each write method takes. A merge patch (RFC 7396) has a type of
# its own, but most clients send it as plain JSON.
BODY_TYPES = {
    "POST": ("application/json",),
    "PATCH": ("application/merge-patch+json", "application/json"),
}

# The deepest nesting of arrays and objects a body may have. A POST of events is 5
# deep ({"events": [{"casualties": {"killed": {...}}}]}); 32 leaves room for any
# shape the API may take, and refuses the 100,000-deep bodies that would exhaust
# the parser's recursion.
MAX_JSON_DEPTH = 32
_STEPS = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_MARKS = bytes(byte for byte in range(256) if byte not in b'"[]{}')


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

    def load_json(self, req: flask.Request, schema: Schema) -> Any:
        return json_body()

    def load_querystring(self, req: flask.Request, schema: Schema) -> QueryString:
        given: dict[str, list[str]] = {}
        for name, value in query_pairs(req.query_string):
            if name != CACHE_BUSTER:
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


def json_body() -> Any:
    """The request's body, parsed as JSON: a 415 naming the media types the method
    takes, a 413 for a body over MAX_CONTENT_LENGTH, a 400 naming the body for one
    nested too deep or not JSON (with the line and column where it broke)."""
    request = flask.request
    accepted = BODY_TYPES.get(request.method, ("application/json",))
    if request.mimetype not in accepted:
        sent = f"Content-Type {request.mimetype}" if request.mimetype else "no Content-Type"
        raise Problem(
            415,
            f"This request sent {sent}; send the body as {' or '.join(accepted)}.",
            invalid_params=[
                {"name": "Content-Type", "in": "header", "reason": f"Not {' or '.join(accepted)}."}
            ],
            # RFC 9110 section 15.5.16: say what is accepted (Accept-Patch is RFC 5789's).
            headers={f"Accept-{request.method.title()}": ", ".join(accepted)},
        )
    try:
        body = request.get_data(cache=True)
        # werkzeug stops reading a chunked body (no Content-Length) at the limit
        # without a word, as if it ended there; one more byte from the server's
        # stream (Granian terminates it) tells a longer body from one that did.
        if (
            request.content_length is None
            and len(body) == request.max_content_length
            and request.input_stream.read(1)
        ):
            raise RequestEntityTooLarge
    except RequestEntityTooLarge:
        limit = request.max_content_length or 0
        raise Problem(
            413,
            title="Content Too Large",  # RFC 9110's name for it; werkzeug keeps the old one
            detail=f"The body is over {limit:,} bytes, the most one request may send; "
            "send a large batch as several requests.",
            invalid_params=[{"name": "body", "in": "body", "reason": f"Over {limit:,} bytes."}],
        ) from None
    if _depth(body) > MAX_JSON_DEPTH:
        raise _malformed(f"Nested deeper than {MAX_JSON_DEPTH} arrays and objects.")
    if not body:
        raise _malformed("Empty: send a JSON object.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise _malformed(
            f"Not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}."
        ) from None


def _depth(body: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest, counted over its bytes
    before it is parsed (C-speed passes: ~10 ms for 1 MB). With escaped backslashes
    and then escaped quotes dropped, every quote left opens or closes a string; of
    the quotes and brackets kept, every other stretch between quotes is outside
    strings, where brackets nest."""
    marks = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_MARKS)
    outside = b"".join(marks.split(b'"')[::2])
    return max(accumulate(map(_STEPS.__getitem__, outside)), default=0)


def _malformed(reason: str) -> Problem:
    return Problem(
        400,
        f"body: {reason}",
        type=MALFORMED_BODY,
        title="Malformed request body",
        invalid_params=[{"name": "body", "in": "body", "reason": reason}],
    )


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


def chosen_format(args: dict[str, Any], media_types: dict[str, str]) -> str:
    """The `format` parameter, else the best match for the Accept header among
    `media_types` (format -> media type), else JSON; a 406 when nothing accepted is
    served."""
    if "format" in args:
        return str(args["format"])
    if "HTTP_ACCEPT" not in flask.request.environ:
        return "json"
    best = flask.request.accept_mimetypes.best_match(list(media_types.values()))
    if best is None:
        raise Problem(
            406,
            f"None of the accepted media types is served here; choose from "
            f"{', '.join(media_types.values())}, or use the format parameter.",
        )
    return next(name for name, media_type in media_types.items() if media_type == best)


def refuse_paging(chosen: str, rows: str) -> None:
    """A 400 naming `limit` and `cursor` if the client sent them with a format that
    gives every row at once."""
    refused = paging_refused(chosen, rows)
    if refused:
        raise invalid_parameters(refused)


def paging_refused(chosen: str, rows: str) -> list[dict[str, str]]:
    """What refuse_paging refuses, as invalid_params entries, for an endpoint that
    refuses more with them."""
    # `limit` has a default, so whether the client sent it is in the query string.
    sent = sent_parameters()
    return [
        {"name": name, "in": "query", "reason": f"A {chosen} export gives every "
         f"matching {rows}; it takes no limit or cursor."}
        for name in ("limit", "cursor")
        if name in sent
    ]  # fmt: skip


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
            reason = _unknown(schema, name, location)
        elif reason == "Invalid input type.":
            # marshmallow's words for a value that is not an object where a schema is.
            reason = "Not a JSON object."
        if not name and location == "body":
            # marshmallow refuses the body itself (not an object) under "_schema", no path.
            name = "body"
        params.append({"name": name, "in": location, "reason": reason})
    return params


# What a client that sends back a document it read (an event with `acled` and
# `updated_at`) is told about the fields the server sets.
READ_ONLY = "Read-only: the server sets it. Leave it out of what you send."


def _unknown(schema: Schema, name: str, location: str) -> str:
    """Why `name` is refused as unknown: a query parameter the endpoint does not
    take; in a body, a field the server sets (marshmallow refuses a dump_only field as
    unknown) or one the object at its path does not have."""
    if location != "body":
        known = ", ".join(sorted(schema.fields)) or "none"
        return f"Unknown parameter. This endpoint takes: {known}."
    *path, field_name = name.split(".")
    owner = _schema_at(schema, path)
    if owner is None:
        return "Unknown field."
    field = owner.fields.get(field_name)
    if field is not None and field.dump_only:
        return READ_ONLY
    known = ", ".join(sorted(n for n, f in owner.fields.items() if not f.dump_only)) or "none"
    return f"Unknown field. This object takes: {known}."


def _schema_at(schema: Schema, path: list[str]) -> Schema | None:
    """The schema of the object at a dotted body path (list indexes skipped), or None
    where the path leaves the schemas."""
    for part in path:
        if part.isdigit():
            continue
        field = schema.fields.get(part)
        if isinstance(field, fields.List):
            field = field.inner
        if not isinstance(field, fields.Nested) or not isinstance(field.schema, Schema):
            return None
        schema = field.schema
    return schema
