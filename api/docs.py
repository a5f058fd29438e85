"""What the interactive docs need beside flask-smorest's Swagger UI page: its assets,
served from the swagger-ui-bundle package so that the docs work with no internet,
the OpenAPI document as YAML, and the README (the partners' guide) as text."""

from pathlib import Path

import swagger_ui_bundle
from flask import Blueprint, Response, send_from_directory

from api.config import PROJECT_ROOT
from api.openapi import contract_api
from api.problems import Problem

blp = Blueprint("docs", __name__)
ASSETS = Path(swagger_ui_bundle.swagger_ui_path)
ASSETS_URL = "/api/v1/docs/assets/"
README = PROJECT_ROOT / "README.md"
# The assets change only with the package; a day is safe and spares revalidations.
ASSET_MAX_AGE = 86400


@blp.get(f"{ASSETS_URL}<path:filename>")
def asset(filename: str) -> Response:
    return send_from_directory(ASSETS, filename, max_age=ASSET_MAX_AGE)


@blp.get("/favicon.ico")
def favicon() -> Response:
    """No icon: an empty answer rather than a 404, which browsers log as an error."""
    response = Response(status=204)
    response.headers["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE}"
    return response


@blp.get("/api/v1/openapi.yaml")
def openapi_yaml() -> Response:
    return Response(contract_api().contract("yaml"), content_type="application/yaml; charset=utf-8")


@blp.get("/guide")
def guide() -> Response:
    if not README.is_file():
        raise Problem(404, "This installation has no README; read it with the source.")
    return Response(README.read_bytes(), content_type="text/plain; charset=utf-8")
