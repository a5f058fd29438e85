"""A real request and response for every operation of the contract, on the seed data.

EXAMPLES names each operation's requests; `flask --app api examples DB OUTPUT` (run by
`make openapi` on a freshly seeded database) sends them through the app, in order, and
writes what it answered to api/examples.json. The ExampleDocs plugin puts them in the
contract: the request in the operation's description and as the request body's
example, the answer as the success response's example. tests/test_examples.py sends
them again on a fresh seed and compares, so the contract shows what the server says.

What varies from one seeding to the next (VOLATILE) is compared as "...": the
instants Salvo stamps (`updated_at`, `changed_at`) and the change history's random
id inside `since` tokens.
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from apispec import BasePlugin
from flask.cli import with_appcontext
from flask.testing import FlaskClient

from api.config import PROJECT_ROOT
from api.store import open_store

RECORDED = Path(__file__).resolve().parent / "examples.json"
# Where `make run` serves: the links of the answers name it, as the README's do.
BASE_URL = "http://127.0.0.1:8000"
# The event the partners' guide posts (examples/new-events.json): a valid event in the
# seed's style, with an id the seed does not hold, so that POST answers 201.
NEW_EVENTS = PROJECT_ROOT / "examples" / "new-events.json"
NEW_EVENT = "ua-2024-06-01-example-odesa-drone-strike"
# Path parameters' examples: real ids of the seed, so that "Try it out" answers data.
PATH_EXAMPLES = {
    "event_id": "ua-2024-05-30-kharkiv-missile-strike",
    "location_id": "ua-kharkiv",
    "source_id": "article-2024-05-30-stoltenberg-easing-bans",
}
VOLATILE = ("updated_at", "changed_at")


@dataclass(frozen=True)
class Example:
    operation_id: str
    summary: str
    method: str
    # Path and query, as a reader would type them after the host.
    url: str
    status: int = 200
    body: Any = None
    # Sent as `Authorization: Bearer <a write key>`, and for PATCH and DELETE with the
    # `If-Match` of the event as read just before.
    authorized: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def _new_events() -> Any:
    return json.loads(NEW_EVENTS.read_text())


_EVENT = f"/api/v1/events/{PATH_EXAMPLES['event_id']}"
_CREATED = f"/api/v1/events/{NEW_EVENT}"

# In the order they are sent: the writes act on the event the POST creates.
EXAMPLES = (
    Example("getLanding", "The landing page's links, as JSON", "GET", "/"),
    Example("listVersions", "The API versions", "GET", "/api"),
    Example("getVersionIndex", "The resources of v1", "GET", "/api/v1"),
    Example("health", "The process answers", "GET", "/healthz"),
    Example("ready", "The database is readable", "GET", "/readyz"),
    Example(
        "listEvents",
        "Kharkiv Oblast's events, oldest first, two a page",
        "GET",
        "/api/v1/events?admin1=Kharkiv%20Oblast&sort=date&limit=2",
    ),
    Example(
        "listEvents",
        "The same page with only what a map needs (fields)",
        "GET",
        "/api/v1/events?admin1=Kharkiv%20Oblast&sort=date&limit=2&fields=event_type,date,location",
    ),
    Example("getEvent", "A missile strike on Kharkiv", "GET", _EVENT),
    Example("listChanges", "The first change of the feed", "GET", "/api/v1/changes?limit=1"),
    Example(
        "listLocations",
        "Places in Kharkiv Oblast",
        "GET",
        "/api/v1/locations?admin1=Kharkiv%20Oblast&limit=3",
    ),
    Example("getLocation", "Kharkiv, with its event count", "GET", "/api/v1/locations/ua-kharkiv"),
    Example("listSources", "The documents events were coded from", "GET", "/api/v1/sources"),
    Example(
        "getSource",
        "The article the seed was coded from",
        "GET",
        f"/api/v1/sources/{PATH_EXAMPLES['source_id']}",
    ),
    Example(
        "listEventTypes", "Every event type and its ACLED mapping", "GET", "/api/v1/event-types"
    ),
    Example(
        "getStats",
        "Missiles and drones launched and intercepted, by month",
        "GET",
        "/api/v1/stats?event_type=missile_strike,drone_strike,air_defense_interception"
        "&interval=month&date_from=2024-05-01&date_to=2024-06-30",
    ),
    Example(
        "createEvents",
        "A drone strike on Odesa (examples/new-events.json)",
        "POST",
        "/api/v1/events",
        status=201,
        body=_new_events(),
        authorized=True,
    ),
    Example(
        "updateEvent",
        "The POST example's event: five people injured, not three",
        "PATCH",
        _CREATED,
        body={"casualties": {"injured": {"best": 5, "low": 5, "qualifier": "at_least"}}},
        authorized=True,
        headers={"Content-Type": "application/merge-patch+json"},
    ),
    Example(
        "deleteEvent",
        "Delete the POST example's event",
        "DELETE",
        _CREATED,
        status=204,
        authorized=True,
    ),
)


def record(database: str) -> dict[str, list[dict[str, Any]]]:
    """Send EXAMPLES, in order, to an app on `database` (a SQLite path or a postgresql://
    URL, written to: give it a fresh copy of the seed), and return them with what it
    answered, by operation."""
    # Imported here: the app imports this module for its plugin.
    from api import create_app
    from api.db import close_store

    store = open_store(database)
    try:
        key = store.create_key("Example Newsroom", "write")
    finally:
        store.close()
    app = create_app({"DATABASE": database, "TESTING": True, "RATE_LIMITS_ENABLED": False})
    try:
        return _sent(app.test_client(), key)
    finally:
        close_store(app)


def _sent(client: FlaskClient, key: str) -> dict[str, list[dict[str, Any]]]:
    """EXAMPLES sent through `client`, the authorized ones with `key`, with what it
    answered, by operation."""
    recorded: dict[str, list[dict[str, Any]]] = {}
    for example in EXAMPLES:
        headers = dict(example.headers)
        if example.authorized:
            headers["Authorization"] = f"Bearer {key}"
        if example.method in ("PATCH", "DELETE"):
            headers["If-Match"] = client.get(example.url).headers["ETag"]
        response = client.open(
            example.url,
            method=example.method,
            base_url=BASE_URL,
            headers=headers,
            **({} if example.body is None else {"json": example.body}),
        )
        if response.status_code != example.status:
            raise click.ClickException(
                f"{example.method} {example.url} answered {response.status_code}, "
                f"not {example.status}: {response.get_data(as_text=True)}"
            )
        entry: dict[str, Any] = {
            "summary": example.summary,
            "method": example.method,
            "url": example.url,
            "status": example.status,
        }
        if example.body is not None:
            entry["body"] = example.body
        if response.is_json:
            entry["response"] = response.get_json()
        recorded.setdefault(example.operation_id, []).append(entry)
    return recorded


def comparable(document: Any) -> Any:
    """The document with what varies between seedings (VOLATILE fields, the history id
    in `since` tokens) replaced by "...", so that two recordings compare equal."""
    if isinstance(document, dict):
        return {k: "..." if k in VOLATILE else comparable(v) for k, v in document.items()}
    if isinstance(document, list):
        return [comparable(item) for item in document]
    if isinstance(document, str):
        return _TOKEN.sub(_without_history, document)
    return document


# A change token (api/v1/changes.py): base64url of ["changes", history id, seq].
_TOKEN = re.compile(r"WyJjaGFuZ2VzIi[A-Za-z0-9_-]+")


def _without_history(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        kind, _history, seq = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        return text
    return f"<{kind} token at {seq}>"


@click.command("examples")
@click.argument("database", type=click.Path(exists=True, dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def write_examples(database: str, output: Path) -> None:
    """Send every example request to DATABASE (a fresh seed, which it writes to) and
    write them with their answers to OUTPUT (api/examples.json). A path, not an open
    file: the app reads the examples it replaces as it starts. A file that differs
    only in what varies between seedings is left as it is, so that the contract
    changes only when an answer does."""
    recorded = record(database)
    if output.is_file() and comparable(json.loads(output.read_text())) == comparable(recorded):
        return
    output.write_text(json.dumps(recorded, indent=2, ensure_ascii=False) + "\n")


class ExampleDocs(BasePlugin):
    """Puts the recorded examples in the contract: each request in its operation's
    description and as its request body's example, each answer as its response's
    example, and a real id as each path parameter's example."""

    def __init__(self) -> None:
        self.recorded: dict[str, list[dict[str, Any]]] = (
            json.loads(RECORDED.read_text()) if RECORDED.is_file() else {}
        )

    def path_helper(
        self,
        path: str | None = None,
        operations: dict[Any, Any] | None = None,
        parameters: list[dict[Any, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        for parameter in parameters or []:
            if parameter.get("in") == "path" and parameter["name"] in PATH_EXAMPLES:
                parameter["example"] = PATH_EXAMPLES[parameter["name"]]

    def operation_helper(
        self, path: str | None = None, operations: dict[Any, Any] | None = None, **kwargs: Any
    ) -> None:
        for operation in (operations or {}).values():
            examples = self.recorded.get(operation.get("operationId", ""), [])
            if not examples:
                continue
            requests = "\n".join(f"- `{e['method']} {e['url']}`: {e['summary']}" for e in examples)
            described = operation.get("description", "").rstrip()
            operation["description"] = (
                f"{described}\n\nExample on the seed data:\n{requests}".lstrip()
            )
            for example in examples:
                name = _name(example["summary"])
                if "body" in example:
                    for content in operation["requestBody"]["content"].values():
                        content.setdefault("examples", {})[name] = {
                            "summary": example["summary"],
                            "value": example["body"],
                        }
                if "response" in example:
                    response = _status(operation["responses"], example["status"])
                    response["content"]["application/json"].setdefault("examples", {})[name] = {
                        "summary": example["summary"],
                        "description": f"`{example['method']} {example['url']}`",
                        "value": example["response"],
                    }


def _name(summary: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", summary.lower()).strip("-")


def _status(responses: dict[Any, Any], status: int) -> Any:
    """flask-smorest keys responses by int or str as they were declared."""
    return responses[status] if status in responses else responses[str(status)]
