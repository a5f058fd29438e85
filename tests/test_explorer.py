"""The explorer at `/`: the page a person opens first (docs/explorer.md).

The links of the page are followed with the test client; everything the page's
script does is checked in Debian's Chromium, driven by Playwright, against the
server `make run` starts (tests/server.py), as tests/test_browser.py does."""

import hashlib
import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from api.__main__ import main as api_main
from tests.engines import on_postgresql
from tests.server import Server, serving
from tests.test_browser import CHROMIUM, SCREENSHOTS, SEEDED_EVENTS, browser, playwright
from tests.test_errors import unseeded_database

HTML = {"Accept": "text/html"}
# The explorer's palette (api/static/explorer.js): bars of launched munitions.
LAUNCHED = (0xC0, 0x39, 0x2B)
TABLE_PAGE = 10
# Precisions whose point is a centroid, not a place where something happened.
CENTROIDS = ("region", "country")
# The module's fixtures, imported for their names: pytest finds them here.
__all__ = ["browser", "playwright", "unseeded_database"]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}; CI installs it"
)


class Links(HTMLParser):
    """Every href and src of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("href", "src") and value]


def page_links(client: FlaskClient) -> list[str]:
    response = client.get("/", headers=HTML)
    assert response.status_code == 200
    parser = Links()
    parser.feed(response.get_data(as_text=True))
    return parser.urls


def test_every_link_and_asset_of_the_page_answers(client: FlaskClient) -> None:
    links = page_links(client)
    local = sorted({re.sub(r"^http://localhost", "", url) for url in links if "#" not in url})
    broken = {}
    for url in local:
        # Closed at once: a static file's answer holds the file open until then.
        with client.get(url) as response:
            if response.status_code != 200:
                broken[url] = response.status_code
    assert broken == {}


def test_the_page_s_files_are_not_counted_against_the_limit(
    database: str, open_app: Callable[..., Flask]
) -> None:
    """Opening the page costs one counted call and its panels three, whatever the
    number of files it loads (Flask-Limiter never counts Flask's `static` endpoint):
    a limit of 2 a minute still serves every file."""
    app = open_app(database, RATE_LIMITS_ENABLED=True, RATE_LIMIT_ANONYMOUS="2/minute")
    client = app.test_client()
    page = client.get("/", headers=HTML)
    assert page.headers["RateLimit-Remaining"] == "1"
    parser = Links()
    parser.feed(page.get_data(as_text=True))
    files = [url for url in parser.urls if url.startswith("/static/")]
    assert len(files) == 7
    for _ in range(2):
        for url in [*files, "/static/vendor/world-atlas-2.0.2/countries-50m.json"]:
            with client.get(url) as response:
                assert response.status_code == 200, url
                assert "RateLimit-Remaining" not in response.headers
    assert client.get("/api/v1/events?limit=1").status_code == 200
    assert client.get("/api/v1/events?limit=1").status_code == 429


VENDOR = Path(__file__).resolve().parent.parent / "api" / "static" / "vendor"


def test_the_vendored_files_are_the_ones_recorded() -> None:
    """api/static/vendor/README.md lists each committed file with its sha256, and
    each library's folder holds its licence."""
    listed = re.findall(r"^([0-9a-f]{64})  (\S+/\S+)$", (VENDOR / "README.md").read_text(), re.M)
    recorded = {path: digest for digest, path in listed}
    committed = {
        str(path.relative_to(VENDOR)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in VENDOR.glob("*/*")
    }
    assert recorded == committed
    assert {path.split("/")[0] for path in committed if path.endswith("/LICENSE")} == {
        folder.name for folder in VENDOR.iterdir() if folder.is_dir()
    }


def test_a_vendored_library_is_kept_a_year_and_the_page_s_own_files_revalidated(
    client: FlaskClient,
) -> None:
    with client.get("/static/vendor/leaflet-1.9.4/leaflet.js") as library:
        assert library.headers["Cache-Control"] == "public, max-age=31536000"
    with client.get("/static/explorer.js") as own:
        assert own.headers["Cache-Control"] == "no-cache"
        assert own.headers["ETag"]


@pytest.mark.parametrize("coding", ["zstd", "br", "gzip", None])
def test_a_revalidated_file_is_a_304_whatever_its_coding(
    client: FlaskClient, coding: str | None
) -> None:
    # The browser sends back the ETag it got, with the coding appended ("...:zstd");
    # Flask checks a file against its own ETag before compression appends it.
    headers = {"Accept-Encoding": coding} if coding else {}
    with client.get("/static/explorer.js", headers=headers) as first:
        assert first.headers.get("Content-Encoding") == coding
        assert first.data  # read whole, as a browser does
        etag = first.headers["ETag"]
    headers["If-None-Match"] = etag
    with client.get("/static/explorer.js", headers=headers) as again:
        assert again.status_code == 304
        assert again.data == b""


class Tags(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_page_keeps_to_its_content_security_policy(client: FlaskClient) -> None:
    response = client.get("/", headers=HTML)
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "connect-src 'self'" in policy
    parser = Tags()
    parser.feed(response.get_data(as_text=True))
    # Neither inline scripts nor style or event-handler attributes, which the policy
    # would block: everything the page runs and wears is a file of its own.
    assert [tag for tag, attrs in parser.tags if tag == "script" and not attrs.get("src")] == []
    assert [
        (tag, name)
        for tag, attrs in parser.tags
        for name in attrs
        if name == "style" or name.startswith("on")
    ] == []
    assert "<style" not in response.get_data(as_text=True)


def test_the_summary_says_what_the_data_holds(client: FlaskClient) -> None:
    page = client.get("/", headers=HTML).get_data(as_text=True)
    events = client.get("/api/v1/events?limit=1000&sort=date").get_json()["data"]
    sources = client.get("/api/v1/sources?limit=1000").get_json()["data"]
    changes = client.get("/api/v1/changes?limit=1000").get_json()["data"]

    def shown(name: str) -> str:
        found = re.search(rf'<dd id="summary-{name}">(.*?)</dd>', page)
        assert found is not None, name
        return re.sub(r"<[^>]+>", "", found.group(1))

    assert shown("events") == str(len(events)) == "17"
    assert shown("dates") == f"{events[0]['date']} to {events[-1]['date']}"
    assert shown("dates") == "2024-02-01 to 2024-05-30"
    assert shown("sources") == str(len(sources))
    last = max(change["changed_at"] for change in changes)
    assert shown("changed") == f"{last[:10]} {last[11:16]} UTC"
    assert f'<time datetime="{last}">' in page


def test_an_empty_database_has_a_summary_too(
    unseeded_database: str, open_app: Callable[..., Flask]
) -> None:
    # Made empty as each engine's operator makes one: `init` writes a SQLite file,
    # `migrate` lays out a PostgreSQL database (init refuses one).
    command = "migrate" if on_postgresql(unseeded_database) else "init"
    assert api_main(["--db", unseeded_database, command]) == 0
    client = open_app(unseeded_database).test_client()
    page = client.get("/", headers=HTML).get_data(as_text=True)
    assert '<dd id="summary-events">0</dd>' in page
    assert '<dd id="summary-dates">none yet</dd>' in page
    assert '<dd id="summary-changed">none yet</dd>' in page
    assert '<select name="admin1">' in page


def test_the_filters_offer_the_regions_with_events(client: FlaskClient) -> None:
    page = client.get("/", headers=HTML).get_data(as_text=True)
    select = re.search(r'<select name="admin1">(.*?)</select>', page, re.S)
    assert select is not None
    offered = re.findall(r"<option>(.*?)</option>", select.group(1))
    events = client.get("/api/v1/events?limit=1000").get_json()["data"]
    assert offered == sorted({e["location"]["admin1"] for e in events if e["location"]["admin1"]})
    # Each one finds events: the place filter never offers an empty choice.
    for region in offered:
        assert client.get("/api/v1/events", query_string={"admin1": region}).get_json()["data"]


# ---- In Chromium -----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Served with a tenth of a key's limit for anonymous calls: the module opens the
    page about ten times in a minute, where a person opens it once. What one view
    costs (a call per panel) is what the tests assert."""
    log = tmp_path_factory.mktemp("explorer-server") / "server.log"
    with serving(database, log, env={"SALVO_RATE_LIMIT_ANONYMOUS": "300/minute"}) as running:
        yield running


class Seen:
    """What a page did: its requests, console errors and uncaught script errors."""

    def __init__(self, page: Page) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", self.on_console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location['url']})")

    def api_calls(self, server: Server) -> list[str]:
        return [url for url in self.requests if url.startswith(f"{server.url}/api/")]


@pytest.fixture
def explorer(browser: Browser, server: Server) -> Iterator[tuple[Page, Seen]]:
    """The explorer in a fresh context (no cache carried over), once every panel has
    drawn its first answer."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    seen = Seen(page)
    page.goto(f"{server.url}/")
    ready(page)
    yield page, seen
    context.close()


def ready(page: Page) -> None:
    page.locator("body[data-state=ready]").wait_for(timeout=20_000)


def api(server: Server, path: str) -> Any:
    with urllib.request.urlopen(f"{server.url}{path}") as response:
        return json.load(response)


def table_ids(page: Page) -> list[str]:
    links = page.locator("#events tbody a").evaluate_all("links => links.map(a => a.href)")
    return [link.rsplit("/", 1)[1] for link in links]


def launched_pixels(page: Page) -> int:
    """Pixels of the chart's canvas in the colour of launched munitions' bars."""
    return int(
        page.locator("#chart canvas").evaluate(
            """(canvas, [r, g, b]) => {
                const pixels = canvas.getContext('2d')
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                let count = 0;
                for (let i = 0; i < pixels.length; i += 4) {
                    if (pixels[i] === r && pixels[i + 1] === g && pixels[i + 2] === b) count++;
                }
                return count;
            }""",
            list(LAUNCHED),
        )
    )


def located(server: Server, filters: str = "") -> dict[str, dict[str, Any]]:
    """The places /locations answers for the filters as GeoJSON, every page, each with
    its properties (its `event_count` among them); places with no matching event
    left out, as the map leaves them."""
    places: dict[str, dict[str, Any]] = {}
    path: str | None = (
        f"/api/v1/locations?{filters}{'&' if filters else ''}format=geojson&limit=1000"
    )
    while path:
        answer = api(server, path)
        places |= {f["id"]: f["properties"] for f in answer["features"] if f["geometry"]}
        path = answer["links"]["next"] and answer["links"]["next"].removeprefix(server.url)
    return {place: properties for place, properties in places.items() if properties["event_count"]}


def labels(places: dict[str, dict[str, Any]]) -> list[str]:
    """What the map's markers should say of these places, in order."""
    return sorted(
        f"{p['name']} ({p['precision']}): {p['event_count']} event"
        + ("s" if p["event_count"] != 1 else "")
        for p in places.values()
    )


def marker_labels(page: Page) -> list[str]:
    """What each marker of the map says (its SVG title, shown on hover), in order."""
    return sorted(page.locator("#map path.marker title").all_text_contents())


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / name, full_page=True)
    assert (SCREENSHOTS / name).stat().st_size > 20_000


@needs_chromium
def test_the_first_view_draws_every_panel_from_the_server_alone(
    server: Server, explorer: tuple[Page, Seen]
) -> None:
    page, seen = explorer
    features = api(server, "/api/v1/events?format=geojson&limit=1000")["features"]
    assert len(features) == SEEDED_EVENTS
    # A marker per place of /locations, saying its count; centroids of regions and
    # countries drawn apart, as rings.
    places = located(server)
    assert sum(place["event_count"] for place in places.values()) == SEEDED_EVENTS
    assert marker_labels(page) == labels(places)
    assert page.locator("#map-note").inner_text() == (
        f"{SEEDED_EVENTS} events at {len(places)} places."
    )
    centroids = {id for id, place in places.items() if place["precision"] in CENTROIDS}
    assert 0 < len(centroids) < len(places)
    dashed = page.locator("#map path.precision-region, #map path.precision-country")
    assert dashed.count() == len(centroids)
    assert set(
        dashed.evaluate_all("paths => paths.map(p => p.getAttribute('stroke-dasharray'))")
    ) == {"4 4"}
    assert page.locator("#map path.marker:not([stroke-dasharray])").count() == len(places) - len(
        centroids
    )
    # One call per panel, and the assets (never counted against the limit).
    assert sorted(seen.api_calls(server)) == [
        f"{server.url}/api/v1/events?limit=10",
        f"{server.url}/api/v1/locations?format=geojson&limit=1000",
        f"{server.url}/api/v1/stats?interval=month&limit=5000",
    ]
    # Ukraine's centroid holds the nationwide events: opened, its popup lists each of
    # them, from one more call.
    nationwide = [f["id"] for f in features if f["properties"]["location"]["id"] == "ua"]
    assert 1 < len(nationwide) == places["ua"]["event_count"]
    page.locator("#map path.precision-country").click()
    expect(page.locator(".popup-events a")).to_have_count(len(nationwide))
    listed = page.locator(".popup-events a").evaluate_all("links => links.map(a => a.href)")
    assert [link.rsplit("/", 1)[1] for link in listed] == nationwide
    assert (
        page.locator(".leaflet-popup-content")
        .inner_text()
        .startswith(f"Ukraine (country): {len(nationwide)} events")
    )
    assert seen.api_calls(server)[3:] == [
        f"{server.url}/api/v1/events?location=Ukraine&precision=country&limit=12"
    ]
    # The country outlines of the shipped Natural Earth file, under the markers.
    assert page.locator("#map path:not(.marker)").count() > 100
    # The chart: monthly bars, the launches of 30 May 2024 in the launched colour.
    assert page.locator("#chart canvas").count() == 1
    assert launched_pixels(page) > 100
    stats = api(server, "/api/v1/stats?interval=month&limit=5000")
    assert page.locator("#chart-note").inner_text().startswith(f"{len(stats['data'])} months:")
    # The table's first page, in the API's order.
    everything = [f["id"] for f in features]
    assert table_ids(page) == everything[:TABLE_PAGE]
    screenshot(page, "explorer.png")
    # Everything came from the server: no CDN, no tiles, nothing from the internet.
    assert all(url.startswith(f"{server.url}/") for url in seen.requests), seen.requests
    assert seen.errors == []


@needs_chromium
def test_the_table_pages_forward_through_links_next_and_back(
    server: Server, explorer: tuple[Page, Seen]
) -> None:
    page, seen = explorer
    everything = [e["id"] for e in api(server, "/api/v1/events?limit=1000")["data"]]
    first = table_ids(page)
    assert page.locator("#previous").is_disabled()
    page.locator("#next").click()
    expect(page.locator("#page")).to_have_text("Page 2")
    second = table_ids(page)
    assert first + second == everything
    # The URL builder shows the call behind the page on screen.
    shown = page.locator("#call-url code").inner_text()
    assert shown.startswith(f"{server.url}/api/v1/events?limit=10&cursor=")
    assert page.locator("#next").is_disabled()
    page.locator("#previous").click()
    expect(page.locator("#page")).to_have_text("Page 1")
    assert table_ids(page) == first
    assert page.locator("#call-url code").inner_text() == f"{server.url}/api/v1/events?limit=10"
    # Forward followed links.next; back was the page already read.
    nexts = [url for url in seen.api_calls(server) if "cursor=" in url]
    assert nexts == [shown]
    assert seen.errors == []


@needs_chromium
def test_a_filter_typed_and_entered_from_the_keyboard_updates_every_panel(
    server: Server, explorer: tuple[Page, Seen]
) -> None:
    page, seen = explorer
    # Tab from the top of the page to the search box, as a keyboard user would.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "q":
            break
    else:
        pytest.fail("the search box is not reachable with Tab")
    page.keyboard.type("Kharkiv")
    before = len(seen.api_calls(server))
    page.keyboard.press("Enter")
    # Shown as the filters apply, before their answers come.
    expect(page.locator("#call-url code")).to_contain_text("q=Kharkiv")
    ready(page)
    expected = api(server, "/api/v1/events?q=Kharkiv&format=geojson&limit=1000")["features"]
    assert 0 < len(expected) < SEEDED_EVENTS
    places = located(server, "q=Kharkiv")
    assert sum(place["event_count"] for place in places.values()) == len(expected)
    assert marker_labels(page) == labels(places)
    assert table_ids(page) == [f["id"] for f in expected][:TABLE_PAGE]
    stats = api(server, "/api/v1/stats?q=Kharkiv&interval=month&limit=5000")
    launched = sum(
        category["launched"] or 0 for row in stats["data"] for category in row["munitions"].values()
    )
    assert f" {launched} launched" in page.locator("#chart-note").inner_text()
    # The URL builder shows the table's call, now filtered; one call per panel.
    assert (
        page.locator("#call-url code").inner_text()
        == f"{server.url}/api/v1/events?q=Kharkiv&limit=10"
    )
    assert sorted(seen.api_calls(server)[before:]) == [
        f"{server.url}/api/v1/events?q=Kharkiv&limit=10",
        f"{server.url}/api/v1/locations?q=Kharkiv&format=geojson&limit=1000",
        f"{server.url}/api/v1/stats?q=Kharkiv&interval=month&limit=5000",
    ]
    # The chart by day, chosen with the keyboard on a select: Enter applies it too.
    page.locator("select[name=interval]").focus()
    page.locator("select[name=interval]").select_option("day")
    page.keyboard.press("Enter")
    page.locator("select#call").select_option("chart")
    expect(page.locator("#call-url code")).to_contain_text("interval=day")
    ready(page)
    assert " days: " in page.locator("#chart-note").inner_text()
    screenshot(page, "explorer-filtered.png")
    # The view is in the fragment: reloading the page restores it.
    assert page.evaluate("location.hash") == "#q=Kharkiv&interval=day&call=chart"
    page.reload()
    ready(page)
    assert page.locator("input[name=q]").input_value() == "Kharkiv"
    assert marker_labels(page) == labels(places)
    assert seen.errors == []


@pytest.fixture(scope="module")
def synthetic_server(
    synthetic_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """20,000 synthetic events: a filter matches more events than any page holds."""
    log = tmp_path_factory.mktemp("explorer-synthetic") / "server.log"
    with serving(
        synthetic_database, log, env={"SALVO_RATE_LIMIT_ANONYMOUS": "300/minute"}
    ) as running:
        yield running


@needs_chromium
def test_the_map_draws_every_place_of_the_filtered_view(
    browser: Browser, synthetic_server: Server
) -> None:
    """The map is /locations' count of each place over the whole filtered view, not
    the places of its latest 1,000 events: every place with a drone strike, and as
    many events in all as /stats counts."""
    server = synthetic_server
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        seen = Seen(page)
        page.goto(f"{server.url}/#event_type=drone_strike")
        ready(page)
        places = located(server, "event_type=drone_strike")
        total = api(server, "/api/v1/stats?event_type=drone_strike")["data"][0]["events"]
        assert sum(place["event_count"] for place in places.values()) == total > 1000
        assert marker_labels(page) == labels(places)
        assert page.locator("#map-note").inner_text() == f"{total} events at {len(places)} places."
        # Region centroids drawn as rings, towns as dots, as on the seed data.
        centroids = [place for place in places.values() if place["precision"] in CENTROIDS]
        assert page.locator("#map path[stroke-dasharray]").count() == len(centroids) > 0
        assert [url for url in seen.api_calls(server) if "/locations" in url] == [
            f"{server.url}/api/v1/locations?event_type=drone_strike&format=geojson&limit=1000"
        ]
        screenshot(page, "explorer-synthetic.png")
        assert seen.errors == []
    finally:
        context.close()


@needs_chromium
def test_a_bad_filter_shows_the_problem_the_api_answers(
    server: Server, explorer: tuple[Page, Seen]
) -> None:
    page, _ = explorer
    page.locator("input[name=date_from]").fill("2024-06-01")
    page.locator("input[name=date_to]").fill("2024-05-01")
    page.locator("button[type=submit]").click()
    ready(page)
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(server, "/api/v1/events?date_from=2024-06-01&date_to=2024-05-01&limit=10")
    detail = json.load(refused.value)["detail"]
    assert page.locator("#status").inner_text() == detail


@needs_chromium
def test_each_snippet_is_copied_and_runs(server: Server, explorer: tuple[Page, Seen]) -> None:
    page, _ = explorer
    page.locator("input[name=actor]").fill("russia")
    page.locator("button[type=submit]").click()
    ready(page)
    for call in ("table", "map", "chart"):
        page.locator("select#call").select_option(call)
        url = page.locator("#call-url code").inner_text()
        assert "actor=russia" in url, call
        fetch = page.locator("#snippet-fetch").inner_text()
        page.locator("button[data-copy=snippet-fetch]").click()
        assert page.evaluate("navigator.clipboard.readText()") == fetch
        # What the snippets get is what a direct call answers.
        answer = api(server, url.removeprefix(server.url))
        items = answer["features"] if call == "map" else answer["data"]
        assert items, call
        # The fetch snippet, as pasted into the browser's console.
        assert page.evaluate(f"async () => {{ {fetch}\n return page; }}") == answer
        python = page.locator("#snippet-python").inner_text()
        printed = subprocess.run(
            [sys.executable, "-c", python], capture_output=True, text=True, check=True
        ).stdout
        assert str(items[0].get("id", items[0].get("key"))) in printed, call
        if shutil.which("curl") is not None:
            curl = page.locator("#snippet-curl").inner_text()
            body = subprocess.run(["bash", "-c", curl], capture_output=True, check=True).stdout
            assert json.loads(body) == answer, call


@needs_chromium
def test_opened_again_the_page_fetches_no_library_or_border(
    server: Server, explorer: tuple[Page, Seen]
) -> None:
    page, _ = explorer
    page.goto(f"{server.url}/")
    ready(page)
    page.wait_for_load_state("networkidle")
    transferred = dict(
        page.evaluate(
            """() => performance.getEntriesByType('resource')
                .map(entry => [new URL(entry.name).pathname, entry.transferSize])"""
        )
    )
    vendored = {path: size for path, size in transferred.items() if "/static/vendor/" in path}
    assert len(vendored) == 6
    # Each read from the browser's cache: zero bytes over the network.
    assert set(vendored.values()) == {0}, vendored
