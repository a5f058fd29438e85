"""flask-smorest wired for Salvo: strict query parsing and problem+json in the spec."""

import http
from typing import Any, NoReturn

import flask
import flask_smorest
from marshmallow import Schema, ValidationError, fields
from webargs.flaskparser import FlaskParser

from api.problems import PROBLEM_CONTENT_TYPE, invalid_body, invalid_parameters
from schemas.fields import flatten_messages
from schemas.responses import ProblemSchema

_LOCATION_NAMES = {"query": "query", "json": "body", "headers": "header", "view_args": "path"}


class StrictParser(FlaskParser):
    """Parses request parameters so that nothing a client sends is silently ignored:
    unknown parameters and repeated single-valued ones are errors, reported as one
    400 problem that names every refused parameter."""

    DEFAULT_VALIDATION_STATUS = 400
    # None defers to each schema's Meta.unknown, which is RAISE for every schema here.
    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = dict.fromkeys(
        FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION
    )

    def load_querystring(self, req: flask.Request, schema: Schema) -> dict[str, Any]:
        """The query string as a plain dict: a list for list-valued parameters, else the
        single value. (Plainer and faster than webargs' MultiDictProxy.)"""
        data: dict[str, Any] = {}
        repeated = {}
        for name, values in req.args.lists():
            if isinstance(schema.fields.get(name), fields.List):
                data[name] = values
            elif len(values) > 1:
                repeated[name] = ["Given more than once; this parameter takes one value."]
            else:
                data[name] = values[0]
        if repeated:
            raise ValidationError(repeated)
        return data

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
            for name, reason in flatten_messages(messages):
                if reason == "Unknown field.":
                    known = ", ".join(sorted(schema.fields)) or "none"
                    reason = f"Unknown parameter. This endpoint takes: {known}."
                params.append(
                    {"name": name, "in": _LOCATION_NAMES.get(location, location), "reason": reason}
                )
        # A body that does not validate is a 422; bad query parameters are a 400.
        raise invalid_body(params) if error_status_code == 422 else invalid_parameters(params)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()


class Api(flask_smorest.Api):
    """Documents every error response as RFC 9457 application/problem+json."""

    ERROR_SCHEMA = ProblemSchema

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
    args: type[Schema],
    response: type[Schema],
    paged: bool = False,
    problems: tuple[int, ...] = (),
    alternatives: dict[str, Any] | None = None,
) -> Any:
    """Route a GET operation with its query schema and every response it can give:
    200 (with ETag, and Link when paged), 304 on If-None-Match, 400 for bad
    parameters, the error statuses in `problems` (404 where it looks up one
    resource), and problem details otherwise.
    `alternatives` maps further media types of the 200 response to their schemas."""

    def decorate(view: Any) -> Any:
        # Documentation only: blp.doc adds no wrapper around the view, where each
        # alt_response would add one to every request.
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
        view = blp.doc(responses=responses)(view)
        for status in problems:
            view = blp.alt_response(status, response=http.HTTPStatus(status).name)(view)
        headers = {**_CACHE_HEADERS, **(_LINK_HEADER if paged else {})}
        view = blp.response(200, response, headers=headers)(view)
        # An instance, not the class: webargs would build a schema per request.
        view = blp.arguments(args(), location="query", as_kwargs=False)(view)
        return blp.get(rule)(view)

    return decorate
