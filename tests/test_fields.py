"""GET /api/v1/events?fields=...: a sparse fieldset, for JSON pages, GeoJSON features
and NDJSON lines; the CSV exports refuse it."""

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from tests.test_article_facts import EVENTS

EVENT_FIELDS = (
    "id, event_type, acled, date, date_precision, date_end, location, actors, munitions, "
    "casualties, reported_by, source, notes, provenance, updated_at"
)


def get_json(client: FlaskClient, url: str, **kwargs: Any) -> Any:
    response = client.get(url, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json(force=True)


def local(url: str) -> str:
    """A link of the answer as the test client requests it."""
    split = urlsplit(url)
    return f"{split.path}?{split.query}"


def test_each_event_holds_its_id_and_the_fields_asked_for(client: FlaskClient) -> None:
    whole = get_json(client, "/api/v1/events?sort=date")["data"]
    narrowed = get_json(client, "/api/v1/events?sort=date&fields=event_type,date")["data"]
    assert [list(event) for event in narrowed] == [["id", "event_type", "date"]] * len(EVENTS)
    assert narrowed == [
        {"id": event["id"], "event_type": event["event_type"], "date": event["date"]}
        for event in whole
    ]


def test_the_fields_come_in_the_documents_order_whatever_the_order_asked(
    client: FlaskClient,
) -> None:
    narrowed = get_json(client, "/api/v1/events?limit=1&fields=notes,location,date,id")["data"]
    assert list(narrowed[0]) == ["id", "date", "location", "notes"]


def test_id_is_included_without_being_asked_for(client: FlaskClient) -> None:
    narrowed = get_json(client, "/api/v1/events?sort=date&fields=notes")["data"]
    assert [list(event) for event in narrowed] == [["id", "notes"]] * len(EVENTS)
    assert sorted(event["id"] for event in narrowed) == sorted(EVENTS)
    assert get_json(client, "/api/v1/events?sort=date&fields=id")["data"] == [
        {"id": event["id"]} for event in narrowed
    ]


def test_a_narrowed_field_is_the_whole_field_byte_for_byte(client: FlaskClient) -> None:
    # A chosen field is never narrowed inside: the whole object, floats as stored.
    url = "/api/v1/events?location=kharkiv&fields=location,casualties,munitions"
    (whole,) = get_json(client, "/api/v1/events?location=kharkiv")["data"]
    body = client.get(url).get_data()
    assert body.startswith(
        b'{"data":[{"id":"ua-2024-05-30-kharkiv-missile-strike","location":{"id":"ua-kharkiv",'
        b'"name":"Kharkiv","admin1":"Kharkiv Oblast","country":"Ukraine","country_code":"UA",'
        b'"latitude":49.9935,"longitude":36.2304,"precision":"city"},"munitions":'
    )
    (narrowed,) = json.loads(body)["data"]
    assert narrowed == {
        "id": whole["id"],
        "location": whole["location"],
        "munitions": whole["munitions"],
        "casualties": whole["casualties"],
    }


def test_a_field_an_event_does_not_have_stays_absent(client: FlaskClient) -> None:
    # date_end and provenance are absent from events without them (the curated ones),
    # as in whole documents: never null, never made up.
    narrowed = get_json(client, "/api/v1/events?sort=date&fields=date_end,provenance")["data"]
    assert narrowed == [{"id": event["id"]} for event in narrowed]
    assert len(narrowed) == len(EVENTS)


@pytest.mark.parametrize(
    "query",
    [
        "fields=date,event_type,date",
        "fields=date&fields=event_type",
        "fields=date,,event_type,",
        "fields=%20date%20,event_type&fields=date",
    ],
)
def test_names_repeated_or_spread_over_parameters_count_once(
    client: FlaskClient, query: str
) -> None:
    # As every list parameter of the API (event_type, weapon, precision) reads them.
    expected = get_json(client, "/api/v1/events?sort=date&fields=event_type,date")["data"]
    assert get_json(client, f"/api/v1/events?sort=date&{query}")["data"] == expected


@pytest.mark.parametrize("query", ["fields=", "fields=,", "fields=%20"])
def test_an_empty_fieldset_is_a_400(client: FlaskClient, query: str) -> None:
    # As an empty event_type: no field at all is not "every field", and leaving the
    # parameter out is the way to ask for whole events.
    response = client.get(f"/api/v1/events?{query}")
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert response.get_json()["invalid_params"] == [
        {"name": "fields", "in": "query", "reason": "Give at least one value."}
    ]


def test_unknown_fields_are_one_400_naming_them_and_listing_the_fields(
    client: FlaskClient,
) -> None:
    response = client.get("/api/v1/events?fields=date,latitude,event_type&fields=killed")
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    reason = f"Unknown fields 'latitude', 'killed'. An event's fields are: {EVENT_FIELDS}."
    assert response.get_json() == {
        "type": "/problems/invalid-parameters",
        "title": "Invalid request parameters",
        "status": 400,
        "detail": f"fields: {reason}",
        "instance": "/api/v1/events",
        "invalid_params": [{"name": "fields", "in": "query", "reason": reason}],
    }
    one = client.get("/api/v1/events?fields=location.latitude").get_json()
    assert one["invalid_params"] == [
        {
            "name": "fields",
            "in": "query",
            "reason": f"Unknown field 'location.latitude'. An event's fields are: {EVENT_FIELDS}.",
        }
    ]


def test_unknown_fields_are_named_with_every_other_refused_parameter(
    client: FlaskClient,
) -> None:
    body = client.get("/api/v1/events?fields=colour&limit=0").get_json()
    # In no set order: the parser's narrowed schema lists the parameters given as a set.
    assert sorted(param["name"] for param in body["invalid_params"]) == ["fields", "limit"]


@pytest.mark.parametrize("chosen", ["format=geojson", "accept"])
def test_geojson_narrows_the_properties_and_keeps_the_geometry_and_id(
    client: FlaskClient, chosen: str
) -> None:
    headers = {"Accept": "application/geo+json"} if chosen == "accept" else {}
    query = "format=geojson&" if chosen == "format=geojson" else ""
    whole = get_json(client, f"/api/v1/events?{query}sort=date", headers=headers)
    narrowed = get_json(
        client, f"/api/v1/events?{query}sort=date&fields=event_type,date", headers=headers
    )
    assert narrowed["type"] == "FeatureCollection"
    assert narrowed["features"] == [
        {
            "type": "Feature",
            "id": feature["id"],
            "geometry": feature["geometry"],
            "properties": {
                "id": feature["id"],
                "event_type": feature["properties"]["event_type"],
                "date": feature["properties"]["date"],
            },
        }
        for feature in whole["features"]
    ]
    assert narrowed["meta"] == whole["meta"]


def test_a_narrowed_geojson_page_is_a_fraction_of_the_whole(client: FlaskClient) -> None:
    whole = client.get("/api/v1/events?format=geojson&limit=1000").get_data()
    narrowed = client.get("/api/v1/events?format=geojson&limit=1000&fields=event_type").get_data()
    assert len(narrowed) < len(whole) / 4


@pytest.mark.parametrize("extra", ["", "&format=geojson"])
def test_the_page_links_keep_the_fields(client: FlaskClient, extra: str) -> None:
    url = f"/api/v1/events?sort=date&limit=5&fields=date{extra}"
    items = "features" if extra else "data"
    seen: list[str] = []
    pages = 0
    while url:
        response = client.get(url)
        body = response.get_json(force=True)
        pages += 1
        for item in body[items]:
            properties = item["properties"] if extra else item
            assert list(properties) == ["id", "date"]
            seen.append(properties["id"])
        links = body["links"]
        assert links["self"] == f"http://localhost{url}"
        for relation in ("next", "prev"):
            if links[relation] is not None:
                assert "fields=date" in urlsplit(links[relation]).query.split("&")
                assert f'<{links[relation]}>; rel="{relation}"' in response.headers["Link"]
        if links["prev"] is not None:
            previous = client.get(local(links["prev"])).get_json(force=True)
            assert len(previous[items]) == 5
        url = local(links["next"]) if links["next"] else ""
    assert pages == 4  # 5 + 5 + 5 + 2
    whole = get_json(client, "/api/v1/events?sort=date")["data"]
    assert seen == [event["id"] for event in whole]


@pytest.mark.parametrize("extra", ["", "&format=geojson"])
def test_each_fieldset_has_its_own_etag_and_revalidates(client: FlaskClient, extra: str) -> None:
    urls = [
        f"/api/v1/events?limit=5{extra}",
        f"/api/v1/events?limit=5{extra}&fields=date",
        f"/api/v1/events?limit=5{extra}&fields=date,location",
        f"/api/v1/events?limit=5{extra}&fields=event_type",
    ]
    etags = [client.get(url).headers["ETag"] for url in urls]
    assert len(set(etags)) == len(urls)
    for url, etag in zip(urls, etags, strict=True):
        again = client.get(url)
        assert again.headers["ETag"] == etag  # the same bytes, the same validator
        revalidated = client.get(url, headers={"If-None-Match": etag})
        assert revalidated.status_code == 304
        assert revalidated.headers["ETag"] == etag
    # Another fieldset's validator is not this one's: the whole answer comes back.
    stale = client.get(urls[1], headers={"If-None-Match": etags[2]})
    assert stale.status_code == 200
    assert stale.headers["ETag"] == etags[1]


def test_a_narrowed_page_is_compressed_and_revalidates_compressed(client: FlaskClient) -> None:
    url = "/api/v1/events?limit=1000&fields=event_type,date,location"
    coded = {"Accept-Encoding": "gzip"}
    first = client.get(url, headers=coded)
    assert first.headers["Content-Encoding"] == "gzip"
    assert first.headers["ETag"].endswith(':gzip"')
    again = client.get(url, headers={**coded, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("chosen", ["format=ndjson", "accept"])
def test_ndjson_lines_are_narrowed_as_the_json_events(client: FlaskClient, chosen: str) -> None:
    headers = {"Accept": "application/x-ndjson"} if chosen == "accept" else {}
    query = "format=ndjson&" if chosen == "format=ndjson" else ""
    response = client.get(f"/api/v1/events?{query}sort=date&fields=date,notes", headers=headers)
    assert response.status_code == 200
    assert response.content_type == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert lines == get_json(client, "/api/v1/events?sort=date&fields=date,notes")["data"]
    assert len(lines) == len(EVENTS)


def test_format_json_narrows_as_the_default_does(client: FlaskClient) -> None:
    assert get_json(client, "/api/v1/events?format=json&fields=date") == {
        **get_json(client, "/api/v1/events?fields=date"),
        "links": {
            "self": "http://localhost/api/v1/events?format=json&fields=date",
            "next": None,
            "prev": None,
        },
    }


@pytest.mark.parametrize(
    ("query", "headers", "chosen"),
    [
        ("format=csv&fields=date", {}, "csv"),
        ("format=acled-csv&fields=date", {}, "acled-csv"),
        ("fields=date", {"Accept": "text/csv"}, "csv"),
    ],
)
def test_the_csv_exports_refuse_fields(
    client: FlaskClient, query: str, headers: dict[str, str], chosen: str
) -> None:
    response = client.get(f"/api/v1/events?{query}", headers=headers)
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert response.get_json()["invalid_params"] == [
        {
            "name": "fields",
            "in": "query",
            "reason": f"The {chosen} export has fixed columns; fields narrows JSON events "
            "(json, geojson, ndjson). Leave it out, or use format=ndjson.",
        }
    ]


def test_a_csv_export_refuses_fields_with_its_paging_parameters(client: FlaskClient) -> None:
    body = client.get("/api/v1/events?format=csv&limit=5&fields=date").get_json()
    assert [param["name"] for param in body["invalid_params"]] == ["limit", "fields"]
