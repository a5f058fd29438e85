"""Issue 11: the limits on one request, and the problems that refuse what passes them:
a body over MAX_CONTENT_LENGTH (413, before it is read), one that is not JSON or is
nested too deep (400), of the wrong media type (415) or not an object (422); a `q`
too long, with too many terms or not valid FTS5 (400, in Salvo's words); a cursor
holding an integer SQLite cannot take (400). On both engines, but for the shape of
FTS5's prefix queries, SQLite's own."""

import base64
import http.client
import io
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api.params import MAX_JSON_DEPTH
from api.store import filters
from api.store.search import parse
from api.store.sqlite import dialect
from api.store.sqlite.connections import connect_read_only
from api.store.sqlite.dialect import SQLITE, to_fts5
from tests.engines import write_key
from tests.server import Server, process_tree, serving

KHARKIV = "ua-2024-05-30-kharkiv-missile-strike"
PROBLEM = "application/problem+json"
LIMIT = 2 * 1024 * 1024


class Writer:
    """The app on a writable copy of the seeded database, with a write key."""

    def __init__(self, database: str, app: Flask) -> None:
        self.key = write_key(database, "Newsroom", "admin")
        self.client = app.test_client()

    def post(self, body: bytes, content_type: str | None = "application/json") -> TestResponse:
        return self.client.post("/api/v1/events", data=body, headers=self.headers(content_type))

    def patch(self, body: bytes, content_type: str | None) -> TestResponse:
        etag = self.client.get(f"/api/v1/events/{KHARKIV}").headers["ETag"]
        return self.client.patch(
            f"/api/v1/events/{KHARKIV}",
            data=body,
            headers={**self.headers(content_type), "If-Match": etag},
        )

    def headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        return headers


@pytest.fixture
def writer(fresh_database: str, open_app: Callable[..., Flask]) -> Writer:
    return Writer(fresh_database, open_app(fresh_database))


def problem(response: TestResponse, status: int, type: str = "about:blank") -> dict[str, Any]:
    """The problem a response carries, after checking its status, type and media type."""
    assert response.status_code == status
    assert response.content_type == PROBLEM
    body: dict[str, Any] = response.get_json()
    assert body["type"] == type
    assert body["status"] == status
    return body


def malformed(response: TestResponse, reason: str) -> None:
    body = problem(response, 400, "/problems/malformed-body")
    assert body["title"] == "Malformed request body"
    assert body["detail"] == f"body: {reason}"
    assert body["invalid_params"] == [{"name": "body", "in": "body", "reason": reason}]


# The body's size


def test_the_default_limit_is_2_mib(app: Flask) -> None:
    assert app.config["MAX_CONTENT_LENGTH"] == LIMIT


def test_a_body_at_the_limit_is_read_and_one_byte_more_is_413(writer: Writer) -> None:
    # A JSON list padded to exactly the limit is read, and refused as no object.
    at_limit = b"[" + b" " * (LIMIT - 2) + b"]"
    body = problem(writer.post(at_limit), 422, "/problems/invalid-body")
    assert body["invalid_params"] == [
        {"name": "body", "in": "body", "reason": "Not a JSON object."}
    ]

    body = problem(writer.post(at_limit + b" "), 413)
    assert body["title"] == "Content Too Large"
    assert body["detail"] == (
        "The body is over 2,097,152 bytes, the most one request may send; "
        "send a large batch as several requests."
    )
    assert body["invalid_params"] == [
        {"name": "body", "in": "body", "reason": "Over 2,097,152 bytes."}
    ]


def chunked(writer: Writer, body: bytes) -> tuple[TestResponse, int]:
    """A POST of `body` without Content-Length, as a chunked one arrives from a server
    (like Granian) that terminates the input stream; and how much of it was read."""
    sent = io.BytesIO(body)
    response = writer.client.post(
        "/api/v1/events",
        input_stream=sent,
        headers=writer.headers("application/json"),
        environ_overrides={"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"},
    )
    return response, sent.tell()


def test_a_chunked_body_is_cut_as_it_passes_the_limit(writer: Writer) -> None:
    response, read = chunked(writer, b" " * (4 * LIMIT))
    assert problem(response, 413)["invalid_params"][0]["name"] == "body"
    assert read == LIMIT + 1
    # One that ends at the limit is read whole.
    response, read = chunked(writer, b"[" + b" " * (LIMIT - 2) + b"]")
    assert problem(response, 422, "/problems/invalid-body")["invalid_params"][0]["name"] == "body"
    assert read == LIMIT


# The body's JSON


def nested(depth: int) -> bytes:
    """{"events": [[...]]} with arrays and objects `depth` deep."""
    return b'{"events": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def test_a_body_nested_deeper_than_the_limit_is_400(writer: Writer) -> None:
    assert MAX_JSON_DEPTH == 32
    reason = "Nested deeper than 32 arrays and objects."
    malformed(writer.post(nested(33)), reason)
    malformed(writer.post(b"[" * 100_000), reason)
    # At the limit the body is parsed, and refused for what it says.
    body = problem(writer.post(nested(32)), 422, "/problems/invalid-body")
    assert [p["name"] for p in body["invalid_params"]] == ["events.0"]


@pytest.mark.parametrize(
    "text",
    [
        # Brackets inside strings do not nest, escaped quotes or not.
        '{"events": "' + "[" * 40 + '"}',
        '{"events": "\\"' + "{" * 40 + '"}',
        '{"events": "\\\\\\"' + "[" * 40 + '"}',
    ],
)
def test_brackets_in_strings_are_not_nesting(writer: Writer, text: str) -> None:
    body = problem(writer.post(text.encode()), 422, "/problems/invalid-body")
    assert body["invalid_params"] == [
        {"name": "events", "in": "body", "reason": "Not a valid list."}
    ]


def test_brackets_after_an_escaped_backslash_are_nesting(writer: Writer) -> None:
    # "\\" is a string holding one backslash: the quote after it closes the string.
    text = b'{"x": "\\\\", "events": ' + b"[" * 32 + b"]" * 32 + b"}"
    malformed(writer.post(text), "Nested deeper than 32 arrays and objects.")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b'{"events": [1 2]}',
            "Not valid JSON: unexpected character, expected ',' or ']' at line 1, column 15.",
        ),
        (
            b'{\n  "events": [\n    {"id": "x",}\n  ]\n}',
            "Not valid JSON: trailing comma is not allowed at line 3, column 15.",
        ),
        (b'{"events": []', "Not valid JSON: unexpected end of data at line 1, column 14."),
        (
            b'{"events": NaN}',
            "Not valid JSON: unexpected character, expected a JSON value at line 1, column 12.",
        ),
        (
            b'{"notes": "\xff"}',
            "Not valid JSON: str is not valid UTF-8: surrogates not allowed at line 1, column 1.",
        ),
        (b"", "Empty: send a JSON object."),
    ],
)
def test_a_body_that_is_not_json_says_where_it_broke(
    writer: Writer, body: bytes, reason: str
) -> None:
    malformed(writer.post(body), reason)


def test_a_merge_patch_that_is_not_json_is_refused_alike(writer: Writer) -> None:
    reason = "Not valid JSON: unexpected end of data at line 1, column 13."
    malformed(writer.patch(b'{"notes": "x', "application/merge-patch+json"), reason)


@pytest.mark.parametrize("body", [b"[1]", b'"events"', b"null", b"7"])
def test_a_body_that_is_not_an_object_is_422_naming_the_body(writer: Writer, body: bytes) -> None:
    expected = [{"name": "body", "in": "body", "reason": "Not a JSON object."}]
    for response in (writer.post(body), writer.patch(body, "application/merge-patch+json")):
        refused = problem(response, 422, "/problems/invalid-body")
        assert refused["invalid_params"] == expected
        assert refused["detail"] == "body: Not a JSON object."


def test_a_nested_value_that_is_not_an_object_says_so(writer: Writer) -> None:
    event = {**writer.client.get(f"/api/v1/events/{KHARKIV}").get_json(), "location": [1]}
    body = problem(writer.post(orjson.dumps({"events": [event]})), 422, "/problems/invalid-body")
    assert {"name": "events.0.location", "in": "body", "reason": "Not a JSON object."} in body[
        "invalid_params"
    ]


# The body's media type


@pytest.mark.parametrize(
    ("content_type", "sent"),
    [
        (None, "no Content-Type"),
        ("text/plain", "Content-Type text/plain"),
        ("application/x-www-form-urlencoded", "Content-Type application/x-www-form-urlencoded"),
        # A merge patch is for PATCH; a POST's body is a document of its own.
        ("application/merge-patch+json", "Content-Type application/merge-patch+json"),
    ],
)
def test_a_post_of_another_media_type_is_415(
    writer: Writer, content_type: str | None, sent: str
) -> None:
    response = writer.post(b'{"events": []}', content_type)
    body = problem(response, 415)
    assert body["title"] == "Unsupported Media Type"
    assert body["detail"] == f"This request sent {sent}; send the body as application/json."
    assert body["invalid_params"] == [
        {"name": "Content-Type", "in": "header", "reason": "Not application/json."}
    ]
    assert response.headers["Accept-Post"] == "application/json"


def test_a_patch_of_another_media_type_is_415(writer: Writer) -> None:
    response = writer.patch(b'{"notes": "Changed."}', "text/plain")
    body = problem(response, 415)
    assert body["detail"] == (
        "This request sent Content-Type text/plain; send the body as "
        "application/merge-patch+json or application/json."
    )
    assert body["invalid_params"] == [
        {
            "name": "Content-Type",
            "in": "header",
            "reason": "Not application/merge-patch+json or application/json.",
        }
    ]
    assert response.headers["Accept-Patch"] == "application/merge-patch+json, application/json"


@pytest.mark.parametrize(
    "content_type",
    ["application/merge-patch+json", "application/json", "application/json; charset=utf-8"],
)
def test_a_patch_is_taken_as_merge_patch_or_json(writer: Writer, content_type: str) -> None:
    response = writer.patch(b'{"notes": "Changed."}', content_type)
    assert response.status_code == 200
    assert response.get_json()["notes"] == "Changed."


# The body over real HTTP


class _Served:
    def __init__(self, server: Server, key: str) -> None:
        self.server = server
        self.key = key
        host, port = server.url.removeprefix("http://").split(":")
        self.address = (host, int(port))

    def head(self, *lines: str) -> bytes:
        return "\r\n".join(
            [
                "POST /api/v1/events HTTP/1.1",
                f"Host: {self.address[0]}",
                f"Authorization: Bearer {self.key}",
                "Content-Type: application/json",
                *lines,
                "",
                "",
            ]
        ).encode()


@pytest.fixture(scope="module")
def served(
    seeded_copy: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_Served]:
    database = seeded_copy()
    key = write_key(database, "Newsroom", "write")
    log = tmp_path_factory.mktemp("caps") / "server.log"
    with serving(database, log, env={"SALVO_RATE_LIMITS": "off"}) as server:
        yield _Served(server, key)


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of the HTTP/1.1 response read from `sock`."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def _worker_rss_kb(server: Server) -> int:
    """Resident memory of the Granian process tree, in kB (Linux /proc)."""
    total = 0
    for pid in process_tree(server.process.pid):
        status = Path(f"/proc/{pid}/status").read_text()
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return total


def test_a_served_50_mb_post_is_refused_before_its_body_is_sent(served: _Served) -> None:
    # A first request with the key opens the store (PostgreSQL's pool of connections
    # alone adds ~20 MB): what is measured after it is the body's memory only.
    with socket.create_connection(served.address, timeout=10) as sock:
        sock.sendall(served.head("Content-Length: 2") + b"{]")
        assert _response(sock)[0] == 400
    before = _worker_rss_kb(served.server)
    with socket.create_connection(served.address, timeout=10) as sock:
        started = time.monotonic()
        # Only the head is sent: the answer cannot wait for the 50 MB.
        sock.sendall(served.head("Content-Length: 52428800"))
        status, headers, body = _response(sock)
        elapsed = time.monotonic() - started
    assert status == 413
    assert headers["content-type"] == PROBLEM
    assert orjson.loads(body)["invalid_params"] == [
        {"name": "body", "in": "body", "reason": "Over 2,097,152 bytes."}
    ]
    assert elapsed < 2
    assert _worker_rss_kb(served.server) - before < 10_000


def test_a_served_chunked_body_is_cut_at_the_limit(served: _Served) -> None:
    chunk = b" " * 65536
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    with socket.create_connection(served.address, timeout=10) as sock:
        sock.sendall(served.head("Transfer-Encoding: chunked"))

        def send() -> None:
            # 4 MiB, twice the limit; the server may stop reading once it answers.
            try:
                for _ in range(64):
                    sock.sendall(framed)
            except OSError:
                pass

        sender = threading.Thread(target=send)
        sender.start()
        status, _, body = _response(sock)
        sender.join(timeout=10)
    assert status == 413
    assert orjson.loads(body)["invalid_params"][0]["name"] == "body"


def test_a_served_malformed_body_is_400(served: _Served) -> None:
    text = b'{"events": [1 2]}'
    with socket.create_connection(served.address, timeout=10) as sock:
        sock.sendall(served.head(f"Content-Length: {len(text)}") + text)
        status, _, body = _response(sock)
    assert status == 400
    assert orjson.loads(body)["type"] == "/problems/malformed-body"


# The search: its limits are in tests/test_search.py.


# Tokens


def token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


FOREIGN = "Not a cursor issued by this API; use links.next as given."


@pytest.mark.parametrize(
    "value",
    [b"18446744073709551615", b"9223372036854775808", b"-9223372036854775809", b"1e400", b"NaN"],
)
def test_a_cursor_beyond_sqlites_integers_is_400(client: FlaskClient, value: bytes) -> None:
    for path, param in (
        ("/api/v1/events?sort=killed&cursor=" + token(b'["killed",' + value + b',"x"]'), "cursor"),
        ("/api/v1/changes?since=" + token(b'["changes",' + value + b"]"), "since"),
    ):
        body = problem(client.get(path), 400, "/problems/invalid-parameters")
        assert body["invalid_params"] == [{"name": param, "in": "query", "reason": FOREIGN}]


def test_a_cursor_at_sqlites_largest_integer_is_taken(client: FlaskClient) -> None:
    largest = b"9223372036854775807"
    cursor = token(b'["killed",' + largest + b',"x"]')
    assert client.get(f"/api/v1/events?sort=killed&cursor={cursor}").status_code == 200
    # A change token that large parses too, and is refused for what it says: a
    # position past this database's history.
    past = client.get("/api/v1/changes?since=" + token(b'["changes",' + largest + b"]"))
    assert past.status_code == 400
    assert [p["name"] for p in past.get_json()["invalid_params"]] == ["since"]


@pytest.mark.parametrize(
    ("q", "form"),
    [
        # A common word is probed row by row along the sort index: a page fills fast.
        ("infrastructure", "EXISTS (SELECT 1 FROM events_fts f"),
        # A prefix is expanded at each probe: its matches are collected once instead.
        ("infra*", "e.row_id IN (SELECT rowid FROM events_fts"),
        ("a* OR b*", "e.row_id IN (SELECT rowid FROM events_fts"),
    ],
)
def test_a_prefix_search_collects_its_matches_once(
    synthetic_db: Path, monkeypatch: pytest.MonkeyPatch, q: str, form: str
) -> None:
    """SQLite only: the shape of an FTS5 query (PostgreSQL's prefixes are a tsquery's)."""
    # Every q here is common at this bound, in 20,000 synthetic events.
    monkeypatch.setattr(dialect, "FTS_COMMON_TERM_MATCHES", 100)
    conn = connect_read_only(str(synthetic_db))
    try:
        sql, params = filters.where(
            filters.Scope.events(SQLITE, conn, paged=True),
            filters.filters_of(filters.EVENTS),
            {"q": parse(q)},
        )
    finally:
        conn.close()
    assert sql.startswith(form)
    assert params == [to_fts5(parse(q)).expression]  # type: ignore[union-attr]
