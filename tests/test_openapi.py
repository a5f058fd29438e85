"""The committed openapi.yaml is the contract the server keeps."""

from collections.abc import Iterator
from pathlib import Path

import yaml
from apispec import APISpec
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

COMMITTED = Path(__file__).resolve().parent.parent / "openapi.yaml"


def operations(spec: dict) -> Iterator[tuple[str, str, dict]]:
    """(path, method, operation) for every operation; a path's shared `parameters`
    sit beside its operations."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield path, method, operation


def spec(app: Flask) -> APISpec:
    with app.app_context():
        return app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec


def test_committed_spec_matches_the_code(app: Flask) -> None:
    committed = yaml.safe_load(COMMITTED.read_text())
    assert committed == spec(app).to_dict(), (
        "openapi.yaml is stale: run `make openapi` and commit it"
    )


def test_committed_spec_is_what_make_openapi_writes(app: Flask) -> None:
    # Text, not parsed YAML: key order is part of the contract (generated clients
    # take a response's first media type as its default), and dicts compare unordered.
    assert COMMITTED.read_text() == spec(app).to_yaml(), (
        "openapi.yaml is stale or sorted: run `make openapi` and commit it"
    )


def test_json_is_the_first_media_type_of_every_json_response() -> None:
    spec = yaml.safe_load(COMMITTED.read_text())  # PyYAML keeps the file's key order
    firsts = {}
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            media_types = list(response.get("content", {}))
            if "application/json" in media_types:
                firsts[(path, method, status)] = media_types[0]
    assert firsts[("/api/v1/events", "get", "200")] == "application/json"
    assert set(firsts.values()) == {"application/json"}


def test_the_served_spec_keeps_json_first(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    content = response.get_json()["paths"]["/api/v1/events"]["get"]["responses"]["200"]
    assert list(content["content"]) == [
        "application/json",
        "application/geo+json",
        "text/csv",
        "application/x-ndjson",
    ]


def test_every_operation_has_its_published_operation_id() -> None:
    # They are the method names of generated clients: renaming one breaks them.
    spec = yaml.safe_load(COMMITTED.read_text())
    operation_ids = {
        (method, path): operation["operationId"] for path, method, operation in operations(spec)
    }
    assert operation_ids == {
        ("get", "/"): "getLanding",
        ("get", "/api"): "listVersions",
        ("get", "/api/v1"): "getVersionIndex",
        ("get", "/healthz"): "health",
        ("get", "/readyz"): "ready",
        ("get", "/api/v1/events"): "listEvents",
        ("post", "/api/v1/events"): "createEvents",
        ("get", "/api/v1/events/{event_id}"): "getEvent",
        ("patch", "/api/v1/events/{event_id}"): "updateEvent",
        ("delete", "/api/v1/events/{event_id}"): "deleteEvent",
        ("get", "/api/v1/changes"): "listChanges",
        ("get", "/api/v1/locations"): "listLocations",
        ("get", "/api/v1/locations/{location_id}"): "getLocation",
        ("get", "/api/v1/sources"): "listSources",
        ("get", "/api/v1/sources/{source_id}"): "getSource",
        ("get", "/api/v1/event-types"): "listEventTypes",
        ("get", "/api/v1/stats"): "getStats",
    }


def test_the_spec_names_its_license_server_and_key_scheme() -> None:
    # The default security is the reads': none (writes override it, tested below).
    spec = yaml.safe_load(COMMITTED.read_text())
    assert spec["info"]["license"] == {
        "name": "MIT",
        "url": "https://opensource.org/licenses/MIT",
    }
    assert spec["servers"] == [
        {"url": "/", "description": "The server this document was fetched from."},
        {"url": "http://127.0.0.1:8000", "description": "`make run` on this machine."},
    ]
    assert spec["security"] == []
    assert spec["components"]["securitySchemes"]["bearer"]["type"] == "http"
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_spec_is_valid_openapi() -> None:
    validate(yaml.safe_load(COMMITTED.read_text()))


def test_the_served_spec_is_the_committed_one(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.get_json() == yaml.safe_load(COMMITTED.read_text())


def test_every_route_is_documented(app: Flask) -> None:
    spec_paths = set(yaml.safe_load(COMMITTED.read_text())["paths"])
    routes = {
        rule.rule.replace("<", "{").replace(">", "}")
        for rule in app.url_map.iter_rules()
        # The docs' page, assets and documents are not API operations.
        if rule.endpoint != "static" and not rule.endpoint.startswith(("api-docs.", "docs."))
    }
    assert routes == spec_paths


def test_every_operation_declares_its_errors_as_problem_details() -> None:
    spec = yaml.safe_load(COMMITTED.read_text())
    for path, method, operation in operations(spec):
        responses = operation["responses"]
        if method == "get":
            assert {"200", "304", "400", "default"} <= set(responses), (method, path)
            # Reads take the spec's default, no security (tested above): Swagger UI
            # then draws no padlock on them.
            assert "security" not in operation, path
        else:
            assert {"401", "403", "default"} <= set(responses), (method, path)
            assert operation["security"] == [{"bearer": []}]
        if "{" in path:
            assert "404" in responses, path
    for name in ("BAD_REQUEST", "NOT_FOUND", "DEFAULT_ERROR"):
        content = spec["components"]["responses"][name]["content"]
        assert content == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }


def test_try_it_out_fills_in_no_query_parameter() -> None:
    """Swagger UI's "Try it out" puts a parameter's example in its box, and Execute then
    sends it: a query parameter with an example runs a narrowed query nobody asked for.
    Path parameters keep theirs (a real id, so that Execute answers real data)."""
    spec = yaml.safe_load(COMMITTED.read_text())
    for path, method, operation in operations(spec):
        for parameter in [
            *spec["paths"][path].get("parameters", []),
            *operation.get("parameters", []),
        ]:
            if parameter["in"] == "query":
                shown = {"example", "examples"} & {*parameter, *parameter["schema"]}
                assert not shown, (method, path, parameter["name"])
