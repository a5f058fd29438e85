"""Query-string parameters of the read endpoints.

Every schema here refuses unknown parameters, so a misspelt filter is a 400
naming it, never a silently unfiltered answer.
"""

import re
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from schemas.fields import MAX_COUNT, Timestamp
from schemas.vocabulary import EVENT_TYPES, LOCATION_PRECISIONS, MUNITION_CATEGORIES, describe

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

# Sort names and what they order by; the query layer maps each to an indexed
# SQL expression. A leading '-' means descending.
EVENT_SORTS = {
    "date": "Event date, oldest first.",
    "-date": "Event date, newest first (the default).",
    "killed": "Best estimate of people killed, lowest first; events without a figure first.",
    "-killed": "Best estimate of people killed, highest first; events without a figure last.",
    "injured": "Best estimate of people injured, lowest first; events without a figure first.",
    "-injured": "Best estimate of people injured, highest first; events without a figure last.",
}

EVENT_FORMATS = {
    "json": "`application/json`: a page in the {data, links, meta} envelope (the default).",
    "geojson": "`application/geo+json`: a page as an RFC 7946 FeatureCollection of Points, "
    "with links and meta beside the features.",
    "csv": "`text/csv`: every matching event, streamed, one flat row each (columns in the "
    "README); takes no limit or cursor.",
    "ndjson": "`application/x-ndjson`: every matching event, streamed, one JSON document per "
    "line; takes no limit or cursor.",
}

GROUPINGS = {
    "day": "Calendar day. Month- and year-precise events form groups of their own period "
    "(`2024-05`, `2024`) rather than being counted on the first day.",
    "week": "ISO week (`2024-W22`). Month- and year-precise events form groups of their own "
    "period.",
    "month": "Calendar month (`2024-05`). Year-precise events form a group of their year.",
    "admin1": "First-level region; country-precise events form a group with a null key.",
    "event_type": "Event type.",
}


class CommaSeparatedList(fields.List):
    """A parameter given several times, comma-separated, or both: a=x&a=y,z -> [x, y, z]."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.make_error("invalid")
        items = [item.strip() for v in value for item in v.split(",") if item.strip()]
        if not items:
            raise ValidationError("Give at least one value.")
        return super()._deserialize(list(dict.fromkeys(items)), attr, data, **kwargs)


_DECIMAL = r"-?[0-9]+(\.[0-9]+)?"


class _Coordinates(fields.String):
    """A fixed number of comma-separated decimal numbers, e.g. '36.1,49.9'."""

    count = 0
    example = ""

    def __init__(self, **kwargs: Any) -> None:
        self.pattern = rf"^{_DECIMAL}(,{_DECIMAL}){{{self.count - 1}}}$"
        kwargs["metadata"] = {
            "pattern": self.pattern,
            "example": self.example,
            **kwargs.get("metadata", {}),
        }
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> tuple[float, ...]:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(self.pattern, text):
            raise ValidationError(
                f"Must be {self.count} comma-separated decimal numbers, e.g. '{self.example}'."
            )
        return tuple(float(part) for part in text.split(","))


class BoundingBox(_Coordinates):
    count = 4
    example = "35.5,49.5,37.5,50.5"

    def _deserialize(self, *args: Any, **kwargs: Any) -> tuple[float, ...]:
        min_lon, min_lat, max_lon, max_lat = super()._deserialize(*args, **kwargs)
        if not all(-180 <= lon <= 180 for lon in (min_lon, max_lon)):
            raise ValidationError("Longitudes must be between -180 and 180.")
        if not all(-90 <= lat <= 90 for lat in (min_lat, max_lat)):
            raise ValidationError("Latitudes must be between -90 and 90.")
        if min_lat > max_lat:
            raise ValidationError("minLat must not exceed maxLat.")
        return min_lon, min_lat, max_lon, max_lat


class Point(_Coordinates):
    count = 2
    example = "49.99,36.23"

    def _deserialize(self, *args: Any, **kwargs: Any) -> tuple[float, ...]:
        lat, lon = super()._deserialize(*args, **kwargs)
        if not -90 <= lat <= 90 or not -180 <= lon <= 180:
            raise ValidationError("Must be a latitude (-90..90) and a longitude (-180..180).")
        return lat, lon


def _one_of(vocabulary: dict[str, Any], description: str, **kwargs: Any) -> fields.String:
    return fields.String(
        validate=validate.OneOf(list(vocabulary)),
        metadata={"description": f"{description}\n\n{describe(vocabulary)}"},
        **kwargs,
    )


def _name(description: str) -> fields.String:
    return fields.String(
        validate=validate.Length(min=1, max=200), metadata={"description": description}
    )


def _limit() -> fields.Integer:
    return fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"Page size, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})."},
    )


def _cursor() -> fields.String:
    return fields.String(
        validate=validate.Regexp(
            r"^[A-Za-z0-9_-]{1,512}$", error="Not a cursor issued by this API."
        ),
        metadata={
            "description": "Opaque position from a previous page's `links.next`; leave it out "
            "for the first page."
        },
    )


def _bbox() -> BoundingBox:
    return BoundingBox(
        metadata={
            "description": "minLon,minLat,maxLon,maxLat (WGS84, GeoJSON order). A minLon greater "
            "than maxLon crosses the antimeridian (RFC 7946).",
        }
    )


def _country() -> fields.String:
    return fields.String(
        validate=validate.Regexp(r"^[A-Za-z]{2}$", error="Must be an ISO 3166-1 alpha-2 code."),
        metadata={"description": "ISO 3166-1 alpha-2 country code, any case.", "example": "UA"},
    )


class QuerySchema(Schema):
    """A query string's parameters. Rules across parameters go in `check`, reshaping
    after the load in `finish`: marshmallow's load runs them as hooks, and
    api.openapi.query_args runs them after loading each parameter through its field."""

    class Meta:
        unknown = RAISE

    def check(self, data: dict[str, Any]) -> None:
        """Rules across parameters: raise ValidationError naming the parameter."""

    def finish(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        self.check(data)

    @post_load
    def _finish(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.finish(data)


class EventFilterArgs(QuerySchema):
    """Filters shared by /events and /stats; every one given must hold (AND)."""

    event_type = CommaSeparatedList(
        fields.String(validate=validate.OneOf(list(EVENT_TYPES))),
        metadata={
            "description": "One or several event types, repeated or comma-separated.\n\n"
            + describe(EVENT_TYPES)
        },
    )
    date_from = fields.Date(metadata={"description": "Events on or after this ISO date."})
    date_to = fields.Date(metadata={"description": "Events on or before this ISO date."})
    country = _country()
    admin1 = _name("First-level region, case-insensitive exact name, e.g. 'Kharkiv Oblast'.")
    location = _name("Place name, case-insensitive exact match, e.g. 'kharkiv'.")
    bbox = _bbox()
    near = Point(
        metadata={
            "description": "lat,lon of a centre point; needs `radius_km`.",
        }
    )
    radius_km = fields.Float(
        validate=validate.Range(min=0, max=20_000, min_inclusive=False),
        metadata={
            "description": "Radius around `near`, in kilometres (great-circle); needs `near`.",
            "exclusiveMinimum": True,
        },
    )
    actor = _name("Case-insensitive part of an actor's name, e.g. 'russia'.")
    weapon = CommaSeparatedList(
        fields.String(validate=validate.OneOf(list(MUNITION_CATEGORIES))),
        metadata={
            "description": "Events using one of these munition categories, repeated or "
            "comma-separated.\n\n" + describe(MUNITION_CATEGORIES)
        },
    )
    min_killed = fields.Integer(
        validate=validate.Range(min=0, max=MAX_COUNT),
        metadata={"description": "Events whose best estimate of people killed is at least this."},
    )
    min_injured = fields.Integer(
        validate=validate.Range(min=0, max=MAX_COUNT),
        metadata={"description": "Events whose best estimate of people injured is at least this."},
    )
    updated_since = Timestamp(
        "Events that Salvo created or changed at or after this instant (ISO 8601 with an "
        "offset, e.g. 2024-05-30T00:00:00Z); compare with `updated_at`."
    )
    q = fields.String(
        validate=validate.Length(min=1, max=500),
        metadata={
            "description": 'Full-text search (SQLite FTS5 syntax: words, "phrases", prefix*, '
            "AND/OR/NOT) over the notes and place names."
        },
    )

    def check(self, data: dict[str, Any]) -> None:
        if "date_from" in data and "date_to" in data and data["date_from"] > data["date_to"]:
            raise ValidationError("date_from is after date_to.", "date_from")
        if "near" in data and "radius_km" not in data:
            raise ValidationError("near needs radius_km.", "radius_km")
        if "radius_km" in data and "near" not in data:
            raise ValidationError("radius_km needs near.", "near")

    def finish(self, data: dict[str, Any]) -> dict[str, Any]:
        """near and radius_km describe one circle: hand the query layer (lat, lon, km)."""
        if "near" in data:
            data["near"] = (*data["near"], data.pop("radius_km"))
        return data


class EventListArgs(EventFilterArgs):
    sort = _one_of(EVENT_SORTS, "Order of the events.", load_default="-date")
    limit = _limit()
    cursor = _cursor()
    format = _one_of(
        EVENT_FORMATS,
        "Response format; without it the Accept header chooses, and JSON is the default.",
    )


class StatsArgs(EventFilterArgs):
    group_by = _one_of(GROUPINGS, "How to group the totals; leave out for one overall total.")


class LocationListArgs(QuerySchema):
    country = _country()
    admin1 = _name("First-level region, case-insensitive exact name.")
    precision = _one_of(LOCATION_PRECISIONS, "Only places of this precision.")
    bbox = _bbox()
    limit = _limit()
    cursor = _cursor()


class SourceListArgs(QuerySchema):
    limit = _limit()
    cursor = _cursor()


class ChangesArgs(QuerySchema):
    since = fields.String(
        validate=validate.Regexp(
            r"^[A-Za-z0-9_-]{1,512}$", error="Not a token issued by this API."
        ),
        metadata={
            "description": "Opaque position from a previous answer's `meta.since` (or the "
            "`since` in `links.next`); leave it out to start from the first change."
        },
    )
    limit = _limit()


class NoArgs(QuerySchema):
    """For endpoints that take no query parameters: any given is an error."""
