"""Clients generated from openapi.yaml work: a Python client pages through a real
server, TypeScript types compile, and Redocly's recommended rules pass.

The npm tools run through npx, pinned, from npm's cache (~/.npm): the first run on a
machine downloads them, later runs start in seconds. Without npx those tests skip."""

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.engines import write_key
from tests.server import serving

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "openapi.yaml"
# Pinned, so that a new release of a tool cannot fail (or pass) the suite by itself.
OPENAPI_TYPESCRIPT = "openapi-typescript@7.13.0"
TYPESCRIPT = "typescript@5.9.3"  # openapi-typescript 7 declares TypeScript 5 as its peer
REDOCLY = "@redocly/cli@2.77.0"
NPX = shutil.which("npx")
needs_npx = pytest.mark.skipif(
    NPX is None, reason="needs node and npx on PATH (openapi-typescript, tsc, Redocly)"
)
SEEDED_EVENTS = 17


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server as `make run` starts it, serving the seeded database; its base URL."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with serving(database, log, env={"SALVO_RATE_LIMITS": "off"}) as running:
        yield running.url


@pytest.fixture(scope="module")
def salvo_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The Python client openapi-python-client generates from openapi.yaml, imported."""
    folder = tmp_path_factory.mktemp("generated")
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(CONTRACT),
            "--output-path",
            str(folder / "salvo_client"),
            "--meta",
            "none",
            "--fail-on-warning",
        ],
        # The generator formats its output with the ruff it finds on PATH, and warns
        # (which --fail-on-warning makes an error) when there is none.
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("salvo_client")
    finally:
        sys.path.remove(str(folder))
        for name in [
            n for n in sys.modules if n == "salvo_client" or n.startswith("salvo_client.")
        ]:
            del sys.modules[name]


def test_the_generated_python_client_pages_through_every_event(
    salvo_client: ModuleType, server: str
) -> None:
    # The operationId listEvents is the module's name; the 200 response parses as
    # the JSON page because application/json is its first media type.
    list_events = importlib.import_module("salvo_client.api.events.list_events")
    event_page = importlib.import_module("salvo_client.models.event_page").EventPage
    with salvo_client.Client(base_url=server) as client:
        everything = list_events.sync(client=client)
        assert isinstance(everything, event_page), everything
        assert everything.links.next_ is None
        expected = [event.id for event in everything.data]

        collected = []
        pages = 0
        cursor = salvo_client.types.UNSET
        while True:
            page = list_events.sync(client=client, limit=5, cursor=cursor)
            assert isinstance(page, event_page), page
            pages += 1
            collected += [event.id for event in page.data]
            if page.links.next_ is None:
                break
            (cursor,) = parse_qs(urlsplit(page.links.next_).query)["cursor"]

    assert len(expected) == SEEDED_EVENTS
    assert collected == expected
    assert len(set(collected)) == SEEDED_EVENTS
    assert pages == 4  # 5 + 5 + 5 + 2


def test_the_generated_python_client_parses_narrowed_events_as_partial_events(
    salvo_client: ModuleType, server: str
) -> None:
    # Page items are anyOf Event or PartialEvent: a whole event parses as an Event (it
    # is tried first), one narrowed by `fields` as a PartialEvent.
    list_events = importlib.import_module("salvo_client.api.events.list_events")
    field = importlib.import_module("salvo_client.models.list_events_fields_item")
    event = importlib.import_module("salvo_client.models.event").Event
    partial_event = importlib.import_module("salvo_client.models.partial_event").PartialEvent
    unset = salvo_client.types.UNSET
    with salvo_client.Client(base_url=server) as client:
        whole = list_events.sync(client=client, limit=5)
        narrowed = list_events.sync(
            client=client,
            limit=5,
            fields=[field.ListEventsFieldsItem.DATE, field.ListEventsFieldsItem.EVENT_TYPE],
        )
    assert [type(item) for item in whole.data] == [event] * 5
    assert [type(item) for item in narrowed.data] == [partial_event] * 5
    assert [(item.id, item.event_type.value, item.date) for item in narrowed.data] == [
        (item.id, item.event_type.value, item.date) for item in whole.data
    ]
    assert {item.notes for item in narrowed.data} == {unset}
    assert {item.location for item in narrowed.data} == {unset}
    next_query = parse_qs(urlsplit(narrowed.links.next_).query)
    assert next_query["fields"] == ["date", "event_type"]


@pytest.fixture(scope="module")
def writable_server(
    seeded_copy: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """The server as `make run` starts it, on a writable copy of the seeded database;
    its base URL and an admin key (the test corrects a curated event, which only an
    admin key may change)."""
    folder = tmp_path_factory.mktemp("writable-server")
    path = seeded_copy()
    key = write_key(path, "Generated client", "admin")
    with serving(path, folder / "server.log", env={"SALVO_RATE_LIMITS": "off"}) as running:
        yield running.url, key


def test_the_generated_python_client_patches_and_deletes_with_if_match(
    salvo_client: ModuleType, writable_server: tuple[str, str]
) -> None:
    # If-Match is a declared, required parameter of both operations: a client that
    # could not send it got 428 on every PATCH and DELETE.
    url, key = writable_server
    get_event = importlib.import_module("salvo_client.api.events.get_event")
    update_event = importlib.import_module("salvo_client.api.event_writes.update_event")
    delete_event = importlib.import_module("salvo_client.api.event_writes.delete_event")
    event_patch = importlib.import_module("salvo_client.models.event_patch").EventPatch
    event_id = "ua-2024-05-30-kharkiv-missile-strike"
    with salvo_client.AuthenticatedClient(base_url=url, token=key) as client:
        read = get_event.sync_detailed(event_id, client=client)
        patched = update_event.sync_detailed(
            event_id,
            client=client,
            body=event_patch.from_dict({"notes": "Corrected through a generated client."}),
            if_match=read.headers["ETag"],
        )
        assert patched.status_code == 200, patched.content
        assert patched.parsed.notes == "Corrected through a generated client."
        deleted = delete_event.sync_detailed(
            event_id, client=client, if_match=patched.headers["ETag"]
        )
        assert deleted.status_code == 204, deleted.content
        assert get_event.sync_detailed(event_id, client=client).status_code == 410


def _npx(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    assert NPX is not None
    # In an empty folder, so that no package.json or redocly.yaml of the project's
    # changes what runs.
    env = {
        **os.environ,
        "REDOCLY_TELEMETRY": "off",
        "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
        "NO_UPDATE_NOTIFIER": "1",
    }
    result = subprocess.run(
        [NPX, "--yes", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@needs_npx
def test_the_generated_typescript_types_compile(tmp_path: Path) -> None:
    types = tmp_path / "salvo.d.ts"
    _npx(OPENAPI_TYPESCRIPT, str(CONTRACT), "-o", str(types), cwd=tmp_path)
    # The operationIds name the operations of the generated types.
    assert 'get: operations["listEvents"];' in types.read_text()
    _npx("-p", TYPESCRIPT, "tsc", "--noEmit", "--strict", str(types), cwd=tmp_path)


@needs_npx
def test_redocly_recommended_rules_pass(tmp_path: Path) -> None:
    result = _npx(
        REDOCLY, "lint", "--extends=recommended", "--format=json", str(CONTRACT), cwd=tmp_path
    )
    report = json.loads(result.stdout)
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, report["problems"]
