"""The explorer at `/`: the page a person opens first (docs/explorer.md).

The links of the page are followed with the test client; everything the page's
script does is checked in Debian's Chromium, driven by Playwright, against the
server `make run` starts (tests/server.py), as tests/test_browser.py does."""

import re
from html.parser import HTMLParser

from flask.testing import FlaskClient

HTML = {"Accept": "text/html"}


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
        response = client.get(url)
        if response.status_code != 200:
            broken[url] = response.status_code
    assert broken == {}
