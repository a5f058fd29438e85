"""Query-string parameters of the read endpoints: their field types, and the
parameters that are not filters (paging, sorting, formats, grouping).

The filters themselves are declared with their SQL in api/filters.py, which builds
the schemas of the filtered endpoints from these parts. Every schema refuses
unknown parameters and repeated single-valued ones, so a misspelt filter is a 400
naming it, never a silently unfiltered answer.
"""

import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from schemas.event import ONE_LINE, EventSchema
from schemas.fields import WholeMatch, vocabulary_field

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
# A page of stored documents (events, changes) stops growing once its items pass this
# many bytes, whatever its `limit` (api.pagination.items_within_bound): 1,000 events
# of the largest an event may be (~300 KB; docs/operations.md, "Threats and limits")
# would be a 300 MB page held in memory at once. The seed's events are ~1.5 KB: a page
# of 1,000 of them (~1.5 MB) is never cut.
MAX_PAGE_BYTES = 4 * 1024 * 1024

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
    "acled-csv": "`text/csv`: every matching event, streamed, as a row of an ACLED export "
    "(ACLED's columns in ACLED's order; docs/imports.md); takes no limit or cursor. Only "
    "chosen by name, never by the Accept header.",
}

GROUPINGS = {
    "event_type": "Event type.",
    "country": "Country (ISO 3166-1 alpha-2 code).",
    "admin1": "First-level region; events of places with no region form a row with a null key.",
}

INTERVALS = {
    "day": "Calendar days (`2024-05-30`). Events dated only to a week, month or year go to "
    "`coarser`.",
    "week": "ISO weeks, Monday to Sunday (`2024-W22`). Events dated only to a month or year go "
    "to `coarser`.",
    "month": "Calendar months (`2024-05`); week-precise events count in the month of their "
    "date. Events dated only to a year go to `coarser`.",
    "year": "Calendar years (`2024`); every event counts in the year of its date, so "
    "`coarser` is empty.",
}

STATS_FORMATS = {
    "json": "`application/json`: rows in the {data, coarser, links, meta} envelope (the default).",
    "csv": "`text/csv`: every row, series then coarser, one line each with flat columns "
    "(README); takes no limit or cursor.",
}

# A daily series of nearly three years is one page by default, of nearly fourteen at
# most: the figure a chart wants in one call, and the bound on a page's work.
STATS_DEFAULT_LIMIT = 1000
STATS_MAX_LIMIT = 5000


class CommaSeparatedList(fields.List):
    """A parameter given several times, comma-separated, or both: a=x&a=y,z -> [x, y, z]."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any]:
        return super()._deserialize(self._items(value), attr, data, **kwargs)

    def _items(self, value: Any) -> list[str]:
        """The values given, split at commas, stripped, each once, in the order given."""
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.make_error("invalid")
        items = [item.strip() for v in value for item in v.split(",") if item.strip()]
        if not items:
            raise ValidationError("Give at least one value.")
        return list(dict.fromkeys(items))


# The top-level fields of an event, in the order its documents hold them.
EVENT_FIELDS = tuple(EventSchema().fields)


class FieldSet(CommaSeparatedList):
    """A sparse fieldset: names of an event's top-level fields, given as any list
    parameter is. One reason names every unknown name and lists the fields, where a
    vocabulary's OneOf would say "must be one of" once per position."""

    def __init__(self, **kwargs: Any) -> None:
        # The OneOf documents the names as the items' enum in the contract.
        super().__init__(fields.String(validate=validate.OneOf(EVENT_FIELDS)), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any]:
        names = self._items(value)
        unknown = [name for name in names if name not in EVENT_FIELDS]
        if unknown:
            listed = ", ".join(f"'{name}'" for name in unknown)
            raise ValidationError(
                f"Unknown field{'s' if len(unknown) > 1 else ''} {listed}. An event's fields "
                f"are: {', '.join(EVENT_FIELDS)}."
            )
        return names


_DECIMAL = r"-?[0-9]+(\.[0-9]+)?"


class _Coordinates(fields.String):
    """A fixed number of comma-separated decimal numbers, e.g. '36.1,49.9'."""

    count = 0
    example = ""

    def __init__(self, **kwargs: Any) -> None:
        self.pattern = rf"^{_DECIMAL}(,{_DECIMAL}){{{self.count - 1}}}$"
        # The example goes in the description, not in the parameter's `example`: Swagger
        # UI's "Try it out" fills every parameter with its example, which would narrow
        # the query a reader runs without asking (swagger-ui issue #5776).
        metadata = kwargs.get("metadata", {})
        kwargs["metadata"] = {
            **metadata,
            "pattern": self.pattern,
            "description": f"{metadata.get('description', '')} Example: `{self.example}`.".strip(),
        }
        super().__init__(**kwargs)

    # A String in the spec (the text a client sends), loaded as another type; marshmallow
    # types String as Field[str], hence the override.
    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> tuple[float, ...]:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(self.pattern, text):
            raise ValidationError(
                f"Must be {self.count} comma-separated decimal numbers, e.g. '{self.example}'."
            )
        return tuple(float(part) for part in text.split(","))


class BoundingBox(_Coordinates):
    count = 4
    example = "35.5,49.5,37.5,50.5"

    def _deserialize(  # type: ignore[override]  # as _Coordinates
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> tuple[float, ...]:
        min_lon, min_lat, max_lon, max_lat = super()._deserialize(value, attr, data, **kwargs)
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

    def _deserialize(  # type: ignore[override]  # as _Coordinates
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> tuple[float, ...]:
        lat, lon = super()._deserialize(value, attr, data, **kwargs)
        if not -90 <= lat <= 90 or not -180 <= lon <= 180:
            raise ValidationError("Must be a latitude (-90..90) and a longitude (-180..180).")
        return lat, lon


def name_field(description: str) -> fields.String:
    # No stored name holds a control character (ONE_LINE), so a filter with one could
    # match nothing; PostgreSQL's text cannot hold a NUL at all, and refused the
    # statement as a database fault (503) where the client's input was at fault.
    return fields.String(
        validate=[validate.Length(min=1, max=200), ONE_LINE],
        metadata={"description": description},
    )


def limit_field(documents: bool = False) -> fields.Integer:
    """The page size; of a page of stored `documents`, bounded in bytes too."""
    description = f"Page size, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})."
    if documents:
        description += (
            f" A page also ends once its items pass {MAX_PAGE_BYTES // 2**20} MiB "
            "(4,194,304 bytes), with `links.next` continuing after its last item: follow "
            "`links.next` rather than counting items."
        )
    return fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": description},
    )


def cursor_field() -> fields.String:
    return fields.String(
        validate=WholeMatch(r"^[A-Za-z0-9_-]{1,512}$", error="Not a cursor issued by this API."),
        metadata={
            "description": "Opaque position from a previous page's `links.next`; leave it out "
            "for the first page."
        },
    )


def bbox_field() -> BoundingBox:
    return BoundingBox(
        metadata={
            "description": "minLon,minLat,maxLon,maxLat (WGS84, GeoJSON order). A minLon greater "
            "than maxLon crosses the antimeridian (RFC 7946).",
        }
    )


def country_field() -> fields.String:
    return fields.String(
        validate=WholeMatch(r"^[A-Za-z]{2}$", error="Must be an ISO 3166-1 alpha-2 code."),
        metadata={"description": "ISO 3166-1 alpha-2 country code, any case. Example: `UA`."},
    )


class QueryString(dict[str, Any]):
    """A query string's parameters as a schema loads them (a list for list-valued
    ones, one value otherwise), and the single-valued ones that were given twice."""

    def __init__(self, values: dict[str, Any], repeated: frozenset[str]) -> None:
        super().__init__(values)
        self.repeated = repeated


class QuerySchema(Schema):
    """A query string's parameters: unknown ones are refused, and so are repeated
    single-valued ones, in the same 400 as every other refused parameter. A check
    across parameters is marshmallow's `@validates_schema`, raising ValidationError."""

    class Meta:
        unknown = RAISE

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _given_once(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        repeated = sorted(getattr(original, "repeated", ()))
        if repeated:
            raise ValidationError(
                {
                    name: ["Given more than once; this parameter takes one value."]
                    for name in repeated
                }
            )


class EventPagingArgs(QuerySchema):
    """The parameters of /events beside its filters."""

    sort = vocabulary_field(EVENT_SORTS, "Order of the events.", load_default="-date")
    limit = limit_field(documents=True)
    cursor = cursor_field()
    format = vocabulary_field(
        EVENT_FORMATS,
        "Response format; without it the Accept header chooses, and JSON is the default.",
    )
    # Last: from here on in this class body, `fields` is the parameter, not marshmallow's
    # module. marshmallow's metaclass takes declared fields out of the class, so a
    # schema's own `fields` (its bound fields, set on each instance) is untouched.
    fields = FieldSet(  # type: ignore[assignment]
        metadata={
            "description": "Only these top-level fields of each event, repeated or "
            "comma-separated (a sparse fieldset): `fields=event_type,date,location` for a "
            "map. `id` is always included, and the fields come in the event's own order, "
            "whatever the order asked. With `format=geojson` it narrows each feature's "
            "`properties` (the feature's `id` and geometry stay); NDJSON lines are narrowed "
            "the same way. The CSV exports have fixed columns and refuse it (a 400). Leave "
            "it out for whole events. A narrowed event is a `PartialEvent`."
        }
    )


class StatsQueryArgs(QuerySchema):
    """The parameters of /stats beside its filters."""

    group_by = vocabulary_field(
        GROUPINGS,
        "One row per group; leave out (with no interval) for one overall total. With "
        "`interval`, a series per group (small multiples).",
    )
    interval = vocabulary_field(
        INTERVALS,
        "A time series: one row per period from `date_from` to `date_to` (or from the first "
        "to the last period with events), periods without events included. With "
        "`group_by`, the whole series of each group with matching events, groups in key "
        "order, each row naming its `group`.",
    )
    limit = fields.Integer(
        load_default=STATS_DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=STATS_MAX_LIMIT),
        metadata={
            "description": f"Rows per page, 1 to {STATS_MAX_LIMIT} (default {STATS_DEFAULT_LIMIT})."
        },
    )
    cursor = cursor_field()
    format = vocabulary_field(
        STATS_FORMATS,
        "Response format; without it the Accept header chooses, and JSON is the default.",
    )


class PagingArgs(QuerySchema):
    limit = limit_field()
    cursor = cursor_field()


LOCATION_FORMATS = {
    "json": "`application/json`: a page in the {data, links, meta} envelope (the default).",
    "geojson": "`application/geo+json`: a page as an RFC 7946 FeatureCollection of Points, "
    "each place with its `event_count` as properties, links and meta beside the features.",
}


class LocationPagingArgs(PagingArgs):
    """The parameters of /locations beside its filters."""

    format = vocabulary_field(
        LOCATION_FORMATS,
        "Response format; without it the Accept header chooses, and JSON is the default.",
    )


class ChangesArgs(QuerySchema):
    since = fields.String(
        validate=WholeMatch(r"^[A-Za-z0-9_-]{1,512}$", error="Not a token issued by this API."),
        metadata={
            "description": "Opaque position from a previous answer's `meta.since` (or the "
            "`since` in `links.next`); leave it out to start from the first change."
        },
    )
    limit = limit_field(documents=True)


class NoArgs(QuerySchema):
    """For endpoints that take no query parameters: any given is an error."""
