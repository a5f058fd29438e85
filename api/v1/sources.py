"""GET /api/v1/sources and /api/v1/sources/{id}."""

from typing import Any

from flask import Response

from api.db import store
from api.openapi import Blueprint, read_operation
from api.pagination import page_response
from api.problems import Problem
from api.render import json_response, render
from schemas.query import NoArgs, PagingArgs
from schemas.responses import SourcePageSchema, SourceWithCountSchema

blp = Blueprint(
    "sources", __name__, url_prefix="/api/v1", description="Documents events were coded from."
)

_SOURCE = SourceWithCountSchema()


@read_operation(
    blp,
    "/sources",
    operation_id="listSources",
    args=PagingArgs,
    response=SourcePageSchema,
    paged=True,
)
def list_sources(args: dict[str, Any]) -> Response:
    """List sources with their event counts, ordered by id"""
    rows, next_key = store().sources(args)
    return page_response(
        [render(row, _SOURCE) for row in rows], next_key, "id", {"limit": args["limit"]}
    )


@read_operation(
    blp,
    "/sources/<source_id>",
    operation_id="getSource",
    args=NoArgs,
    response=SourceWithCountSchema,
    problems=(404,),
)
def get_source(args: dict[str, Any], source_id: str) -> Response:
    """Get one source with its event count"""
    row = store().source(source_id)
    if row is None:
        raise Problem(404, f"No source has id {source_id!r}.")
    return json_response(render(row, _SOURCE))
