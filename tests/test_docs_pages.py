"""The documents Salvo serves: the codebook rendered from the schemas, and the README,
guide, CHANGELOG, problems page and codebook as HTML whose every link answers, and
every problem type's URI leading to its explanation."""

import ast
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from flask.testing import FlaskClient

from api import problems
from api.docs import _markdown, pages
from schemas.codebook import VOCABULARIES, render
from schemas.event import EventSchema

ROOT = Path(__file__).resolve().parent.parent
HTML = {"Accept": "text/html"}
CODEBOOK = ROOT / "docs" / "codebook.md"


def test_committed_codebook_is_what_the_schemas_render() -> None:
    assert CODEBOOK.read_text() == render(), (
        "docs/codebook.md is stale: run `make codebook` and commit it"
    )


def test_the_codebook_lists_every_field_and_code() -> None:
    text = CODEBOOK.read_text()
    for name in EventSchema().fields:
        assert f"| `{name}` |" in text, name
    for field in ("location.latitude", "munitions[].intercepted", "casualties.killed.high"):
        assert f"| `{field}` |" in text, field
    for vocabulary in VOCABULARIES:
        assert f"### {vocabulary.title}\n" in text
        for code in vocabulary.values:
            assert f"| `{code}` |" in text, code


class Page(HTMLParser):
    """The links and element ids of an HTML page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.row_ids: set[str] = set()
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "a" and attributes.get("href"):
            self.links.append(str(attributes["href"]))
        if attributes.get("id"):
            self.ids.add(str(attributes["id"]))
            if tag == "tr":
                self.row_ids.add(str(attributes["id"]))


def crawl(client: FlaskClient) -> dict[str, Page]:
    """Every served document, and every document they link to, parsed."""
    parsed: dict[str, Page] = {}
    waiting = list(pages().values())
    while waiting:
        route = waiting.pop()
        if route in parsed:
            continue
        response = client.get(route)
        assert response.status_code == 200, route
        assert response.content_type == "text/html; charset=utf-8", route
        parsed[route] = Page(response.get_data(as_text=True))
        for link in parsed[route].links:
            path = urlsplit(link).path
            if path in pages().values():
                waiting.append(path)
    return parsed


def test_the_documents_are_served_as_html(client: FlaskClient) -> None:
    parsed = crawl(client)
    assert {"/guide", "/changelog", "/docs/codebook", "/docs/problems"} <= set(parsed)
    readme = client.get("/guide").get_data(as_text=True)
    assert '<h2 id="partners-guide">Partners\' guide</h2>' in readme
    assert "<table>" in readme and "```" not in readme


def test_every_link_of_every_document_answers(client: FlaskClient) -> None:
    """Relative links of the Markdown (`docs/problems.md`, `#formats`) are rewritten
    to the routes that serve them; every link on the server answers 200, and every
    link to a section finds its heading."""
    parsed = crawl(client)
    checked = set()
    for route, page in parsed.items():
        for link in page.links:
            url = urlsplit(urljoin(route, link))
            if url.scheme in ("http", "https") and url.netloc != "localhost":
                continue  # another site's: not reachable from the tests
            target = url.path + (f"?{url.query}" if url.query else "")
            if target not in checked:
                assert client.get(target).status_code == 200, (route, link)
                checked.add(target)
            if url.fragment:
                assert url.fragment in parsed[url.path].ids, (route, link)
    # The documents link to each other, to the reference and to the API.
    assert {"/guide", "/docs/codebook", "/docs/problems", "/changelog", "/api/v1/docs"} <= {
        urlsplit(link).path for link in parsed["/docs/codebook"].links
    }


def test_raw_html_in_a_document_is_shown_as_text(client: FlaskClient) -> None:
    """The documents are the project's own, but the renderer passes no markup through."""
    html = client.get("/docs/codebook").get_data(as_text=True)
    assert "<script" not in html
    rendered = _markdown().render("<script>alert(1)</script> [x](javascript:alert(1))")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert "<a" not in rendered


def test_an_unknown_document_is_a_404_problem(client: FlaskClient) -> None:
    response = client.get("/docs/nothing-here")
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert "/docs/codebook" in response.get_json()["detail"]


def problem_types_in_the_code() -> set[str]:
    """Every problem type the server's code names: each string literal of api/ and
    schemas/ that is a `/problems/...` URI, wherever it is declared (api/problems.py,
    api/params.py...), so that a type added anywhere is checked."""
    return {
        node.value
        for package in ("api", "schemas")
        for path in (ROOT / package).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"/problems/[a-z0-9-]+", node.value)
    }


def test_every_problem_type_leads_to_its_explanation(client: FlaskClient) -> None:
    """A problem's `type` is a URI a person can open: it leads (303) to the problem
    types' page, whose row for that type carries the URI's fragment."""
    emitted = problem_types_in_the_code()
    declared = {
        value
        for value in vars(problems).values()
        if isinstance(value, str) and re.fullmatch(r"/problems/.+", value)
    }
    assert declared <= emitted and "/problems/malformed-body" in emitted
    documented: set[str] = set()
    for problem_type in sorted(emitted):
        response = client.get(problem_type)
        assert response.status_code == 303, problem_type
        target = urlsplit(response.headers["Location"])
        assert target.fragment == problem_type.rsplit("/", 1)[1]
        opened = client.get(problem_type, follow_redirects=True)
        assert opened.status_code == 200, problem_type
        assert opened.content_type == "text/html; charset=utf-8", problem_type
        page = Page(opened.get_data(as_text=True))
        assert target.fragment in page.row_ids, problem_type
        documented = page.row_ids
    # Every type the page explains is one the code can answer with.
    assert {f"/problems/{row}" for row in documented} == emitted


def test_an_unknown_problem_type_is_a_404_problem(client: FlaskClient) -> None:
    response = client.get("/problems/no-such-problem")
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert "/docs/problems" in response.get_json()["detail"]


# Every HTML page: the documents, Swagger UI's, the problem types' links to one, and
# the explorer at `/`, whose rule the others follow.
PAGES_AND_LINKS = [*pages().values(), "/api/v1/docs", "/problems/invalid-parameters", "/"]


@pytest.mark.parametrize("path", PAGES_AND_LINKS)
def test_a_page_refuses_an_unknown_parameter_as_every_get_does(
    client: FlaskClient, path: str
) -> None:
    """The pages take no query parameters: an unknown one (a misspelt or made-up one,
    a tracker's) is the 400 problem every other GET answers, browsers included, as
    the explorer at `/` does; jQuery's cache-buster `_` is ignored."""
    refused = client.get(f"{path}?utm_source=newsletter&_=1", headers=HTML)
    assert refused.status_code == 400, path
    assert refused.content_type == "application/problem+json"
    assert refused.get_json()["invalid_params"] == [
        {
            "name": "utm_source",
            "in": "query",
            "reason": "Unknown parameter. This endpoint takes: none.",
        }
    ]
    plain = client.get(path, headers=HTML)
    busted = client.get(f"{path}?_=1733240000000", headers=HTML)
    assert plain.status_code == busted.status_code and plain.status_code in (200, 303)
    assert busted.data == plain.data
