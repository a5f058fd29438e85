"""The one declaration per filter (api/store/filters.py): every parameter of a filtered
endpoint is a declared filter or one of its paging/sorting/grouping parameters,
and every declared filter narrows what each of its resources answers."""

from typing import Any

import pytest
from flask.testing import FlaskClient
from marshmallow import ValidationError, validates, validates_schema

from api.store import filters
from api.store.filters import (
    EVENTS,
    REGISTRY,
    EventListArgs,
    Filter,
    LocationListArgs,
    StatsArgs,
    filtered_args,
)
from schemas.query import EventPagingArgs, LocationPagingArgs, StatsQueryArgs

CASES = [(f, resource) for f in REGISTRY for resource in sorted(f.resources)]


def ids(case: tuple[Filter, str]) -> str:
    declared, resource = case
    return f"{resource}:{','.join(declared.params)}"


def listed(client: FlaskClient, resource: str, query: str = "") -> list[str]:
    response = client.get(f"/api/v1/{resource}?limit=1000&{query}")
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["data"]]


@pytest.mark.parametrize("case", CASES, ids=[ids(c) for c in CASES])
def test_every_declared_filter_narrows_its_resource(
    client: FlaskClient, case: tuple[Filter, str]
) -> None:
    declared, resource = case
    everything = listed(client, resource)
    narrowed = listed(client, resource, declared.example)
    assert set(narrowed) < set(everything), declared.example


@pytest.mark.parametrize("declared", [f for f in REGISTRY if EVENTS in f.resources])
def test_stats_and_exports_apply_the_same_filter(client: FlaskClient, declared: Filter) -> None:
    events = listed(client, "events", declared.example)
    stats = client.get(f"/api/v1/stats?{declared.example}").get_json()
    assert stats["data"][0]["events"] == len(events)
    ndjson = client.get(f"/api/v1/events?format=ndjson&{declared.example}").get_data()
    assert len(ndjson.splitlines()) == len(events)


@pytest.mark.parametrize("part", ["france", "ukrain", "a", "nobody by this name"])
@pytest.mark.parametrize("listed_at_most", [filters.MAX_LISTED_ACTORS, 1])
def test_stats_of_an_actor_count_the_events_listed(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, part: str, listed_at_most: int
) -> None:
    # A total lists the names an actor's part matches, or reads them as a subquery
    # past MAX_LISTED_ACTORS (1 here: `a` and `ukrain` match more than one name).
    monkeypatch.setattr(filters, "MAX_LISTED_ACTORS", listed_at_most)
    events = listed(client, "events", f"actor={part}")
    stats = client.get(f"/api/v1/stats?actor={part}&group_by=event_type").get_json()
    assert sum(group["events"] for group in stats["data"]) == len(events)
    places = client.get(f"/api/v1/locations?limit=1000&actor={part}").get_json()
    assert sum(place["event_count"] for place in places["data"]) == len(events)


@pytest.mark.parametrize(
    ("schema", "resource", "others"),
    [
        (EventListArgs, EVENTS, EventPagingArgs),
        (StatsArgs, EVENTS, StatsQueryArgs),
        # /locations takes the filters of /stats: those of events count its events.
        (LocationListArgs, EVENTS, LocationPagingArgs),
    ],
)
def test_a_parameter_is_a_declared_filter_or_a_documented_other(
    schema: Any, resource: str, others: Any
) -> None:
    filters = [f for f in REGISTRY if resource in f.resources]
    declared = [name for f in filters for name in f.params]
    assert list(schema().fields) == declared + list(others().fields)


def test_each_parameter_belongs_to_one_filter() -> None:
    names = [name for f in REGISTRY for name in f.params]
    assert len(names) == len(set(names))


def test_near_without_a_radius_uses_the_documented_default(client: FlaskClient) -> None:
    # Kharkiv's centre: Kharkiv (0 km) is within 25 km, Vovchansk (~50 km) is not.
    default = listed(client, "events", "near=49.9935,36.2304")
    assert default == listed(client, "events", "near=49.9935,36.2304&radius_km=25")
    assert default != listed(client, "events", "near=49.9935,36.2304&radius_km=100")


class OneShapeArgs(StatsQueryArgs):
    """/stats's other parameters with checks of their own, as marshmallow declares them."""

    @validates_schema
    def _one_shape(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "group_by" in data and "interval" in data:
            raise ValidationError("Not with group_by.", "interval")

    @validates("limit")
    def _even(self, value: int, **kwargs: Any) -> None:
        if value % 2:
            raise ValidationError("Not even.")


def test_the_checks_of_the_other_parameters_run_in_the_filtered_schema() -> None:
    """A check across parameters is marshmallow's own @validates_schema (or a field's
    @validates) on the schema of the other parameters; the filtered schema, which is
    not its subclass so that the filters come first, runs it beside the filters'."""
    schema = filtered_args("OneShapeStatsArgs", EVENTS, OneShapeArgs)()
    assert list(schema.fields) == list(StatsArgs().fields)
    assert schema.load({"group_by": "admin1", "limit": "2"})["group_by"] == "admin1"
    with pytest.raises(ValidationError) as refused:
        schema.load({"limit": "3"})
    assert refused.value.messages == {"limit": ["Not even."]}
    with pytest.raises(ValidationError) as refused:
        schema.load(
            {
                "group_by": "admin1",
                "interval": "month",
                "date_from": "2024-06-01",
                "date_to": "2024-05-01",
            }
        )
    assert refused.value.messages == {
        "interval": ["Not with group_by."],
        "date_from": ["date_from is after date_to."],
    }
