"""A query string loads the same through a schema narrowed to its parameters as
through the whole schema: the same values, or the same errors."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError

from api.openapi import narrowed
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
SCHEMAS = [EventListArgs(), StatsArgs(), LocationListArgs(), ChangesArgs()]


def outcome(schema: Schema, data: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "loaded", schema.load(data)
    except ValidationError as error:
        return "refused", error.normalized_messages()


@settings(max_examples=400)
@given(data=st.data())
def test_a_narrowed_schema_loads_like_the_whole_one(data: st.DataObject) -> None:
    schema = data.draw(st.sampled_from(SCHEMAS))
    names = data.draw(st.sets(st.sampled_from(sorted(schema.fields)), max_size=6))
    query = {
        name: (
            data.draw(st.lists(VALUES, min_size=1, max_size=3))
            if isinstance(schema.fields[name], CommaSeparatedList)
            else data.draw(VALUES)
        )
        for name in names
    }
    assert outcome(narrowed(schema, frozenset(query)), query) == outcome(schema, query)
