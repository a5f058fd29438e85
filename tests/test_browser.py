"""Salvo in a real browser: Debian's Chromium, driven by Playwright, calls the server
that `make run` starts from a page on another origin, as a partner's web app would.
Only a browser enforces CORS, negotiates its own compression and runs Swagger UI, so
these are the checks that a test client cannot make.

Playwright's own browser download (`playwright install`) is never used: CI installs
Debian's chromium (.ci/run); without it these tests are skipped."""

import json
import re
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from tests.engines import write_key
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


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # One browser for the module: launching costs about half a second each time.
    launched = launch(playwright)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def keyed_db(seeded_copy: Callable[[], str]) -> tuple[str, str]:
    """A copy of the seeded database (on each engine) with one read key."""
    database = seeded_copy()
    return database, write_key(database, "browser app", "read")


@pytest.fixture(scope="module")
def server(keyed_db: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Served with the default limits (per address 600 a minute, 5,000 an hour and
    10,000 a day; 600 a minute per key): this module makes about 30 calls."""
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
                            link, next: body.links.next, prev: body.links.prev});
                const next = link && link.match(/<([^>]+)>; rel="next"/);
                url = next ? next[1] : null;
            }
            return pages;
        }""",
        f"{server.url}/api/v1/events?limit=5",
    )
    assert [page["status"] for page in pages] == [200, 200, 200, 200]
    assert [len(page["ids"]) for page in pages] == [5, 5, 5, 2]
    # The header and the body name the same next and previous pages; the first page
    # has no previous one, the last no next one.
    assert [page["link"] for page in pages] == [
        f'<{pages[0]["next"]}>; rel="next"',
        *(f'<{page["next"]}>; rel="next", <{page["prev"]}>; rel="prev"' for page in pages[1:3]),
        f'<{pages[3]["prev"]}>; rel="prev"',
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
    # Both conditional calls were preflighted (Chromium skips its preflight cache for
    # cache: 'no-store'), and each preflight allowed If-None-Match.
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
    server: Server, keyed_db: tuple[str, str], app_page: Page
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
    # The key's own count (599 left after its first call), not the address's, which
    # this module's earlier calls have used: the key was accepted.
    assert result == {"status": 200, "limit": "600", "remaining": "599", "events": 4}
    assert logged_statuses(server, "OPTIONS", "/api/v1/events?limit=4") == [200]


@pytest.fixture(scope="module")
def limited(
    keyed_db: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Limits small enough to reach from a page: 3 calls a minute per address, 2 per key."""
    log = tmp_path_factory.mktemp("browser-limited") / "server.log"
    env = {"SALVO_RATE_LIMIT_ANONYMOUS": "3/minute", "SALVO_RATE_LIMIT_KEY": "2/minute"}
    with serving(keyed_db[0], log, env=env) as running:
        yield running


# Reads everything a page's script may read of a response; a CORS failure (no
# Access-Control-Allow-Origin on the answer or its preflight) is the TypeError of fetch.
READ = """async ([url, headers]) => {
    try {
        const response = await fetch(url, {headers});
        return {status: response.status, type: response.headers.get('Content-Type'),
                retryAfter: response.headers.get('Retry-After'),
                limit: response.headers.get('RateLimit-Limit'),
                remaining: response.headers.get('RateLimit-Remaining'),
                body: await response.json()};
    } catch (error) {
        return {error: String(error)};
    }
}"""


def test_a_429_and_its_retry_after_are_readable_by_the_page(
    limited: Server, keyed_db: tuple[str, str], app_page: Page
) -> None:
    calls = [
        app_page.evaluate(READ, [f"{limited.url}/api/v1/events?limit={n}", {}])
        for n in (1, 2, 3, 4)
    ]
    assert [call["status"] for call in calls] == [200, 200, 200, 429]
    assert [call["remaining"] for call in calls] == ["2", "1", "0", "0"]
    refused = calls[3]
    assert refused["type"] == "application/problem+json"
    # Whole seconds rounded up until the oldest counted call leaves the minute.
    assert 0 < int(refused["retryAfter"]) <= 61
    assert refused["body"]["status"] == 429
    assert refused["body"]["title"] == "Too many requests"
    assert refused["body"]["detail"].startswith(
        "Callers without an API key may make 3 requests per minute from one address, "
        "and 127.0.0.1 has used them all."
    )
    assert refused["limit"] == "3"


def test_preflights_are_not_limited_so_a_keyed_429_stays_readable(
    limited: Server, keyed_db: tuple[str, str], app_page: Page
) -> None:
    # The address is over its limit, whatever ran before: preflights carry no key, so
    # if they were counted, each would be refused as the address's and fail its call.
    anonymous = [
        app_page.evaluate(READ, [f"{limited.url}/api/v1/sources?limit={n}", {}])
        for n in (1, 2, 3, 4)
    ]
    assert anonymous[-1]["status"] == 429
    keyed = {"Authorization": f"Bearer {keyed_db[1]}"}
    # Each URL is new to the browser's preflight cache, so each call is preflighted.
    calls = [
        app_page.evaluate(READ, [f"{limited.url}/api/v1/locations?limit={n}", keyed])
        for n in (1, 2, 3)
    ]
    for n in (1, 2, 3):
        assert logged_statuses(limited, "OPTIONS", f"/api/v1/locations?limit={n}") == [200]
    assert [call.get("status") for call in calls] == [200, 200, 429], calls
    refused = calls[2]
    assert refused["limit"] == "2"
    assert 0 < int(refused["retryAfter"]) <= 61
    assert refused["body"]["detail"].startswith("The API key ")
    assert "may make 2 requests per minute, and has used them all." in refused["body"]["detail"]


def test_the_browser_decodes_a_compressed_response(server: Server, app_page: Page) -> None:
    url = f"{server.url}/api/v1/events?limit=100"
    with app_page.expect_response(url) as caught:
        result = app_page.evaluate(
            """async (url) => {
                const response = await fetch(url);
                const body = await response.json();
                // Cross-origin sizes are visible only with Timing-Allow-Origin.
                const [timing] = performance.getEntriesByName(url);
                return {events: body.data.length, encoded: timing.encodedBodySize,
                        decoded: timing.decodedBodySize};
            }""",
            url,
        )
    response = caught.value
    # Chromium offers zstd, Salvo's first choice; the script saw the decoded JSON.
    assert response.request.all_headers()["accept-encoding"] == "gzip, deflate, br, zstd"
    assert response.all_headers()["content-encoding"] == "zstd"
    assert result["events"] == SEEDED_EVENTS
    assert 0 < result["encoded"] < result["decoded"] / 4, result


def open_docs(page: Page, server: Server) -> dict[str, list[str]]:
    """Open the interactive docs, recording every request, console error and uncaught
    script error, and wait until Swagger UI has rendered the operations."""
    seen: dict[str, list[str]] = {"requests": [], "console": [], "errors": []}
    page.on("request", lambda request: seen["requests"].append(request.url))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen["console"].append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.goto(f"{server.url}/api/v1/docs")
    page.locator("#operations-events-listEvents").wait_for()
    return seen


def test_the_docs_render_every_operation_from_the_server_alone(server: Server, page: Page) -> None:
    seen = open_docs(page, server)
    with urllib.request.urlopen(f"{server.url}/api/v1/openapi.json") as response:
        spec = json.load(response)
    operation_ids = {
        operation["operationId"]
        for path in spec["paths"].values()
        for operation in path.values()
        # A path item also holds the parameters its operations share.
        if isinstance(operation, dict)
    }
    shown = page.locator(".opblock").evaluate_all("blocks => blocks.map(block => block.id)")
    assert {block.rsplit("-", 1)[1] for block in shown} == operation_ids
    assert page.get_by_text("/api/v1/events", exact=True).first.is_visible()
    assert seen["errors"] == []
    # Swagger UI's assets and the spec, all from the server: the docs need no internet.
    assert seen["requests"] == [
        f"{server.url}/api/v1/docs",
        f"{server.url}/api/v1/docs/assets/swagger-ui.css",
        f"{server.url}/api/v1/docs/assets/swagger-ui-standalone-preset.js",
        f"{server.url}/api/v1/docs/assets/swagger-ui-bundle.js",
        f"{server.url}/api/v1/openapi.json",
    ]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "docs.png")


def test_the_docs_show_a_lock_on_writes_only(server: Server, page: Page) -> None:
    """Reads need no key: Swagger UI draws its padlock on the three writes alone."""
    open_docs(page, server)
    locked = page.locator(".opblock:has(.authorization__btn)").evaluate_all(
        "blocks => blocks.map(block => block.id)"
    )
    assert sorted(locked) == [
        "operations-event-writes-createEvents",
        "operations-event-writes-deleteEvent",
        "operations-event-writes-updateEvent",
    ]


@pytest.mark.parametrize("path", ["/", "/api/v1/docs"])
def test_the_pages_log_no_console_error(server: Server, playwright: Playwright, path: str) -> None:
    # A browser of its own: Chromium asks a server for /favicon.ico once per browser,
    # whichever context or page opens the server first, and remembers the answer.
    fresh = launch(playwright)
    try:
        page = fresh.new_page()
        errors: list[str] = []

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                errors.append(f"{message.text} ({message.location['url']})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{server.url}{path}")
        # The favicon is asked for after the load event: wait until the network is idle.
        page.wait_for_load_state("networkidle")
    finally:
        fresh.close()
    assert errors == []


def execute_list_events(page: Page) -> tuple[str, str]:
    """Try it out, then Execute, on GET /api/v1/events: the request URL Swagger UI
    called and the status code it shows."""
    operation = page.locator("#operations-events-listEvents")
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status")
    status.wait_for()
    url = operation.locator(".request-url pre").inner_text().strip()
    return url, status.inner_text().strip()


def try_list_events(page: Page) -> None:
    operation = page.locator("#operations-events-listEvents")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()


def test_try_it_out_calls_the_server_that_served_the_docs(server: Server, page: Page) -> None:
    seen = open_docs(page, server)
    try_list_events(page)
    url, status = execute_list_events(page)
    # The spec's first server is "/": the call goes to the origin that served the docs.
    # Nothing narrows it: only the parameters' defaults are filled in, no example.
    assert url == f"{server.url}/api/v1/events?sort=-date&limit=100"
    assert status == "200"
    assert seen["requests"][-1] == url
    assert seen["errors"] == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # The viewport around the live response: its request URL and code 200.
    page.locator("#operations-events-listEvents .request-url").evaluate(
        "url => url.scrollIntoView({block: 'start'})"
    )
    page.screenshot(path=SCREENSHOTS / "docs-try-it-out.png")


def test_the_landing_page_is_html_for_a_browser(server: Server, page: Page) -> None:
    response = page.goto(f"{server.url}/")
    assert response is not None and response.status == 200
    assert response.all_headers()["content-type"] == "text/html; charset=utf-8"
    assert page.locator("h1").inner_text() == "Salvo"
    assert page.title() == "Salvo — conflict events API"
    # Kept by CI as an artifact: what a person opening the API's address sees.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "landing.png", full_page=True)
    assert (SCREENSHOTS / "landing.png").stat().st_size > 10_000


def test_a_page_draws_the_stats_series_as_it_comes(server: Server, app_page: Page) -> None:
    # A chart-builder's code: one bar per row, no gap filling, no pivoting, and the
    # coarser events listed beside the chart rather than drawn on a day.
    drawn = app_page.evaluate(
        """async (url) => {
            const body = await (await fetch(url)).json();
            const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
            svg.setAttribute('width', '640'); svg.setAttribute('height', '220');
            const most = Math.max(1, ...body.data.map(r => r.events));
            body.data.forEach((row, i) => {
                const bar = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
                const height = 180 * row.events / most;
                bar.setAttribute('x', 10 + i * 20); bar.setAttribute('width', 16);
                bar.setAttribute('y', 200 - height); bar.setAttribute('height', height);
                bar.setAttribute('fill', row.munitions.missile.launched ? '#c0392b' : '#2c3e50');
                bar.dataset.key = row.key;
                svg.appendChild(bar);
            });
            document.body.appendChild(svg);
            const note = document.createElement('ul');
            for (const row of body.coarser) {
                const item = document.createElement('li');
                item.textContent = `${row.key} (${row.precision}): ${row.events} events`;
                note.appendChild(item);
            }
            document.body.appendChild(note);
            const bars = [...svg.querySelectorAll('rect')];
            return {
                keys: bars.map(bar => bar.dataset.key),
                heights: bars.map(bar => Number(bar.getAttribute('height'))),
                red: bars.filter(bar => bar.getAttribute('fill') === '#c0392b')
                    .map(bar => bar.dataset.key),
                notes: [...note.children].map(item => item.textContent),
                periods: body.meta.periods,
            };
        }""",
        f"{server.url}/api/v1/stats?interval=day&date_from=2024-05-01&date_to=2024-05-31",
    )
    app_page.screenshot(path=SCREENSHOTS / "stats-series.png")
    assert drawn["keys"] == [f"2024-05-{day:02d}" for day in range(1, 32)]
    assert drawn["periods"] == {
        "first": "2024-05-01",
        "last": "2024-05-31",
        "count": 31,
        "remaining": 0,
    }
    # The overnight attack of 30 May is the tallest bar, and the one with missiles.
    assert max(drawn["heights"]) == drawn["heights"][29] == 180
    assert drawn["red"] == ["2024-05-30"]
    assert drawn["notes"] == ["2024-05 (month): 6 events"]
