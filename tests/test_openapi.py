"""The committed openapi.yaml is the contract the server keeps."""

from pathlib import Path

import yaml
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

COMMITTED = Path(__file__).resolve().parent.parent / "openapi.yaml"


def generated(app: Flask) -> dict:
    with app.app_context():
        return app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()


def test_committed_spec_matches_the_code(app: Flask) -> None:
    committed = yaml.safe_load(COMMITTED.read_text())
    assert committed == generated(app), "openapi.yaml is stale: run `make openapi` and commit it"


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
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            if method == "get":
                assert {"200", "304", "400", "default"} <= set(responses), (method, path)
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
