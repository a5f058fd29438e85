"""Every operation of the contract shows a real request and what the server answers
to it on the seed data (api/examples.py)."""

import json

import yaml
from flask.testing import FlaskClient

from api.examples import EXAMPLES, PATH_EXAMPLES, RECORDED, comparable, record
from tests.test_openapi import COMMITTED, operations

SPEC = yaml.safe_load(COMMITTED.read_text())


def test_every_operation_shows_an_example_request_and_answer() -> None:
    for path, method, operation in operations(SPEC):
        assert "Example on the seed data:\n- `" in operation["description"], (method, path)
        if "requestBody" in operation:
            for content in operation["requestBody"]["content"].values():
                assert content["examples"], (method, path)
        for status, response in operation["responses"].items():
            if status.startswith("2") and "application/json" in response.get("content", {}):
                assert response["content"]["application/json"]["examples"], (method, path)


def test_every_path_parameter_has_a_real_id(client: FlaskClient) -> None:
    """Try it out fills a path parameter with its example: it must name data that is
    there, so that Execute answers 200."""
    for path, item in SPEC["paths"].items():
        for parameter in item.get("parameters", []):
            assert parameter["in"] == "path"
            assert parameter["example"] == PATH_EXAMPLES[parameter["name"]]
            url = path.replace("{" + parameter["name"] + "}", parameter["example"])
            assert client.get(url).status_code == 200, url


def test_the_examples_are_what_the_server_answers(fresh_database: str) -> None:
    """The example requests, sent again through the app on a fresh copy of the seed,
    get the answers the contract shows (but for what varies between seedings)."""
    answered = record(fresh_database)
    committed = json.loads(RECORDED.read_text())
    assert comparable(answered) == comparable(committed), (
        "api/examples.json is stale: run `make openapi` and commit it"
    )


def test_the_contract_shows_the_recorded_examples() -> None:
    recorded = json.loads(RECORDED.read_text())
    shown = {}
    for _, _, operation in operations(SPEC):
        for response in operation["responses"].values():
            for example in (
                response.get("content", {}).get("application/json", {}).get("examples", {}).values()
            ):
                shown[example["description"]] = example["value"]
    for example in EXAMPLES:
        (entry,) = [e for e in recorded[example.operation_id] if e["url"] == example.url]
        if "response" in entry:
            assert shown[f"`{example.method} {example.url}`"] == entry["response"]


def test_the_post_example_is_a_valid_event_of_the_seeds_kind() -> None:
    """Not a body generated from the schema (latitude 90, country "string"): the
    partners' guide's event, with a real place."""
    (post,) = json.loads(RECORDED.read_text())["createEvents"]
    (event,) = post["body"]["events"]
    assert event["location"]["country_code"] == "UA"
    assert (event["location"]["latitude"], event["location"]["longitude"]) == (46.4825, 30.7233)
    assert post["response"]["data"][0]["id"] == event["id"]


def test_volatile_fields_compare_equal() -> None:
    assert comparable({"updated_at": "2026-01-01T00:00:00Z"}) == {"updated_at": "..."}
    a = "http://127.0.0.1:8000/api/v1/changes?since=WyJjaGFuZ2VzIiwiNWMwZmZlZTBkMTVlYTVlNSIsMV0"
    b = "http://127.0.0.1:8000/api/v1/changes?since=WyJjaGFuZ2VzIiwiMDAwMDAwMDAwMDAwMDAwMCIsMV0"
    assert comparable(a) == comparable(b)
    c = "http://127.0.0.1:8000/api/v1/changes?since=WyJjaGFuZ2VzIiwiMDAwMDAwMDAwMDAwMDAwMCIsMl0"
    assert comparable(a) != comparable(c)
