"""Salvo in a real browser: Debian's Chromium, driven by Playwright, calls the server
that `make run` starts from a page on another origin, as a partner's web app would.
Only a browser enforces CORS, negotiates its own compression and runs Swagger UI, so
these are the checks that a test client cannot make.

Playwright's own browser download (`playwright install`) is never used: CI installs
Debian's chromium (.ci/run); without it these tests are skipped."""

import json
import re
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from api.keys import create_key
from api.storage import open_for_writing
from tests.server import ROOT, Server, serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    # Required when running as root (CI containers); the page is our own.
    "--no-sandbox",
    "--disable-gpu",
    # The background services (updates, sync, QUIC probes) try to reach the internet,
    # and on a closed network their refused connections are noise in the logs.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "var" / "screenshots"
SEEDED_EVENTS = 17

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium); CI installs it",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # One browser for the module: launching costs about half a second each time.
    playwright: Playwright
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def keyed_db(seeded_db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A copy of the seeded database with one read key."""
    path = tmp_path_factory.mktemp("browser") / "keyed.db"
    shutil.copy(seeded_db, path)
    db = open_for_writing(str(path))
    key = create_key(db, "browser app", "read")
    db.close()
    return path, key


@pytest.fixture(scope="module")
def server(
    keyed_db: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Served with the default limits (60 a minute per address, 600 per key): this
    module makes about 30 calls."""
    log = tmp_path_factory.mktemp("browser-server") / "server.log"
    with serving(keyed_db[0], log) as running:
        yield running


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    """A blank page on another port of 127.0.0.1: another origin than the API's, so
    that every fetch from it is cross-origin and the browser applies CORS."""

    class BlankPage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>A partner's web app</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BlankPage)
    thread = threading.Thread(target=httpd.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        thread.join()
        httpd.server_close()


@pytest.fixture
def app_page(browser: Browser, origin: str) -> Iterator[Page]:
    """The partner's page, in a fresh browser context: no HTTP cache and no preflight
    cache carried over from another test."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(origin)
    yield page
    context.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def logged_statuses(server: Server, method: str, path: str) -> list[int]:
    """The statuses the access log has for `method path` (with its query string), in
    order: what the server saw, including the preflights a page's script never sees."""
    return [
        int(line.split('" ')[1].split()[0])
        for line in server.log.read_text().splitlines()
        if f'"{method} {path} HTTP/' in line
    ]


def test_pages_are_followed_through_the_link_header(server: Server, app_page: Page) -> None:
    pages = app_page.evaluate(
        """async (url) => {
            const pages = [];
            while (url) {
                const response = await fetch(url);
                const body = await response.json();
                // Readable cross-origin only because CORS exposes Link.
                const link = response.headers.get('Link');
                pages.push({status: response.status, ids: body.data.map(e => e.id),
                            link, next: body.links.next});
                const next = link && link.match(/<([^>]+)>; rel="next"/);
                url = next ? next[1] : null;
            }
            return pages;
        }""",
        f"{server.url}/api/v1/events?limit=5",
    )
    assert [page["status"] for page in pages] == [200, 200, 200, 200]
    assert [len(page["ids"]) for page in pages] == [5, 5, 5, 2]
    # The header and the body name the same next page; the last page has neither.
    assert [page["link"] for page in pages] == [
        *(f'<{page["next"]}>; rel="next"' for page in pages[:3]),
        None,
    ]
    assert pages[-1]["next"] is None
    with urllib.request.urlopen(f"{server.url}/api/v1/events?limit=100") as response:
        everything = [event["id"] for event in json.load(response)["data"]]
    collected = [event_id for page in pages for event_id in page["ids"]]
    assert len(everything) == SEEDED_EVENTS
    assert collected == everything


def test_if_none_match_gives_the_page_a_304(server: Server, app_page: Page) -> None:
    result = app_page.evaluate(
        """async (url) => {
            const first = await fetch(url, {cache: 'no-store'});
            const etag = first.headers.get('ETag');
            await first.text();
            // An If-None-Match set by the script makes the browser pass the 304 through
            // rather than answer from its cache (Fetch standard, HTTP-network-or-cache
            // fetch); it is not a safelisted header, so the browser preflights first.
            const again = await fetch(url, {cache: 'no-store', headers: {'If-None-Match': etag}});
            const stale = await fetch(url, {cache: 'no-store',
                                            headers: {'If-None-Match': '"not-the-etag"'}});
            return {etag, status: again.status, body: await again.text(),
                    etagAgain: again.headers.get('ETag'), staleStatus: stale.status,
                    staleEvents: (await stale.json()).data.length};
        }""",
        f"{server.url}/api/v1/events?limit=3",
    )
    # The browser negotiated zstd, and the strong ETag names the coding (RFC 9110).
    assert re.fullmatch(r'"[0-9a-f]{40}:zstd"', result["etag"]), result["etag"]
    assert result["status"] == 304
    assert result["body"] == ""
    assert result["etagAgain"] == result["etag"]
    assert (result["staleStatus"], result["staleEvents"]) == (200, 3)
    # Both conditional calls were preflighted and the preflights allowed If-None-Match.
    assert logged_statuses(server, "OPTIONS", "/api/v1/events?limit=3") == [200, 200]
    assert logged_statuses(server, "GET", "/api/v1/events?limit=3") == [200, 304, 200]


def test_geojson_is_a_feature_collection_in_lon_lat_order(server: Server, app_page: Page) -> None:
    result = app_page.evaluate(
        """async (url) => {
            const response = await fetch(url);
            const collection = await response.json();
            return {status: response.status, type: response.headers.get('Content-Type'),
                    collection};
        }""",
        f"{server.url}/api/v1/events?format=geojson&limit=100",
    )
    assert result["status"] == 200
    assert result["type"] == "application/geo+json"
    collection = result["collection"]
    assert collection["type"] == "FeatureCollection"
    features = collection["features"]
    assert len(features) == SEEDED_EVENTS
    # RFC 7946: a position is [longitude, latitude], the reverse of "lat,lon" speech.
    for feature in features:
        location = feature["properties"]["location"]
        assert feature["geometry"] == {
            "type": "Point",
            "coordinates": [location["longitude"], location["latitude"]],
        }
    kharkiv = next(
        f for f in features if f["id"] == "ua-2024-05-30-us-permits-strikes-to-defend-kharkiv"
    )
    assert kharkiv["geometry"]["coordinates"] == [36.63, 49.58]


def test_a_preflighted_keyed_call_succeeds_and_reads_its_limit(
    server: Server, keyed_db: tuple[Path, str], app_page: Page
) -> None:
    result = app_page.evaluate(
        """async ([url, key]) => {
            // Authorization and X-Requested-With are not safelisted: a preflight first.
            const response = await fetch(url, {headers: {'Authorization': 'Bearer ' + key,
                                                         'X-Requested-With': 'XMLHttpRequest'}});
            return {status: response.status, limit: response.headers.get('RateLimit-Limit'),
                    remaining: response.headers.get('RateLimit-Remaining'),
                    events: (await response.json()).data.length};
        }""",
        [f"{server.url}/api/v1/events?limit=4", keyed_db[1]],
    )
    # A key's limit (600 a minute), not the address's 60: the key was accepted.
    assert result == {"status": 200, "limit": "600", "remaining": "599", "events": 4}
    assert logged_statuses(server, "OPTIONS", "/api/v1/events?limit=4") == [200]
