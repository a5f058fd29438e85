"""Schemathesis against the WSGI app: every operation of the committed openapi.yaml
(which test_openapi.py keeps equal to the served one), generated inputs, and the
default checks: no server errors; status codes, content types, headers and bodies
as the spec says."""

from pathlib import Path

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

SPEC = Path(__file__).resolve().parent.parent / "openapi.yaml"

# Loaded from the file at import: schemathesis's lazy fixture loader does not run on
# pytest 9, and the app arrives through the `app` fixture at call time instead.
contract = schemathesis.openapi.from_path(SPEC)


@contract.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_contract(case: schemathesis.Case, app: Flask) -> None:
    # positive_data_acceptance expects every schema-valid request to succeed, but
    # OpenAPI 3.0 cannot express the rules that tie parameters together (date_from
    # <= date_to, near with radius_km) or what an opaque cursor must hold, and the
    # API rightly answers those with a 400 problem. Every other default check runs,
    # negative_data_rejection included.
    case.call_and_validate(app=app, excluded_checks=[positive_data_acceptance])
