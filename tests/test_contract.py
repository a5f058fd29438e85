"""Schemathesis against the WSGI app: every operation of the committed openapi.yaml
(which test_openapi.py keeps equal to the served one), generated inputs, and the
default checks: no server errors; status codes, content types, headers and bodies
as the spec says."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import missing_required_header, positive_data_acceptance

from api import create_app
from api.db import close_store
from api.problems import IDEMPOTENCY_KEY_REUSED
from tests.engines import on_postgresql, rows, write_key
from tests.server import serving

SPEC = Path(__file__).resolve().parent.parent / "openapi.yaml"

# Loaded from the file at import: schemathesis's lazy fixture loader does not run on
# pytest 9, and the app arrives through the `app` fixture at call time instead.
contract = schemathesis.openapi.from_path(SPEC)
IDENTITY = {"Accept-Encoding": "identity"}


@contract.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_contract(case: schemathesis.Case, app: Flask) -> None:
    # positive_data_acceptance expects every schema-valid request to succeed, but
    # OpenAPI 3.0 cannot express the rules that tie parameters together (date_from
    # <= date_to, near with radius_km) or what an opaque cursor must hold, and the
    # API rightly answers those with a 400 problem. Every other default check runs,
    # negative_data_rejection included.
    # Schemathesis offers gzip but, over WSGI, reads the bytes undecoded; compression
    # has tests of its own (tests/test_server.py).
    case.call_and_validate(app=app, headers=IDENTITY, excluded_checks=[positive_data_acceptance])


# Pages narrowed by `fields` (tests/test_fields.py): their events are PartialEvents,
# which the generated cases above reach only by chance.
NARROWED = {
    "json": {"fields": ["event_type", "date"], "sort": "date", "limit": 5},
    "geojson": {"fields": ["location", "casualties"], "format": "geojson"},
    "only absent fields": {"fields": ["date_end", "provenance"]},
    "every field": {"fields": ["notes", "id", "updated_at", "acled", "source", "actors"]},
}


@pytest.mark.parametrize("query", NARROWED.values(), ids=list(NARROWED))
def test_narrowed_pages_keep_the_contract(query: dict[str, Any], app: Flask) -> None:
    case = contract["/api/v1/events"]["GET"].Case(query=query)
    response = case.call(app=app, headers=IDENTITY)
    assert response.status_code == 200, response.text
    case.validate_response(response, excluded_checks=[positive_data_acceptance])


@pytest.fixture(scope="module")
def writable(seeded_copy: Callable[[], str]) -> Iterator[tuple[Flask, str, str]]:
    """An app on a writable copy of the seeded database, a write key for it, and the
    database."""
    database = seeded_copy()
    key = write_key(database, "schemathesis", "write")
    app = create_app({"DATABASE": database, "TESTING": True, "RATE_LIMITS_ENABLED": False})
    yield app, key, database
    close_store(app)


@contract.include(method=["POST", "PATCH", "DELETE"]).parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_writes_with_a_key_keep_the_contract_and_the_data(
    case: schemathesis.Case, writable: tuple[Flask, str, str]
) -> None:
    app, key, database = writable
    # The ignored_auth check re-sends requests without and with a wrong key, through
    # the schema's own transport: it must reach the same app.
    case.operation.schema.app = app
    # PATCH and DELETE declare If-Match required; without it the answer is RFC 6585's
    # 428 Precondition Required (documented), where missing_required_header expects a 400.
    case.call_and_validate(
        app=app,
        headers={"Authorization": f"Bearer {key}", **IDENTITY},
        excluded_checks=[positive_data_acceptance, missing_required_header],
    )
    if not on_postgresql(database):
        # SQLite's own checks: its file's structure, and foreign keys, which it checks
        # only when asked (PostgreSQL enforces them at every statement).
        assert rows(database, "PRAGMA integrity_check") == [("ok",)]
        assert rows(database, "PRAGMA foreign_key_check") == []
    orphans = rows(
        database,
        "SELECT count(*) FROM events e LEFT JOIN event_documents d ON d.row_id = e.row_id "
        "WHERE d.row_id IS NULL",
    )
    assert orphans == [(0,)]


@pytest.fixture(scope="module")
def writable_server(
    writable: tuple[Flask, str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """The server as `make run` starts it, on the writable copy; its URL and write key."""
    _, key, database = writable
    log = tmp_path_factory.mktemp("contract") / "server.log"
    with serving(database, log, env={"SALVO_RATE_LIMITS": "off"}) as running:
        yield running.url, key


# The rules of an event that tie fields together, which OpenAPI 3.0 cannot express and
# the field descriptions state: a schema-valid event may break one, and is refused
# with a 422 naming it. Any other 422 is the contract promising what the server refuses.
CROSS_FIELD_RULES = (
    "A region-precise location must name its admin1.",
    "exceeds launched",
    "An exact figure has low = best = high.",
    "A lower bound has low = best and no high.",
    "An upper bound has high = best.",
    "exceeds best",
    "is below best",
    "date_end must be after date",
    "A month-precise date must be the first day of the month.",
    "A year-precise date must be 1 January.",
    "is not in reported_by.",
    "is not a sub-event type of ACLED's",
    "is the event type",
)


@contract.include(method="POST", path="/api/v1/events").parametrize()
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_schema_valid_events_are_accepted_by_the_real_server(
    case: schemathesis.Case, writable_server: tuple[str, str]
) -> None:
    # positive_data_acceptance, with the 422s of the cross-field rules told apart: a
    # generated event is created (201), or its id (or its place's or source's) is
    # taken (409), or it breaks one of CROSS_FIELD_RULES.
    url, key = writable_server
    if not case.meta or case.meta.generation.mode.name != "POSITIVE":
        return
    response = case.call(base_url=url, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code in (201, 409, 422), response.text
    if response.status_code == 422 and response.json()["type"] == IDEMPOTENCY_KEY_REUSED:
        return  # schemathesis sent one generated key with two bodies: the documented 422
    if response.status_code == 422:
        reasons = [p["reason"] for p in response.json()["invalid_params"]]
        assert all(any(rule in r for rule in CROSS_FIELD_RULES) for r in reasons), reasons
