"""Issue 18's input hardening: identifiers matched whole, bounded events and pages,
CSV cells a spreadsheet cannot run, and Idempotency-Key checked, each through the
HTTP API on a writable copy of the seeded database, on both engines."""

import csv
import io
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient

from schemas.event import MAX_ACTORS, MAX_NOTES
from schemas.query import MAX_PAGE_BYTES
from tests.engines import execute, on_postgresql, rows, write_key

KHARKIV = "ua-2024-05-30-kharkiv-missile-strike"
PROBLEM = "application/problem+json"


class Writer:
    """The Flask test client of `app`, on a writable copy of the seeded database (a
    SQLite path or a postgresql:// URL), with a write key."""

    def __init__(self, database: str, app: Flask) -> None:
        self.database = database
        self.client: FlaskClient = app.test_client()
        self.key = write_key(database, "Newsroom", "write")

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **extra}

    def stored(self, event_id: str = KHARKIV) -> tuple[dict[str, Any], str]:
        response = self.client.get(f"/api/v1/events/{event_id}")
        event = response.get_json()
        for output_only in ("acled", "updated_at"):
            event.pop(output_only)
        return event, response.headers["ETag"]

    def post(self, *events: dict[str, Any], **headers: str) -> Any:
        # orjson keeps non-ASCII text as UTF-8, so large events stay within the body limit.
        return self.client.post(
            "/api/v1/events",
            data=orjson.dumps({"events": list(events)}),
            content_type="application/json",
            headers=self.headers(**headers),
        )

    def state(self) -> tuple[int, bytes]:
        """The number of events and the whole change feed: what a write would change."""
        ((count,),) = rows(self.database, "SELECT count(*) FROM events")
        return count, self.client.get("/api/v1/changes?limit=1000").data


@pytest.fixture
def writer(fresh_database: str, open_app: Callable[..., Flask]) -> Writer:
    return Writer(fresh_database, open_app(fresh_database))


def a_new_event(writer: Writer, event_id: str = "ua-2024-06-01-new") -> dict[str, Any]:
    event, _ = writer.stored()
    return {**event, "id": event_id, "date": "2024-06-01", "notes": "A new event."}


# The id and code fields of an event, and how to set one in an event.
def _set(path: str, value: str) -> Any:
    def apply(event: dict[str, Any]) -> dict[str, Any]:
        if path == "provenance.record_id":
            event["provenance"] = {"dataset": "acled", "record_id": value}
            return event
        *parents, name = path.split(".")
        target = event
        for parent in parents:
            copy = dict(target[parent])
            target[parent] = copy
            target = copy
        target[name] = value
        return event

    return apply


ID_FIELDS = {
    "id": "ua-2024-06-01-bad",
    "location.id": "ua-new-place",
    "location.country_code": "UA",
    "source.id": "new-source",
    "provenance.record_id": "UKR1234",
}
# A trailing newline ($ matches before it), a NUL, and Unicode's line separator.
BAD_ENDINGS = {"newline": "\n", "nul": "\x00", "line-separator": "\u2028"}


@pytest.mark.parametrize("ending", BAD_ENDINGS.values(), ids=BAD_ENDINGS.keys())
@pytest.mark.parametrize("field", ID_FIELDS)
def test_a_post_with_a_broken_identifier_is_refused_and_writes_nothing(
    writer: Writer, field: str, ending: str
) -> None:
    before = writer.state()
    event = _set(field, ID_FIELDS[field] + ending)(a_new_event(writer))
    response = writer.post(event, **{"Idempotency-Key": f"bad-{field}"})
    assert response.status_code == 422, response.get_json()
    assert response.content_type == PROBLEM
    assert f"events.0.{field}" in [p["name"] for p in response.get_json()["invalid_params"]]
    assert writer.state() == before
    # A retry with the same key answers the same, not a 500 over a stored event.
    again = writer.post(event, **{"Idempotency-Key": f"bad-{field}"})
    assert again.status_code == 422
    assert writer.state() == before


@pytest.mark.parametrize("ending", BAD_ENDINGS.values(), ids=BAD_ENDINGS.keys())
@pytest.mark.parametrize("field", ID_FIELDS)
def test_a_patch_with_a_broken_identifier_is_refused_and_writes_nothing(
    writer: Writer, field: str, ending: str
) -> None:
    before, etag = writer.stored()
    state = writer.state()
    whole = {"location": before["location"], "source": before["source"]}
    patch = _set(field, ID_FIELDS[field] + ending)(whole)
    patch = {k: v for k, v in patch.items() if k == field.split(".")[0]}
    response = writer.client.patch(
        f"/api/v1/events/{KHARKIV}", json=patch, headers=writer.headers(**{"If-Match": etag})
    )
    assert response.status_code == 422, response.get_json()
    assert field in [p["name"] for p in response.get_json()["invalid_params"]]
    assert writer.stored() == (before, etag)
    assert writer.state() == state


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("country=UA%0A", "country"),
        ("country=UA%00", "country"),
        ("cursor=abc%0A", "cursor"),
    ],
)
def test_an_identifier_parameter_with_a_line_break_is_refused(
    client: FlaskClient, query: str, name: str
) -> None:
    response = client.get(f"/api/v1/events?{query}")
    assert response.status_code == 400
    assert [p["name"] for p in response.get_json()["invalid_params"]] == [name]


@pytest.mark.parametrize(
    "query",
    [
        *(f"/api/v1/{path}?{name}=a{c}b" for path in ("events", "stats")
          for name in ("admin1", "location", "actor") for c in ("%00", "%1B")),
        "/api/v1/locations?admin1=%00",
    ],
)  # fmt: skip
def test_a_name_filter_with_a_control_character_is_refused(client: FlaskClient, query: str) -> None:
    # No stored name holds one. PostgreSQL's text holds no NUL at all: such a filter
    # reached it and was answered 503, as if the database had failed.
    response = client.get(query)
    assert response.status_code == 400, response.get_json()
    name = query.split("?")[1].split("=")[0]
    assert response.get_json()["invalid_params"] == [
        {"name": name, "in": "query", "reason": "Must not contain control characters."}
    ]


@pytest.mark.parametrize(
    "key",
    ["clé", "a b", "x" * 256, "k" * 60_000, ""],
    ids=["non-ascii", "space", "256-chars", "60-kb", "empty"],
)
def test_an_idempotency_key_that_is_not_1_to_255_visible_ascii_is_refused(
    writer: Writer, key: str
) -> None:
    before = writer.state()
    response = writer.post(a_new_event(writer), **{"Idempotency-Key": key})
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["invalid_params"] == [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "reason": "Must be 1 to 255 visible ASCII characters (0x21-0x7E), such as a UUID.",
        }
    ]
    assert writer.state() == before


def test_an_idempotency_key_of_255_visible_characters_is_taken(writer: Writer) -> None:
    key = "".join(chr(33 + i % 94) for i in range(255))
    first = writer.post(a_new_event(writer), **{"Idempotency-Key": key})
    assert first.status_code == 201, first.get_json()
    assert first.headers["Location"] == "/api/v1/events/ua-2024-06-01-new"
    again = writer.post(a_new_event(writer), **{"Idempotency-Key": key})
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"


def _large_event(writer: Writer, event_id: str) -> dict[str, Any]:
    """An event with as many actors and as much notes as an event may hold, in
    two-byte UTF-8 text: ~50 KB stored."""
    event = a_new_event(writer, event_id)
    event["actors"] = [
        {"name": f"{i:03d}" + "ж" * 197, "role": "initiator", "kind": "state_forces"}
        for i in range(MAX_ACTORS)
    ]
    event["notes"] = "ж" * MAX_NOTES
    return event


def test_an_event_over_its_bounds_is_refused(writer: Writer) -> None:
    before = writer.state()
    event = _large_event(writer, "ua-2024-06-01-too-large")
    event["actors"] = [*event["actors"], event["actors"][0]]
    event["notes"] += "ж"
    response = writer.post(event)
    assert response.status_code == 422
    names = {p["name"] for p in response.get_json()["invalid_params"]}
    assert names == {"events.0.actors", "events.0.notes"}
    assert writer.state() == before


def test_pages_of_large_events_stop_at_the_byte_bound_and_skip_nothing(writer: Writer) -> None:
    events = [_large_event(writer, f"ua-2024-06-01-large-{i:03d}") for i in range(100)]
    for start in range(0, len(events), 25):
        assert writer.post(*events[start : start + 25]).status_code == 201
    stored = writer.client.get("/api/v1/events?format=ndjson&sort=date").data.splitlines()
    expected = [orjson.loads(line)["id"] for line in stored]
    assert len(expected) == 100 + 17

    for first_url in ("/api/v1/events?limit=1000&sort=date", "/api/v1/changes?limit=1000"):
        url: str | None = first_url
        seen: list[str] = []
        sizes: list[list[int]] = []
        while url is not None:
            page = writer.client.get(url).get_json()
            items = page["data"]
            seen += [item.get("id") or item["event_id"] for item in items]
            # The bound counts the stored documents, not a change's envelope around one.
            documents = [item.get("event", item) for item in items]
            sizes.append([len(orjson.dumps(document)) for document in documents])
            url = page["links"]["next"]
        # Every event once, events in their sort order (changes in theirs).
        assert seen == expected if "sort" in first_url else sorted(seen) == sorted(expected)
        assert len(seen) == len(set(seen))
        assert len(sizes) >= 2
        # A page passes the bound by its last item at most.
        assert all(sum(page[:-1]) < MAX_PAGE_BYTES for page in sizes)


FORMULAS = ["=1+1", "@SUM(A1)", "+1", "-1+1"]


def _csv_rows(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.data.decode(), newline="")))


def test_csv_exports_escape_formulas_and_keep_negative_numbers(writer: Writer) -> None:
    event = a_new_event(writer)
    event["actors"] = [
        {"name": name, "role": "initiator", "kind": "state_forces"} for name in FORMULAS
    ]
    event["location"] = {
        **event["location"],
        "id": "es-formula-place",
        "admin1": "=HYPERLINK(1)",
        "country": "Spain",
        "country_code": "ES",
        "longitude": -3.5,
    }
    event["notes"] = "\t=tab first\r\nand a second line"
    assert writer.post(event).status_code == 201

    (row,) = _csv_rows(writer.client.get("/api/v1/events?format=csv&country=es"))
    assert row["initiators"] == "'=1+1; @SUM(A1); +1; -1+1"
    assert row["admin1"] == "'=HYPERLINK(1)"
    assert row["notes"] == "'\t=tab first\r\nand a second line"
    assert row["longitude"] == "-3.5"

    (acled,) = _csv_rows(writer.client.get("/api/v1/events?format=acled-csv&country=es"))
    assert acled["actor1"] == "'=1+1"
    assert acled["assoc_actor_1"] == "'@SUM(A1); +1; -1+1"
    assert acled["notes"] == "'\t=tab first\r\nand a second line"
    assert acled["longitude"] == "-3.5"

    stats = _csv_rows(writer.client.get("/api/v1/stats?group_by=admin1&country=es&format=csv"))
    assert [r["key"] for r in stats] == ["'=HYPERLINK(1)"]


@pytest.mark.parametrize("text", ["a\x00b", "a\x1bb", "a\x7fb"], ids=["nul", "escape", "del"])
def test_control_characters_in_text_are_refused(writer: Writer, text: str) -> None:
    before = writer.state()
    event = a_new_event(writer)
    event["notes"] = text
    event["actors"] = [{"name": text, "role": "initiator", "kind": "state_forces"}]
    response = writer.post(event)
    assert response.status_code == 422
    names = {p["name"] for p in response.get_json()["invalid_params"]}
    assert names == {"events.0.notes", "events.0.actors.0.name"}
    assert writer.state() == before


def test_a_database_holding_unescaped_csv_lines_exports_them_escaped(writer: Writer) -> None:
    # A database written before cells were escaped holds each line as it was sent.
    ((line,),) = rows(
        writer.database,
        "SELECT d.csv FROM events e JOIN event_documents d ON d.row_id = e.row_id WHERE e.id = ?",
        KHARKIV,
    )
    cells = next(csv.reader(io.StringIO(line, newline="")))
    cells[14] = "=1+1"  # initiators
    # SQLite's text may hold a NUL; PostgreSQL's refuses one, so none of its
    # databases holds one to escape.
    nul = "" if on_postgresql(writer.database) else "\x00"
    cells[-1] = f"@notes{nul} with a NUL"
    old = io.StringIO()
    csv.writer(old, lineterminator="\r\n").writerow(cells)
    execute(
        writer.database,
        "UPDATE event_documents SET csv = ? "
        "WHERE row_id = (SELECT row_id FROM events WHERE id = ?)",
        [old.getvalue(), KHARKIV],
    )
    exported = _csv_rows(writer.client.get("/api/v1/events?format=csv"))
    (row,) = [r for r in exported if r["id"] == KHARKIV]
    assert row["initiators"] == "'=1+1"
    assert row["notes"] == "'@notes with a NUL"


@pytest.mark.parametrize(
    ("field", "value"), [("provenance", {}), ("source.url", ""), ("source.url", "ftp://x.org")]
)
def test_values_the_contract_refuses_are_refused(writer: Writer, field: str, value: Any) -> None:
    event = a_new_event(writer)
    if field == "provenance":
        event["provenance"] = value
    else:
        event["source"] = {**event["source"], "id": "new-source", "url": value}
    response = writer.post(event)
    assert response.status_code == 422
    assert any(
        p["name"].startswith(f"events.0.{field}") for p in response.get_json()["invalid_params"]
    )
