"""Edge cases of the event model's validation rules."""

import copy
from typing import Any

import pytest
from marshmallow import ValidationError

from schemas.event import EstimateSchema, EventSchema, MunitionSchema

VALID_EVENT: dict[str, Any] = {
    "id": "test-event",
    "event_type": "missile_strike",
    "date": "2024-05-30",
    "date_precision": "day",
    "location": {
        "id": "ua-kharkiv",
        "name": "Kharkiv",
        "admin1": "Kharkiv Oblast",
        "country": "Ukraine",
        "country_code": "UA",
        "latitude": 49.9935,
        "longitude": 36.2304,
        "precision": "city",
    },
    "actors": [{"name": "Military Forces of Russia", "role": "initiator", "kind": "state_forces"}],
    "munitions": [{"category": "missile", "launched": 8, "reported_by": "Governor"}],
    "casualties": {"killed": None, "injured": {"best": 4, "qualifier": "at_least"}},
    "reported_by": [{"name": "Governor", "kind": "official"}],
    "source": {"id": "article", "title": "An article", "published": "2024-05-30"},
    "notes": "A test event.",
}


def errors_of(schema: Any, data: dict[str, Any]) -> Any:
    with pytest.raises(ValidationError) as raised:
        schema.load(data)
    return raised.value.messages


def with_changes(**paths: Any) -> dict[str, Any]:
    """VALID_EVENT with values replaced at dotted paths ('location.latitude')."""
    event = copy.deepcopy(VALID_EVENT)
    for path, value in paths.items():
        *parents, last = path.split("__")
        target: Any = event
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[int(last) if last.isdigit() else last] = value
    return event


def test_the_valid_event_loads() -> None:
    event = EventSchema().load(VALID_EVENT)
    assert event["casualties"]["injured"] == {
        "best": 4,
        "low": 4,
        "high": None,
        "qualifier": "at_least",
        "reported_by": None,
    }
    assert event["munitions"][0]["intercepted"] is None


@pytest.mark.parametrize(
    ("munition", "field", "message"),
    [
        ({"launched": -1}, "launched", "Must be greater than or equal to 0"),
        ({"intercepted": -3}, "intercepted", "Must be greater than or equal to 0"),
        ({"launched": 5, "intercepted": 6}, "intercepted", "intercepted (6) exceeds launched (5)."),
        (
            {"launched": 5, "intercepted": 3, "not_reached": 2, "hit": 1},
            "intercepted",
            "intercepted + not_reached + hit (6) exceeds launched (5).",
        ),
        ({"launched": True}, "launched", "Not a valid integer."),
        ({"launched": 2.5}, "launched", "Not a valid integer."),
        ({"launched": "8"}, "launched", "Not a valid integer."),
        ({"category": "tank"}, "category", "Must be one of:"),
    ],
)
def test_munition_counts_are_bounded(munition: dict, field: str, message: str) -> None:
    errors = errors_of(MunitionSchema(), {"category": "missile", **munition})
    assert message in errors[field][0]


@pytest.mark.parametrize(
    "munition",
    [
        {"launched": 5, "intercepted": 5},
        {"launched": None, "intercepted": 32},
        {"launched": 51, "intercepted": None},
        {"launched": 10, "intercepted": 6, "not_reached": 2, "hit": 2},
    ],
)
def test_intercepted_up_to_launched_or_unknown_is_valid(munition: dict) -> None:
    assert MunitionSchema().load({"category": "drone", **munition})["category"] == "drone"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("location__latitude", 90.0001, "location"),
        ("location__latitude", -91, "location"),
        ("location__longitude", 180.5, "location"),
        ("location__longitude", float("nan"), "location"),
        ("location__precision", "street", "location"),
        ("location__country_code", "UKR", "location"),
        ("date_precision", "fortnight", "date_precision"),
        ("event_type", "artillery_duel", "event_type"),
        ("id", "Has Spaces", "id"),
    ],
)
def test_out_of_range_values_are_refused(path: str, value: Any, message: str) -> None:
    assert message in errors_of(EventSchema(), with_changes(**{path: value}))


MONTH_START = "A month-precise date must be the first day of the month."
YEAR_START = "A year-precise date must be 1 January."


@pytest.mark.parametrize(
    ("date", "precision", "error"),
    [
        ("2024-05-01", "month", None),
        ("2024-05-30", "month", MONTH_START),
        ("2024-01-01", "year", None),
        ("2024-02-01", "year", YEAR_START),
        ("2024-05-30", "day", None),
    ],
)
def test_coarse_dates_are_the_first_day_of_their_period(
    date: str, precision: str, error: str | None
) -> None:
    data = with_changes(date=date, date_precision=precision)
    if error is None:
        assert EventSchema().load(data)["date_precision"] == precision
    else:
        assert errors_of(EventSchema(), data) == {"date": [error]}


def test_region_precision_needs_admin1() -> None:
    data = with_changes(location__precision="region", location__admin1=None)
    assert errors_of(EventSchema(), data) == {
        "location": {"admin1": ["A region-precise location must name its admin1."]}
    }


@pytest.mark.parametrize(
    ("estimate", "loaded_or_error"),
    [
        ({"best": 4, "qualifier": "exact"}, {"low": 4, "high": 4}),
        ({"best": 4, "qualifier": "at_least"}, {"low": 4, "high": None}),
        ({"best": 10, "qualifier": "at_most"}, {"low": 0, "high": 10}),
        (
            {"best": 20, "low": 15, "high": 25, "qualifier": "approximately"},
            {"low": 15, "high": 25},
        ),
        ({"best": 20, "qualifier": "approximately"}, {"low": None, "high": None}),
        (
            {"best": 4, "high": 9, "qualifier": "at_least"},
            "A lower bound has low = best and no high.",
        ),
        ({"best": 4, "low": 3, "qualifier": "exact"}, "An exact figure has low = best = high."),
        (
            {"best": 4, "low": 5, "high": 9, "qualifier": "approximately"},
            "low (5) exceeds best (4).",
        ),
        ({"best": 4, "high": 3, "qualifier": "approximately"}, "high (3) is below best (4)."),
        ({"best": None, "qualifier": "exact"}, "Field may not be null."),
        ({"qualifier": "exact"}, "Missing data for required field."),
        ({"best": 4, "qualifier": "roughly"}, "Must be one of:"),
    ],
)
def test_casualty_estimates_keep_their_uncertainty(estimate: dict, loaded_or_error: Any) -> None:
    if isinstance(loaded_or_error, dict):
        loaded = EstimateSchema().load(estimate)
        assert {"low": loaded["low"], "high": loaded["high"]} == loaded_or_error
    else:
        messages = errors_of(EstimateSchema(), estimate)
        assert any(loaded_or_error in m for ms in messages.values() for m in ms)


def test_a_figure_must_name_a_listed_reporter() -> None:
    data = with_changes(munitions__0__reported_by="Somebody else")
    assert errors_of(EventSchema(), data) == {
        "munitions": {0: {"reported_by": ["'Somebody else' is not in reported_by."]}}
    }


def test_the_acled_mapping_is_output_only() -> None:
    data = with_changes(acled={"event_type": "Battles"})
    assert errors_of(EventSchema(), data) == {"acled": ["Unknown field."]}


def test_dump_adds_the_acled_mapping() -> None:
    dumped = EventSchema().dump(EventSchema().load(VALID_EVENT))
    assert dumped["acled"] == {
        "disorder_type": "Political violence",
        "event_type": "Explosions/Remote violence",
        "sub_event_type": "Shelling/artillery/missile attack",
    }


def test_shared_shapes_load_the_same_every_time() -> None:
    schema = EventSchema()
    first = schema.load(VALID_EVENT)
    first["location"]["name"] = "changed by a caller"
    first["casualties"]["injured"]["best"] = 999  # a shape holding a shape
    second = schema.load(VALID_EVENT)
    assert second["location"]["name"] == "Kharkiv"
    assert second["casualties"]["injured"]["best"] == 4
    assert second == EventSchema().load(copy.deepcopy(VALID_EVENT))


def test_a_shared_shape_that_failed_fails_again() -> None:
    bad = with_changes(location__latitude=123.0)
    for _ in range(2):
        assert "latitude" in errors_of(EventSchema(), bad)["location"]


def test_shared_shapes_tell_values_of_different_types_apart() -> None:
    # "1" and 1 are different inputs: a remembered string must not answer for a number.
    assert EventSchema().load(with_changes(location__latitude=1))["location"]["latitude"] == 1.0
    assert "name" in errors_of(EventSchema(), with_changes(location__name=1))["location"]
    assert EventSchema().load(with_changes(location__name="1"))["location"]["name"] == "1"
