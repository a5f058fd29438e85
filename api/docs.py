"""What the interactive docs need beside flask-smorest's Swagger UI page: its assets,
served from the swagger-ui-bundle package so that the docs work with no internet,
the OpenAPI document as YAML, and the project's Markdown documents as HTML pages
(the README as the partners' guide, the CHANGELOG, docs/: the codebook, the problem
types...), their links between each other rewritten to the routes that serve them."""

import functools
import re
from pathlib import Path
from typing import Any

import swagger_ui_bundle
from flask import Blueprint, Flask, Response, render_template, request, send_from_directory
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

from api.config import PROJECT_ROOT
from api.examples import BASE_URL
from api.openapi import contract_api
from api.params import RequestParser
from api.problems import PROBLEM_TYPES, Problem
from schemas.query import NoArgs

blp = Blueprint("docs", __name__)
ASSETS = Path(swagger_ui_bundle.swagger_ui_path)
ASSETS_URL = "/api/v1/docs/assets/"
DOCS = PROJECT_ROOT / "docs"
# The assets change only with the package; a day is safe and spares revalidations.
ASSET_MAX_AGE = 86400


@blp.get(f"{ASSETS_URL}<path:filename>")
def asset(filename: str) -> Response:
    return send_from_directory(ASSETS, filename, max_age=ASSET_MAX_AGE)


@blp.get("/favicon.ico")
def favicon() -> Response:
    """No icon: an empty answer rather than a 404, which browsers log as an error."""
    response = Response(status=204)
    response.headers["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE}"
    return response


@blp.get("/api/v1/openapi.yaml")
def openapi_yaml() -> Response:
    return Response(contract_api().contract("yaml"), content_type="application/yaml; charset=utf-8")


# Each document served, by its path in the repository, and the route serving it; a
# document added to docs/ is served with no change here.
def pages() -> dict[str, str]:
    served = {"README.md": "/guide", "CHANGELOG.md": "/changelog"}
    served |= {f"docs/{path.name}": f"/docs/{path.stem}" for path in sorted(DOCS.glob("*.md"))}
    return served


# Repository files that are served under another path, for links to them.
SERVED_FILES = {"openapi.yaml": "/api/v1/openapi.yaml"}


# The HTML pages, and the problem types' links to one: like `/`, they take no query
# parameters, so an unknown one is the same 400 problem as on every other GET, and
# `_`, the cache-buster, is ignored (docs/design.md, "Documents as HTML").
PAGES = frozenset(
    {"docs.guide", "docs.changelog", "docs.document", "docs.problem_type"}
    # Swagger UI's page, which flask-smorest serves.
    | {"api-docs.openapi_swagger_ui"}
)
_PARSER = RequestParser()
_NO_ARGS = NoArgs()


def refuse_parameters() -> None:
    """before_request, after the request's id, key and limit (as an operation's own
    parameters are read in its view): a page's query string is refused unless empty
    or `_` alone."""
    if request.endpoint in PAGES:
        _PARSER.parse(_NO_ARGS, location="query")


def init_app(app: Flask) -> None:
    app.before_request(refuse_parameters)


@blp.get("/guide")
def guide() -> Response:
    return _page("README.md")


@blp.get("/changelog")
def changelog() -> Response:
    return _page("CHANGELOG.md")


@blp.get("/docs/<name>")
def document(name: str) -> Response:
    return _page(f"docs/{name}.md")


# Where each problem type is explained: a row of this document's table, whose id is
# the type's last segment (`/problems/invalid-parameters`: `#invalid-parameters`).
PROBLEMS_DOCUMENT = "docs/problems.md"


@blp.get(f"{PROBLEM_TYPES}<name>")
def problem_type(name: str) -> Response:
    """A problem's `type` (`/problems/invalid-parameters`) is a URI a person can open:
    it leads (303 See Other: the type is not itself a document) to its row of the
    problem types' page. Clients still compare it as a string."""
    route = pages()[PROBLEMS_DOCUMENT]
    if name not in _document(PROBLEMS_DOCUMENT)[2]:
        raise Problem(
            404,
            f"No problem type is {PROBLEM_TYPES}{name}; the problem types are listed at {route}.",
        )
    return Response(status=303, headers={"Location": f"{route}#{name}"})


def _page(path: str) -> Response:
    title, body, _ = _document(path)
    html = render_template("page.html", title=title, body=body, pages=_NAVIGATION)
    return Response(html, content_type="text/html; charset=utf-8")


def _document(path: str) -> tuple[str, str, frozenset[str]]:
    """A served document's title, HTML body and element ids; a 404 if none is served
    at `path`."""
    source = PROJECT_ROOT / path
    if path not in pages() or not source.is_file():
        raise Problem(
            404,
            f"No document is served at this path; the documents are: "
            f"{', '.join(pages().values())}.",
        )
    return _rendered(path, source.stat().st_mtime_ns)


# The pages every page links to, in the order a newcomer needs them.
_NAVIGATION = (
    ("Guide", "/guide"),
    ("API reference", "/api/v1/docs"),
    ("Codebook", "/docs/codebook"),
    ("Problem types", "/docs/problems"),
    ("Changelog", "/changelog"),
)


@functools.lru_cache(maxsize=32)
def _rendered(path: str, mtime_ns: int) -> tuple[str, str, frozenset[str]]:
    """The document's title (its first heading), body as HTML and the ids of its
    elements, rendered once per version of the file: the README took 180-230 ms to
    render on the shared 2-core machine."""
    markdown = _markdown()
    env: dict[str, Any] = {"source": path}
    tokens = markdown.parse((PROJECT_ROOT / path).read_text(encoding="utf-8"), env)
    title = next(
        (tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"), path
    )
    ids = frozenset(str(t.attrGet("id")) for t in tokens if t.attrGet("id") is not None)
    return title, markdown.renderer.render(tokens, markdown.options, env), ids


def _markdown() -> MarkdownIt:
    """CommonMark with GitHub's tables, raw HTML off: the documents are the project's
    own, but nothing in them is passed to the browser as markup."""
    markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    markdown.core.ruler.push("salvo_links", _rewrite_links)
    markdown.core.ruler.push("salvo_anchors", _heading_ids)
    markdown.core.ruler.push("salvo_problem_types", _problem_type_ids)
    return markdown


def _rewrite_links(state: StateCore) -> None:
    """A link to another served document goes to its route (README.md's
    `docs/operations.md#x` to `/docs/operations#x`), one to `make run`'s address to the
    same path on the server that serves the page, and one to a file that is not
    served loses its link (its text stays)."""
    source = Path(state.env.get("source", "README.md")).parent
    served = pages()
    for token in state.tokens:
        if token.type != "inline" or not token.children:
            continue
        children: list[Token] = []
        dropped = 0
        for child in token.children:
            if child.type == "link_open":
                href = _served_href(str(child.attrGet("href") or ""), source, served)
                if href is None:
                    dropped += 1
                    continue
                child.attrSet("href", href)
            elif child.type == "link_close" and dropped:
                dropped -= 1
                continue
            children.append(child)
        token.children = children


def _served_href(href: str, source: Path, served: dict[str, str]) -> str | None:
    if href.startswith(BASE_URL):
        return href.removeprefix(BASE_URL) or "/"
    if re.match(r"^[a-z][a-z0-9+.-]*:", href) or href.startswith(("/", "#")):
        return href
    target, _, fragment = href.partition("#")
    path = (source / target).as_posix()
    # docs/../README.md is README.md
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            parts = parts[:-1]
        elif part not in ("", "."):
            parts.append(part)
    resolved = "/".join(parts)
    route = served.get(resolved) or SERVED_FILES.get(resolved)
    if route is None:
        return None
    return f"{route}#{fragment}" if fragment else route


def _heading_ids(state: StateCore) -> None:
    """Each heading gets the id GitHub gives it, so that the documents' links to
    sections (`#partners-guide`) work on both."""
    seen: dict[str, int] = {}
    for heading, inline in zip(state.tokens, state.tokens[1:], strict=False):
        if heading.type != "heading_open":
            continue
        text = "".join(
            c.content for c in inline.children or [] if c.type in ("text", "code_inline")
        )
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        heading.attrSet("id", f"{slug}-{count}" if count else slug)


def _problem_type_ids(state: StateCore) -> None:
    """On the problem types' page, each row of a type (its first cell `/problems/x`)
    gets the id `x`, where the type's URI leads."""
    if state.env.get("source") != PROBLEMS_DOCUMENT:
        return
    tokens = state.tokens
    for row, cell, inline in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if row.type != "tr_open" or cell.type != "td_open" or len(inline.children or []) != 1:
            continue
        (code,) = inline.children or []
        found = re.fullmatch(f"{PROBLEM_TYPES}([a-z0-9-]+)", code.content)
        if code.type == "code_inline" and found:
            row.attrSet("id", found.group(1))
