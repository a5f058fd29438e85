"""Envelopes and resource shapes returned by the API, and the problem+json body."""

import copy
from typing import Any

from marshmallow import Schema, fields, validate

from schemas.event import AcledSchema, EventSchema, LocationSchema, SourceSchema
from schemas.fields import Timestamp
from schemas.query import EVENT_SORTS, GROUPINGS, INTERVALS
from schemas.vocabulary import ESTIMATE_QUALIFIERS, MUNITION_CATEGORIES, describe


def _doc(description: str) -> dict[str, Any]:
    """Field keyword arguments that document the field in the OpenAPI spec."""
    return {"metadata": {"description": description}}


class LinksSchema(Schema):
    self = fields.String(**_doc("This page."), required=True)
    next = fields.String(
        **_doc("The next page, or null on the last page. Also sent as a Link header (RFC 8288)."),
        required=True,
        allow_none=True,
    )


class PageMetaSchema(Schema):
    count = fields.Integer(**_doc("Items on this page."), required=True)
    limit = fields.Integer(**_doc("The page size asked for."), required=True)


class EventPageMetaSchema(PageMetaSchema):
    sort = fields.String(
        **_doc("The order of the pages.\n\n" + describe(EVENT_SORTS)), required=True
    )
    total = fields.Integer(
        **_doc(
            "Events matching the filters, on every page, read from the maintained totals "
            "(it costs no count of the events). Exact when `total_exact`; with a filter "
            "those totals do not keep (`actor`, `q`, `min_killed`, `min_injured`, "
            "`updated_since`) it counts the events matching the other filters: an upper "
            "bound."
        ),
        required=True,
    )
    total_exact = fields.Boolean(
        **_doc("Whether `total` is the exact count, or an upper bound."), required=True
    )


class EventLinksSchema(LinksSchema):
    prev = fields.String(
        **_doc(
            "The previous page, or null on the first page. Also sent as a Link header (RFC 8288)."
        ),
        required=True,
        allow_none=True,
    )


class AnyOf(fields.Field):
    """A value of one of several shapes, documented as `anyOf` their schemas
    (api.openapi). Only the contract reads it: the pages that hold one are rendered
    from stored documents, never loaded or dumped through a schema."""

    def __init__(self, *schemas: type[Schema], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schemas = schemas


def _optional(field: fields.Field) -> fields.Field:
    optional = copy.copy(field)
    optional.required = False
    return optional


# An event narrowed by the `fields` parameter of GET /api/v1/events: Event's fields,
# each as Event has it, `id` the only one required, so that a client generated from
# the contract parses a narrowed event as this and a whole one as an Event. (No
# Meta.description: apispec then leaves out `additionalProperties: false`.)
PartialEventSchema: type[Schema] = type(
    "PartialEventSchema",
    (Schema,),
    {
        name: field if name == "id" else _optional(field)
        for name, field in EventSchema().declared_fields.items()
    },
)

# An item of a page of events: an Event, or with `fields` a PartialEvent. A whole
# event matches both; generated clients try Event first.
_EVENT_ITEM_DESCRIPTION = "An `Event`; a `PartialEvent` when the request gave `fields`."


class EventPageSchema(Schema):
    data = fields.List(
        AnyOf(EventSchema, PartialEventSchema, metadata={"description": _EVENT_ITEM_DESCRIPTION}),
        required=True,
    )
    links = fields.Nested(EventLinksSchema, required=True)
    meta = fields.Nested(EventPageMetaSchema, required=True)


class PointSchema(Schema):
    type = fields.String(**_doc("Always `Point`."), required=True)
    coordinates = fields.List(
        fields.Float(), **_doc("[longitude, latitude], WGS84 (RFC 7946)."), required=True
    )


class EventFeatureSchema(Schema):
    type = fields.String(**_doc("Always `Feature`."), required=True)
    id = fields.String(**_doc("The event id."), required=True)
    geometry = fields.Nested(PointSchema, required=True)
    properties = AnyOf(
        EventSchema,
        PartialEventSchema,
        required=True,
        metadata={"description": _EVENT_ITEM_DESCRIPTION},
    )


class EventFeatureCollectionSchema(Schema):
    """A page of events as GeoJSON. Region- and country-precise points are centroids:
    check properties.location.precision before drawing them as places."""

    type = fields.String(**_doc("Always `FeatureCollection`."), required=True)
    features = fields.List(fields.Nested(EventFeatureSchema), required=True)
    links = fields.Nested(EventLinksSchema, required=True)
    meta = fields.Nested(EventPageMetaSchema, required=True)


# The most events one POST may create: the batch is one transaction, which blocks
# other writers while it runs.
MAX_BATCH = 500


class EventBatchSchema(Schema):
    """The body of POST /api/v1/events."""

    events = fields.List(
        fields.Nested(EventSchema),
        validate=validate.Length(min=1, max=MAX_BATCH),
        required=True,
        metadata={"description": f"One to {MAX_BATCH} events, written all or nothing."},
    )


class EventPatchSchema(EventSchema):
    """The body of PATCH /api/v1/events/{id}: any subset of an event's fields (loaded
    with partial=True), merged into the event (RFC 7396)."""


class EventListSchema(Schema):
    data = fields.List(fields.Nested(EventSchema), required=True)


class ChangeSchema(Schema):
    seq = fields.Integer(**_doc("Position in the change sequence."), required=True)
    change = fields.String(
        **_doc(
            "`created` or `updated`: the event as it is now (listed once, at its latest "
            "change); `deleted`: it was removed, and `event` is null."
        ),
        validate=validate.OneOf(["created", "updated", "deleted"]),
        required=True,
    )
    event_id = fields.String(required=True)
    changed_at = Timestamp("When the change was made (UTC).", dump_only=True, required=True)
    event = fields.Nested(EventSchema, required=True, allow_none=True)


class ChangesMetaSchema(PageMetaSchema):
    since = fields.String(
        **_doc("Token to ask for the changes after this page later: save it."), required=True
    )


class ChangePageSchema(Schema):
    data = fields.List(fields.Nested(ChangeSchema), required=True)
    links = fields.Nested(LinksSchema, required=True)
    meta = fields.Nested(ChangesMetaSchema, required=True)


class LocationWithCountSchema(LocationSchema):
    event_count = fields.Integer(
        **_doc("Events at this place; with a filter of events, those matching it."),
        required=True,
    )


class LocationPageMetaSchema(PageMetaSchema):
    search_capped = fields.Boolean(
        **_doc(
            "With `q` only: true when the search matches more than 5,000 events, of which "
            "the counts include the 5,000 most recent (by date), the other filters "
            "narrowing within them; false when they count every match."
        )
    )


class LocationPageSchema(Schema):
    data = fields.List(fields.Nested(LocationWithCountSchema), required=True)
    links = fields.Nested(LinksSchema, required=True)
    meta = fields.Nested(LocationPageMetaSchema, required=True)


class LocationFeatureSchema(Schema):
    type = fields.String(**_doc("Always `Feature`."), required=True)
    id = fields.String(**_doc("The place's id."), required=True)
    geometry = fields.Nested(PointSchema, required=True)
    properties = fields.Nested(LocationWithCountSchema, required=True)


class LocationFeatureCollectionSchema(Schema):
    """A page of places as GeoJSON, each with its event count. Region- and
    country-precise points are centroids: check properties.precision."""

    type = fields.String(**_doc("Always `FeatureCollection`."), required=True)
    features = fields.List(fields.Nested(LocationFeatureSchema), required=True)
    links = fields.Nested(LinksSchema, required=True)
    meta = fields.Nested(LocationPageMetaSchema, required=True)


class SourceWithCountSchema(SourceSchema):
    event_count = fields.Integer(**_doc("Events coded from this source."), required=True)


class SourcePageSchema(Schema):
    data = fields.List(fields.Nested(SourceWithCountSchema), required=True)
    links = fields.Nested(LinksSchema, required=True)
    meta = fields.Nested(PageMetaSchema, required=True)


class EventTypeSchema(Schema):
    id = fields.String(**_doc("The value used in `event_type`."), required=True)
    description = fields.String(required=True)
    acled = fields.Nested(AcledSchema, required=True)


class EventTypeListSchema(Schema):
    data = fields.List(fields.Nested(EventTypeSchema), required=True)


def _figure(description: str) -> fields.Integer:
    """A total that is null where nothing it sums is known."""
    return fields.Integer(**_doc(description), required=True, allow_none=True)


class TotalSchema(Schema):
    """A sum of casualty estimates that keeps their uncertainty. Unknown is not zero:
    when no event in the row gives a figure, every part is null and
    `events_reporting` is 0; a reported 0 stays 0."""

    best = _figure("Sum of the best estimates; null when no event gives one.")
    low = _figure("Sum of the low estimates (a figure without a low counts 0); null as `best`.")
    high = _figure(
        "Sum of the high estimates; null when any figure is unbounded ('at least'), or "
        "when no event gives a figure."
    )
    qualifier = fields.String(
        **_doc(
            "`exact` when every figure is exact, `at_least` when any is unbounded above, "
            "otherwise `approximately`; null when no event gives a figure.\n\n"
            + describe(ESTIMATE_QUALIFIERS)
        ),
        required=True,
        allow_none=True,
    )
    events_reporting = fields.Integer(**_doc("Events that give a figure."), required=True)


def _reported(what: str) -> fields.Integer:
    return _figure(f"Sum of the {what} counts the entries give; null when none gives one.")


class MunitionTotalSchema(Schema):
    """The munition entries of one category in a row. `launched` and `intercepted`
    sum every entry that gives them; the rate is computed over the entries that give
    both, whose sums are `launched_with_outcome` and `intercepted_with_outcome`, so
    it agrees with the numbers beside it."""

    launched = _reported("launch")
    intercepted = _reported("interception")
    launched_with_outcome = _figure(
        "Launches in the entries that also give an interception count; null when none."
    )
    intercepted_with_outcome = _figure(
        "Interceptions in the entries that also give a launch count; null when none."
    )
    interception_rate = fields.Float(
        **_doc(
            "intercepted_with_outcome / launched_with_outcome, rounded to 4 places; null when "
            "no entry gives both counts or none was launched."
        ),
        required=True,
        allow_none=True,
    )
    not_reached = _reported("not-reached (lost, jammed, fell short)")
    hit = _reported("hit")
    events = fields.Integer(**_doc("Events with an entry of this category."), required=True)


MunitionTotalsSchema = Schema.from_dict(
    {
        **{
            category: fields.Nested(MunitionTotalSchema, **_doc(description), required=True)
            for category, description in MUNITION_CATEGORIES.items()
        },
        "all": fields.Nested(
            MunitionTotalSchema,
            **_doc(
                "Every entry whatever its category, `mixed` included: a chart's one line "
                "of launched against intercepted. Its `events` counts an event with entries "
                "of several categories once."
            ),
            required=True,
        ),
    },
    name="MunitionTotalsSchema",
)


class StatsRowSchema(Schema):
    key = fields.String(
        **_doc(
            "The row: a period (`2024-05-30`, `2024-W22`, `2024-05`, `2024`), a group "
            "(an event type, a country code, a region), or null for the overall total and "
            "for events of a place with no region under group_by=admin1."
        ),
        required=True,
        allow_none=True,
    )
    group = fields.String(
        **_doc(
            "Only in a series per group (`group_by` with `interval`): the row's group, as "
            "`key` is under group_by alone (null for places with no region)."
        ),
        allow_none=True,
    )
    precision = fields.String(
        **_doc("For a period, what it is: `day`, `week`, `month` or `year`; null for a group."),
        required=True,
        allow_none=True,
    )
    start = fields.Date(
        **_doc("For a period, its first day within the range asked for; null for a group."),
        required=True,
        allow_none=True,
    )
    end = fields.Date(
        **_doc("For a period, its last day within the range asked for; null for a group."),
        required=True,
        allow_none=True,
    )
    events = fields.Integer(**_doc("Events in the row."), required=True)
    munitions = fields.Nested(
        MunitionTotalsSchema,
        **_doc(
            "Per munition category, always every category (a chart reads "
            "`munitions.drone.launched`), then `all`, the entries of every category "
            "together. `mixed` holds the figures sources give for several categories "
            "together; they are in no other category."
        ),
        required=True,
    )
    killed = fields.Nested(TotalSchema, required=True)
    injured = fields.Nested(TotalSchema, required=True)


class PeriodsSchema(Schema):
    first = fields.Date(**_doc("The first day the series covers."), required=True)
    last = fields.Date(**_doc("The last day the series covers."), required=True)
    count = fields.Integer(**_doc("Periods in the whole series, on every page."), required=True)
    remaining = fields.Integer(
        **_doc(
            "Rows of the series after this page (0 on the last page): a chart that wants "
            "the whole series follows `links.next` until it is 0, or asks for a `limit` "
            "of at least `count` (times the groups, with group_by)."
        ),
        required=True,
    )


class StatsMetaSchema(PageMetaSchema):
    group_by = fields.String(**_doc(describe(GROUPINGS)), required=True, allow_none=True)
    interval = fields.String(**_doc(describe(INTERVALS)), required=True, allow_none=True)
    periods = fields.Nested(
        PeriodsSchema,
        **_doc(
            "With an interval: the days the series covers (`date_from` and `date_to`, or the "
            "first and last period with events) and its number of periods; null without an "
            "interval, or when nothing matched and no range was given."
        ),
        required=True,
        allow_none=True,
    )
    search_capped = fields.Boolean(
        **_doc(
            "With `q` only: true when the search matches more than 5,000 events, of which "
            "the totals sum the 5,000 most recent (by date), the other filters narrowing "
            "within them; false when they sum every match."
        )
    )


class StatsSchema(Schema):
    data = fields.List(
        fields.Nested(StatsRowSchema),
        **_doc(
            "With an interval, one row per period in order, periods without events "
            "included (with group_by too, each group's series in turn, groups by key); "
            "with group_by, one row per group by key; otherwise one overall row."
        ),
        required=True,
    )
    coarser = fields.List(
        fields.Nested(StatsRowSchema),
        **_doc(
            "With an interval, the events dated less precisely than it (a month-precise "
            "event in a daily series), per period of their own precision, in date order: "
            "counted here and never drawn on a day they did not happen. On the first page "
            "only (empty on the pages after it), so that the pages joined count each event "
            "once; empty without an interval."
        ),
        required=True,
    )
    links = fields.Nested(LinksSchema, required=True)
    meta = fields.Nested(StatsMetaSchema, required=True)


class VersionSchema(Schema):
    version = fields.String(required=True)
    status = fields.String(**_doc("`current`, `deprecated` or `retired`."), required=True)
    url = fields.String(**_doc("Base URL of the version."), required=True)
    openapi = fields.String(**_doc("The version's OpenAPI document."), required=True)


class VersionListSchema(Schema):
    data = fields.List(fields.Nested(VersionSchema), required=True)


class ServiceLinksSchema(Schema):
    docs = fields.String(**_doc("The interactive API documentation (HTML)."), required=True)
    versions = fields.String(**_doc("The API versions."), required=True)
    openapi = fields.String(**_doc("The current version's OpenAPI document, JSON."), required=True)
    openapi_yaml = fields.String(**_doc("The same document as YAML."), required=True)
    guide = fields.String(
        **_doc("The README, with the partners' guide (plain text)."), required=True
    )


class LandingSchema(Schema):
    """What Salvo is and where to go next; a browser asking for HTML gets a page."""

    name = fields.String(required=True)
    description = fields.String(required=True)
    current_version = fields.String(required=True)
    links = fields.Nested(ServiceLinksSchema, required=True)


class ResourceLinkSchema(Schema):
    name = fields.String(**_doc("The resource, e.g. `events`."), required=True)
    url = fields.String(**_doc("Its URL."), required=True)
    description = fields.String(required=True)


class VersionIndexSchema(Schema):
    """The resources of one API version, and its documents."""

    version = fields.String(required=True)
    status = fields.String(**_doc("`current`, `deprecated` or `retired`."), required=True)
    resources = fields.List(fields.Nested(ResourceLinkSchema), required=True)
    links = fields.Nested(ServiceLinksSchema, required=True)


class HealthSchema(Schema):
    """Liveness: the process answers. It reads nothing, so it costs the same at any
    size; whether the instance can serve is /readyz."""

    status = fields.String(**_doc("Always `ok`."), required=True)


class ReadySchema(Schema):
    """Readiness: the database is at the path, readable, of this version's layout,
    and not seen damaged. Otherwise the answer is a 503 problem saying which."""

    status = fields.String(**_doc("Always `ready`."), required=True)
    database = fields.String(**_doc("Always `ok`."), required=True)
    reads = fields.String(
        **_doc(
            "With a replica (`SALVO_DATABASE_REPLICA`) only: where reads go now, "
            "`replica`, or `primary` while the replica is unreachable."
        )
    )
    replica = fields.String(
        **_doc("With a replica only: `ok`, or why reads do not go to it (`unreachable`).")
    )


class InvalidParamSchema(Schema):
    name = fields.String(**_doc("The parameter or field, dotted for nested fields."), required=True)
    # `in` is a Python keyword, hence data_key.
    in_ = fields.String(
        data_key="in", **_doc("`query`, `header`, `cookie`, `path` or `body`."), required=True
    )
    reason = fields.String(required=True)


class ConflictingRecordSchema(Schema):
    """A place or source a write would change for every event naming it."""

    record = fields.String(
        validate=validate.OneOf(["location", "source"]),
        **_doc("`location` (an event's `location`) or `source`."),
        required=True,
    )
    id = fields.String(**_doc("The place's or source's id."), required=True)
    fields_ = fields.List(
        fields.String(),
        data_key="fields",
        **_doc("Its fields that differ, such as `latitude` or `title`."),
        required=True,
    )
    against = fields.String(
        validate=validate.OneOf(["stored", "batch"]),
        **_doc(
            "`stored`: they differ from the place or source as stored (GET it, and send "
            "it as it is); `batch`: two events of this write describe it differently."
        ),
        required=True,
    )


class ProblemSchema(Schema):
    """RFC 9457 problem details. Besides the standard members, some types carry
    extension members a program reads instead of the detail (each named with its
    type below and in [the problem types](/docs/problems)); no other member is sent."""

    type = fields.String(
        **_doc(
            "URI reference identifying the problem type; compare it as a string. Opened on "
            "this server, it leads to the type's row of [the problem types](/docs/problems)."
        ),
        required=True,
    )
    title = fields.String(**_doc("Short summary of the problem type."), required=True)
    status = fields.Integer(**_doc("The HTTP status code."), required=True)
    detail = fields.String(**_doc("What went wrong in this occurrence."), required=True)
    instance = fields.String(**_doc("The request path."), required=True)
    invalid_params = fields.List(
        fields.Nested(InvalidParamSchema),
        **_doc("For validation errors: each refused parameter and why."),
    )
    conflicting_ids = fields.List(
        fields.String(),
        **_doc(
            "`/problems/id-taken` (409): the ids of the batch that an event has, had "
            "(deleted ids are never reused) or that come twice, sorted."
        ),
    )
    conflicting_records = fields.List(
        fields.Nested(ConflictingRecordSchema),
        **_doc(
            "`/problems/shared-record-conflict` (409): each place or source the write "
            "would change for every event naming it."
        ),
    )
    current_etag = fields.String(
        **_doc(
            "`/problems/precondition-failed` (412): the event's ETag now, quoted as GET "
            "sends it. Apply your change to the event as it is now before sending it in "
            "If-Match."
        )
    )
    event_id = fields.String(**_doc("`/problems/event-deleted` (410): the deleted event's id."))
    deleted_at = Timestamp("`/problems/event-deleted` (410): when it was deleted.", dump_only=True)
    idempotency_key = fields.String(
        **_doc(
            "`/problems/idempotency-key-reused` (422): the Idempotency-Key that came with "
            "another body."
        )
    )
