"""Keyset pagination: following links.next visits every matching event exactly once,
on both engines."""

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.test_article_facts import EVENTS
from tests.test_changes import loadable, writer_change


def follow(client: FlaskClient, url: str) -> list[list[dict]]:
    """Every page from url to the last, checking the Link header against links.next."""
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        pages.append(body["data"])
        next_url, prev_url = body["links"]["next"], body["links"]["prev"]
        relations = [
            f'<{url}>; rel="{rel}"' for url, rel in ((next_url, "next"), (prev_url, "prev")) if url
        ]
        assert response.headers.get("Link") == (", ".join(relations) or None)
        if next_url is not None:
            split = urlsplit(next_url)
            next_url = f"{split.path}?{split.query}"
        url = next_url
    return pages


def expected_order(sort: str) -> list[str]:
    """The seeded ids in sort order, computed from the article facts table."""
    if sort.lstrip("-") == "date":
        keys: dict[str, Any] = {event_id: fact[1] for event_id, fact in EVENTS.items()}
    else:
        # Only the Kharkiv strike has a casualty figure (4 injured); no event has killed.
        injured = {"ua-2024-05-30-kharkiv-missile-strike": 4}
        keys = {event_id: injured.get(event_id, -1) if sort.lstrip("-") == "injured" else -1
                for event_id in EVENTS}  # fmt: skip
    return sorted(EVENTS, key=lambda event_id: (keys[event_id], event_id), reverse=sort[0] == "-")


@pytest.mark.parametrize("sort", ["date", "-date", "killed", "-killed", "injured", "-injured"])
@pytest.mark.parametrize("limit", [1, 2, 5, 16, 17, 100])
def test_following_next_returns_every_event_once_in_order(
    client: FlaskClient, sort: str, limit: int
) -> None:
    pages = follow(client, f"/api/v1/events?sort={sort}&limit={limit}")
    assert [len(page) for page in pages[:-1]] == [limit] * (len(pages) - 1)
    assert [event["id"] for page in pages for event in page] == expected_order(sort)


def test_pages_keep_the_filters(client: FlaskClient) -> None:
    pages = follow(client, "/api/v1/events?admin1=Kharkiv%20Oblast&limit=4&sort=date")
    assert [len(page) for page in pages] == [4, 4, 1]
    assert {event["location"]["admin1"] for page in pages for event in page} == {"Kharkiv Oblast"}


def test_the_page_meta_describes_the_page(client: FlaskClient) -> None:
    body = client.get("/api/v1/events?limit=5&sort=date").get_json()
    assert body["meta"] == {
        "count": 5,
        "limit": 5,
        "sort": "date",
        "total": 17,
        "total_exact": True,
    }
    assert body["links"]["self"] == "http://localhost/api/v1/events?limit=5&sort=date"


def test_default_sort_is_newest_first_and_default_limit_100(client: FlaskClient) -> None:
    body = client.get("/api/v1/events").get_json()
    assert body["meta"] == {
        "count": 17, "limit": 100, "sort": "-date", "total": 17, "total_exact": True
    }  # fmt: skip
    assert [event["id"] for event in body["data"]] == expected_order("-date")


def test_inserts_between_pages_cause_no_duplicates_or_gaps(
    fresh_database: str, open_app: Callable[..., Flask]
) -> None:
    client = open_app(fresh_database).test_client()

    first = client.get("/api/v1/events?sort=-date&limit=5").get_json()
    seen = [event["id"] for event in first["data"]]

    # Another writer adds an event that sorts before the cursor and one after it.
    template = client.get(f"/api/v1/events/{seen[0]}").get_json()
    template.pop("acled")
    template.pop("updated_at")
    newer = {**template, "id": "inserted-newest", "date": "2024-06-15"}
    older = {**template, "id": "inserted-oldest", "date": "2023-01-01"}
    writer_change(fresh_database, create=newer)
    writer_change(fresh_database, create=older)

    rest = follow(
        client, urlsplit(first["links"]["next"]).path + "?" + urlsplit(first["links"]["next"]).query
    )
    seen += [event["id"] for page in rest for event in page]
    assert len(seen) == len(set(seen))
    assert set(seen) == set(EVENTS) | {"inserted-oldest"}


def test_totals_follow_another_writers_commits(
    fresh_database: str, open_app: Callable[..., Flask]
) -> None:
    # A listing's total is kept while the database is unchanged (SQLite: per read
    # connection, which this test client's requests share): each commit of another
    # writer must show in the next page's total, for its own filters and no others.
    client = open_app(fresh_database).test_client()

    def totals() -> tuple[int, int]:
        everything = client.get("/api/v1/events?limit=1").get_json()["meta"]["total"]
        kharkiv = client.get("/api/v1/events?admin1=Kharkiv%20Oblast&limit=1").get_json()
        return everything, kharkiv["meta"]["total"]

    assert totals() == totals() == (17, 9)
    template = loadable(client, expected_order("-date")[0])
    writer_change(fresh_database, create={**template, "id": "inserted-total", "date": "2024-06-15"})
    everything, kharkiv = totals()
    assert everything == 18
    assert kharkiv == 9 + (template["location"]["admin1"] == "Kharkiv Oblast")
    writer_change(fresh_database, delete="inserted-total")
    assert totals() == (17, 9)
