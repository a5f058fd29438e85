"""Envelopes and resource shapes returned by the API, and the problem+json body."""

from typing import Any

from marshmallow import Schema, fields, validate

from schemas.event import AcledSchema, EventSchema, LocationSchema, SourceSchema
from schemas.fields import Timestamp
from schemas.query import EVENT_SORTS, GROUPINGS
from schemas.vocabulary import DATE_PRECISIONS, ESTIMATE_QUALIFIERS, MUNITION_CATEGORIES, describe


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


class EventPageSchema(Schema):
    data = fields.List(fields.Nested(EventSchema), required=True)
    links = fields.Nested(LinksSchema, required=True)
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
    properties = fields.Nested(EventSchema, required=True)


class EventFeatureCollectionSchema(Schema):
    """A page of events as GeoJSON. Region- and country-precise points are centroids:
    check properties.location.precision before drawing them as places."""

    type = fields.String(**_doc("Always `FeatureCollection`."), required=True)
    features = fields.List(fields.Nested(EventFeatureSchema), required=True)
    links = fields.Nested(LinksSchema, required=True)
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
    event_count = fields.Integer(**_doc("Events at this place."), required=True)


class LocationPageSchema(Schema):
    data = fields.List(fields.Nested(LocationWithCountSchema), required=True)
    links = fields.Nested(LinksSchema, required=True)
    meta = fields.Nested(PageMetaSchema, required=True)


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


class TotalSchema(Schema):
    """A sum of casualty estimates that keeps their uncertainty."""

    best = fields.Integer(**_doc("Sum of the best estimates."), required=True)
    low = fields.Integer(**_doc("Sum of the low estimates."), required=True)
    high = fields.Integer(
        **_doc("Sum of the high estimates; null when any figure is unbounded ('at least')."),
        required=True,
        allow_none=True,
    )
    qualifier = fields.String(
        **_doc(
            "`exact` when every figure is exact, `at_least` when any is unbounded above, "
            "otherwise `approximately`.\n\n" + describe(ESTIMATE_QUALIFIERS)
        ),
        required=True,
    )
    events_reporting = fields.Integer(**_doc("Events that give a figure."), required=True)


class MunitionTotalSchema(Schema):
    category = fields.String(**_doc(describe(MUNITION_CATEGORIES)), required=True)
    launched = fields.Integer(**_doc("Sum of known launch counts."), required=True)
    intercepted = fields.Integer(**_doc("Sum of known interception counts."), required=True)
    interception_rate = fields.Float(
        **_doc("Intercepted / launched over the entries that give both counts; null when none do."),
        required=True,
        allow_none=True,
    )
    events = fields.Integer(**_doc("Events with an entry of this category."), required=True)


class StatsGroupSchema(Schema):
    key = fields.String(
        **_doc("The group: a period, region or event type; null for the overall total."),
        required=True,
        allow_none=True,
    )
    precision = fields.String(
        **_doc(
            "For time groupings, the period the key names: `day`, `week`, `month` or `year`.\n\n"
            + describe(DATE_PRECISIONS)
        ),
        required=True,
        allow_none=True,
    )
    events = fields.Integer(**_doc("Events in the group."), required=True)
    munitions = fields.List(fields.Nested(MunitionTotalSchema), required=True)
    killed = fields.Nested(TotalSchema, required=True)
    injured = fields.Nested(TotalSchema, required=True)


class StatsMetaSchema(Schema):
    group_by = fields.String(**_doc(describe(GROUPINGS)), required=True, allow_none=True)


class StatsSchema(Schema):
    data = fields.List(fields.Nested(StatsGroupSchema), required=True)
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


class InvalidParamSchema(Schema):
    name = fields.String(**_doc("The parameter or field, dotted for nested fields."), required=True)
    # `in` is a Python keyword, hence data_key.
    in_ = fields.String(
        data_key="in", **_doc("`query`, `header`, `path` or `body`."), required=True
    )
    reason = fields.String(required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(**_doc("URI reference identifying the problem type."), required=True)
    title = fields.String(**_doc("Short summary of the problem type."), required=True)
    status = fields.Integer(**_doc("The HTTP status code."), required=True)
    detail = fields.String(**_doc("What went wrong in this occurrence."), required=True)
    instance = fields.String(**_doc("The request path."), required=True)
    invalid_params = fields.List(
        fields.Nested(InvalidParamSchema),
        **_doc("For validation errors: each refused parameter and why."),
    )
