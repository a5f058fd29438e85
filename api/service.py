"""Unversioned endpoints: the landing page, the list of API versions, each version's
index, and the health check."""

from typing import Any

from flask import Response, render_template, request

from api.db import readiness, store
from api.openapi import Blueprint, read_operation
from api.problems import API_VERSIONS
from api.render import json_response, render
from schemas.query import NoArgs
from schemas.responses import (
    HealthSchema,
    LandingSchema,
    ReadySchema,
    VersionIndexSchema,
    VersionListSchema,
)
from schemas.vocabulary import EVENT_TYPES, MUNITION_CATEGORIES

blp = Blueprint("service", __name__, description="The landing page, API versions and health.")
_LANDING = LandingSchema()
_VERSIONS = VersionListSchema()
_INDEX = VersionIndexSchema()
_ALIVE = render({"status": "ok"}, HealthSchema())
_READY = ReadySchema()

CURRENT_VERSION = API_VERSIONS[-1]
DESCRIPTION = (
    "Structured conflict events: missiles and drones launched and intercepted, "
    "casualties with their uncertainty, places with their precision, and the source "
    "of every figure."
)
# The resources of v1, in the order a newcomer meets them.
V1_RESOURCES = (
    ("events", "/events", "Conflict events, filtered and paged; also GeoJSON, CSV, NDJSON."),
    ("changes", "/changes", "Every created, changed and deleted event, to keep a copy in sync."),
    ("stats", "/stats", "Totals of events, munitions and casualties, optionally grouped."),
    ("locations", "/locations", "Places, with their event counts."),
    ("sources", "/sources", "The documents events were coded from."),
    ("event_types", "/event-types", "The event types and their ACLED mapping."),
)


# The explorer's page loads only its own files and calls only its own origin; Leaflet
# and uPlot style elements through the CSSOM, which style-src does not restrict.
EXPLORER_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _explorer_page(links: dict[str, str]) -> str:
    # What the data holds (the store reads it from the all-time rollup and the
    # indexes on events' date and updated_at): no endpoint answers "when did anything
    # last change" in one call, since the change feed is read oldest first.
    summary = store().summary()
    regions = summary.pop("regions")
    return render_template(
        "landing.html",
        description=DESCRIPTION,
        links=links,
        versions=API_VERSIONS,
        summary=summary,
        regions=regions,
        event_types=EVENT_TYPES,
        weapons=MUNITION_CATEGORIES,
    )


def _root() -> str:
    return request.host_url.rstrip("/")


def _service_links(root: str, version: str = CURRENT_VERSION) -> dict[str, str]:
    return {
        "docs": f"{root}/api/{version}/docs",
        "versions": f"{root}/api",
        "openapi": f"{root}/api/{version}/openapi.json",
        "openapi_yaml": f"{root}/api/{version}/openapi.yaml",
        "guide": f"{root}/guide",
    }


@read_operation(
    blp,
    "/",
    operation_id="getLanding",
    args=NoArgs,
    response=LandingSchema,
    alternatives={"text/html": {"type": "string", "description": "The same, as a page."}},
)
def landing(args: dict[str, Any]) -> Response:
    """What Salvo is, and links to its docs and documents

    A browser (which prefers `text/html`) gets the explorer: a summary of the data,
    filters, a map, a chart, a table and the API calls behind them; any other
    client JSON.
    """
    root = _root()
    links = _service_links(root)
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    if best == "text/html":
        response = Response(_explorer_page(links), content_type="text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = EXPLORER_CSP
    else:
        document = {
            "name": "Salvo",
            "description": DESCRIPTION,
            "current_version": CURRENT_VERSION,
            "links": links,
        }
        response = json_response(render(document, _LANDING))
    response.vary.add("Accept")
    return response


@read_operation(blp, "/api", operation_id="listVersions", args=NoArgs, response=VersionListSchema)
def list_versions(args: dict[str, Any]) -> Response:
    """List the API versions"""
    root = _root()
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


@read_operation(
    blp, "/api/v1", operation_id="getVersionIndex", args=NoArgs, response=VersionIndexSchema
)
def version_index(args: dict[str, Any]) -> Response:
    """List the resources of version 1"""
    root = _root()
    document = {
        "version": "v1",
        "status": "current",
        "resources": [
            {"name": name, "url": f"{root}/api/v1{path}", "description": description}
            for name, path, description in V1_RESOURCES
        ],
        "links": _service_links(root, "v1"),
    }
    return json_response(render(document, _INDEX))


@read_operation(blp, "/healthz", operation_id="health", args=NoArgs, response=HealthSchema)
def health(args: dict[str, Any]) -> Response:
    """Check that the process answers (liveness)"""
    response = json_response(_ALIVE)
    # A probe must see the process as it is now, never a cached answer.
    response.headers["Cache-Control"] = "no-store"
    return response


@read_operation(
    blp, "/readyz", operation_id="ready", args=NoArgs, response=ReadySchema, problems=(503,)
)
def ready(args: dict[str, Any]) -> Response:
    """Check that the instance can serve (readiness)

    The database file is at its path, can be read, has this version's layout, and
    has not been seen damaged (or reads cleanly again); otherwise a 503 problem says
    which.
    """
    response = json_response(render(readiness(), _READY))
    response.headers["Cache-Control"] = "no-store"
    return response
