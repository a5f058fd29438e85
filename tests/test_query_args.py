"""api.openapi.load_given loads a query string as marshmallow's load of the whole
schema does: the same values, or a refusal where marshmallow refuses."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from api.openapi import load_given
from schemas.query import (
    ChangesArgs,
    CommaSeparatedList,
    EventListArgs,
    LocationListArgs,
    StatsArgs,
)

# Values that pass and values that fail each kind of parameter.
VALUES = st.sampled_from(
    [
        "",
        "0",
        "1",
        "100",
        "1001",
        "-3",
        "ten",
        "2024-05-30",
        "2023-01-01",
        "2024-13-01",
        "2024-05-30T00:00:00Z",
        "missile_strike",
        "missile_strike,drone_strike",
        "missile_strike,spaceship",
        "ballistic_missile",
        "-date",
        "killed",
        "geojson",
        "UA",
        "Ukraine",
        "35.5,49.5,37.5,50.5",
        "37.5,49.5,35.5,50.5",
        "49.99,36.23",
        "91,0",
        "25.5",
        "Kharkiv Oblast",
        "russia",
        '"kharkiv" OR kyiv*',
        "WyItZGF0ZSIsIjIwMjQtMDUtMzAiLCJ4Il0",
    ]
)
# A valid value for each parameter, drawn as often as the pool above, so that
# combinations of valid parameters (and the rules across them) come up.
VALID = {
    "event_type": "missile_strike,drone_strike",
    "date_from": "2024-05-30",
    "date_to": "2023-01-01",
    "country": "ua",
    "admin1": "Kharkiv Oblast",
    "location": "kharkiv",
    "bbox": "35.5,49.5,37.5,50.5",
    "near": "49.99,36.23",
    "radius_km": "25.5",
    "actor": "russia",
    "weapon": "missile,drone",
    "min_killed": "3",
    "min_injured": "0",
    "updated_since": "2024-05-30T00:00:00+02:00",
    "q": "kharkiv*",
    "sort": "killed",
    "limit": "20",
    "cursor": "WyItZGF0ZSIsIjIwMjQtMDUtMzAiLCJ4Il0",
    "format": "ndjson",
    "group_by": "admin1",
    "precision": "city",
    "since": "abc",
}
SCHEMAS = [EventListArgs(), StatsArgs(), LocationListArgs(), ChangesArgs()]


def loaded(load: Any, data: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return load(data)
    except ValidationError:
        return None


@settings(max_examples=1000, deadline=None)
@given(data=st.data())
def test_loading_the_given_parameters_is_loading_the_schema(data: st.DataObject) -> None:
    schema = data.draw(st.sampled_from(SCHEMAS))
    names = data.draw(st.sets(st.sampled_from([*sorted(schema.fields), "colour"]), max_size=6))
    query = {}
    for name in names:
        values = st.one_of(st.sampled_from([VALID.get(name, "")]), VALUES)
        if isinstance(schema.fields.get(name), CommaSeparatedList):
            query[name] = data.draw(st.lists(values, min_size=1, max_size=3))
        else:
            query[name] = data.draw(values)
    expected = loaded(schema.load, query)
    assert loaded(lambda q: load_given(schema, q), query) == expected
