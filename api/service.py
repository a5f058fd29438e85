"""Unversioned endpoints: the list of API versions and the health check."""

from typing import Any

from flask import Response, request

from api.db import get_db
from api.openapi import Blueprint, read_operation
from api.problems import API_VERSIONS
from api.render import json_response, render
from schemas.query import NoArgs
from schemas.responses import HealthSchema, VersionListSchema

blp = Blueprint("service", __name__, description="API versions and health.")
_VERSIONS = VersionListSchema()
_HEALTH = HealthSchema()


@read_operation(blp, "/api", operation_id="listVersions", args=NoArgs, response=VersionListSchema)
def list_versions(args: dict[str, Any]) -> Response:
    """List the API versions"""
    root = request.host_url.rstrip("/")
    data = [
        {
            "version": version,
            "status": "current",
            "url": f"{root}/api/{version}",
            "openapi": f"{root}/api/{version}/openapi.json",
        }
        for version in API_VERSIONS
    ]
    return json_response(render({"data": data}, _VERSIONS))


@read_operation(blp, "/healthz", operation_id="health", args=NoArgs, response=HealthSchema)
def health(args: dict[str, Any]) -> Response:
    """Check that the service can read its database"""
    (events,) = get_db().execute("SELECT count(*) FROM events").fetchone()
    return json_response(render({"status": "ok", "events": events}, _HEALTH))
