"""The README's examples print what it says, and it documents every parameter."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.store.filters import EventListArgs, LocationListArgs, StatsArgs

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
BASE = "http://127.0.0.1:8000"

EXAMPLES = re.findall(r"```console\n\$ curl -s '([^']+)'\n(.*?)```", README, re.S)
FILTER_EXAMPLES = re.findall(r"\| `([a-z0-9_]+=[^`]+)` \((\d+)\) \|$", README, re.M)


def test_the_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 5
    assert len(FILTER_EXAMPLES) >= 11


def without_timestamps(document: Any) -> Any:
    """updated_at is when the test database was seeded: the README shows its shape."""
    if isinstance(document, dict):
        return {
            k: "..." if k == "updated_at" else without_timestamps(v) for k, v in document.items()
        }
    if isinstance(document, list):
        return [without_timestamps(item) for item in document]
    return document


@pytest.mark.parametrize(("url", "output"), EXAMPLES, ids=[url for url, _ in EXAMPLES])
def test_example_output_is_real(client: FlaskClient, url: str, output: str) -> None:
    assert url.startswith(BASE)
    response = client.get(url.removeprefix(BASE), base_url=BASE)
    assert without_timestamps(response.get_json()) == without_timestamps(json.loads(output))


@pytest.mark.parametrize(("query", "count"), FILTER_EXAMPLES)
def test_filter_example_counts_are_real(client: FlaskClient, query: str, count: str) -> None:
    response = client.get(f"/api/v1/events?{query}&limit=1000")
    assert response.status_code == 200
    assert len(response.get_json()["data"]) == int(count)


@pytest.mark.parametrize("schema", [EventListArgs, StatsArgs, LocationListArgs])
def test_every_parameter_is_documented(schema: type) -> None:
    for name in schema().fields:
        assert f"`{name}`" in README, f"README does not document the {name} parameter"
