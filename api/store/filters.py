"""Every filter of the read endpoints, declared once: the query parameters it takes
(marshmallow fields, which validate them and document them in the OpenAPI spec),
the SQL clause it adds, the resources it applies to, and an example that narrows
the seed data (tests/test_filters.py proves each one does).

After Datasette's filters.py: a new filter is one `@declare(...)` here, and
/events, its exports, /stats and /locations take it from this registry, so a
parameter cannot be accepted without its clause. Clauses are parameterised SQL;
nothing from the request is spliced into SQL text. What SQL differs between engines
(case-insensitive names, search, boxes and radii) each clause asks of the scope's
dialect (api/store/dialect.py), so a filter is one declaration for every engine.
"""

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from marshmallow import ValidationError, fields, validate, validates_schema

from api.store import search
from api.store.dialect import Clause, Dialect
from schemas.fields import MAX_COUNT, TIMESTAMP_FORMAT, Timestamp
from schemas.gazetteer import admin1_named, spellings_of_place
from schemas.query import (
    CommaSeparatedList,
    EventPagingArgs,
    LocationPagingArgs,
    Point,
    QuerySchema,
    StatsQueryArgs,
    bbox_field,
    country_field,
    name_field,
)
from schemas.vocabulary import (
    EVENT_TYPES,
    LOCATION_PRECISIONS,
    MUNITION_CATEGORIES,
    WEAPON_BITS,
    describe,
)

EVENTS = "events"
LOCATIONS = "locations"

# What a map's "events near here" means without a radius: a city and its outskirts.
DEFAULT_RADIUS_KM = 25.0
# The one description of `near` and `radius_km`, used for both (README and
# docs/problems.md say the same).
NEAR = (
    "`near=lat,lon` (a point, latitude first) finds events within `radius_km` "
    f"kilometres of it, great-circle; `radius_km` defaults to {DEFAULT_RADIUS_KM:g} and "
    "needs `near`."
)


@dataclass(frozen=True)
class Scope:
    """What a clause is built for.

    `dialect` is the engine's SQL for what differs (api/store/dialect.py); `conn`
    lets a filter look at the data to choose its form; `table` is the alias of the
    rows filtered (`e` for events, `l` for places) and `place` the column holding
    their place id; `paged` says the query reads one ordered page, where testing
    rows one by one along the sort index beats collecting every match."""

    dialect: Dialect
    conn: Any
    table: str
    place: str
    paged: bool

    @classmethod
    def events(cls, dialect: Dialect, conn: Any, paged: bool) -> "Scope":
        return cls(dialect, conn, "e", "e.location_id", paged)

    @classmethod
    def locations(cls, dialect: Dialect, conn: Any) -> "Scope":
        return cls(dialect, conn, "l", "l.id", paged=True)


@dataclass(frozen=True)
class Filter:
    """One filter: its parameters (name -> field, in the order the docs list them),
    its clause (called with the scope and the given parameters as keywords), the
    resources it applies to, a check across its own parameters, and an example
    query string that narrows the seed data."""

    params: dict[str, fields.Field]
    clause: Callable[..., Clause]
    resources: frozenset[str]
    example: str
    check: Callable[[dict[str, Any]], None] | None = None
    rollup: str | None = None


REGISTRY: list[Filter] = []


def declare(
    example: str,
    *,
    resources: Iterable[str] = (EVENTS,),
    check: Callable[[dict[str, Any]], None] | None = None,
    rollup: str | None = None,
    **params: fields.Field,
) -> Callable[[Callable[..., Clause]], Callable[..., Clause]]:
    """Register the decorated clause with the parameters it takes."""

    def register(clause: Callable[..., Clause]) -> Callable[..., Clause]:
        REGISTRY.append(Filter(params, clause, frozenset(resources), example, check, rollup))
        return clause

    return register


def _in_order(first: str, second: str, message: str) -> Callable[[dict[str, Any]], None]:
    def check(data: dict[str, Any]) -> None:
        if first in data and second in data and data[first] > data[second]:
            raise ValidationError(message, first)

    return check


def _needs(dependent: str, required: str, why: str) -> Callable[[dict[str, Any]], None]:
    # The parameter sent is the one named: the client sent it, not the one it needs.
    def check(data: dict[str, Any]) -> None:
        if dependent in data and required not in data:
            raise ValidationError(f"{dependent} needs {required}: {why}", dependent)

    return check


@declare(
    "event_type=troop_movement,armed_clash",
    rollup="event_type",
    event_type=CommaSeparatedList(
        fields.String(validate=validate.OneOf(list(EVENT_TYPES))),
        metadata={
            "description": "One or several event types, repeated or comma-separated.\n\n"
            + describe(EVENT_TYPES)
        },
    ),
)
def _event_type(scope: Scope, event_type: list[str]) -> Clause:
    return f"{scope.table}.event_type IN ({scope.dialect.placeholders(event_type)})", list(
        event_type
    )


@declare(
    "date_from=2024-05-10&date_to=2024-05-24",
    rollup="date",
    check=_in_order("date_from", "date_to", "date_from is after date_to."),
    date_from=fields.Date(metadata={"description": "Events on or after this ISO date."}),
    date_to=fields.Date(metadata={"description": "Events on or before this ISO date."}),
)
def _dates(
    scope: Scope, date_from: datetime.date | None = None, date_to: datetime.date | None = None
) -> Clause:
    conditions, params = [], []
    if date_from is not None:
        conditions.append(f"{scope.table}.date >= ?")
        params.append(date_from.isoformat())
    if date_to is not None:
        conditions.append(f"{scope.table}.date <= ?")
        params.append(date_to.isoformat())
    return " AND ".join(conditions), params


# Every seeded event is in Ukraine: the example narrows to none.
@declare(
    "country=ru", resources=(EVENTS, LOCATIONS), rollup="country_code", country=country_field()
)
def _country(scope: Scope, country: str) -> Clause:
    return f"{scope.table}.country_code = ?", [country.upper()]


@declare(
    "admin1=donetsk%20oblast",
    resources=(EVENTS, LOCATIONS),
    rollup="admin1",
    admin1=name_field(
        "First-level region, case-insensitive exact name, e.g. 'Kharkiv Oblast'. Any "
        "spelling of a region in Salvo's gazetteer finds it ('Zaporizhzhya oblast', "
        "'Odessa', 'Kiev City', 'Київська область'); a bare 'Kyiv' is Kyiv Oblast."
    ),
)
def _admin1(scope: Scope, admin1: str) -> Clause:
    # Imports store a known region by the gazetteer's name: the query is read so too.
    region = admin1_named(admin1)
    condition = scope.dialect.text_equal(f"{scope.table}.admin1")
    return condition, [admin1 if region is None else region.name]


@declare(
    "precision=city",
    resources=(EVENTS, LOCATIONS),
    rollup="location_id",
    precision=CommaSeparatedList(
        fields.String(validate=validate.OneOf(list(LOCATION_PRECISIONS))),
        metadata={
            "description": "Only places of these precisions, repeated or comma-separated: "
            "`precision=exact,near,city` keeps region and country centroids off a map.\n\n"
            + describe(LOCATION_PRECISIONS)
        },
    ),
)
def _precision(scope: Scope, precision: list[str]) -> Clause:
    # By place, so that the rollups keyed by place answer it for /stats.
    return (
        f"{scope.place} IN (SELECT id FROM locations WHERE precision IN "
        f"({scope.dialect.placeholders(precision)}))",
        list(precision),
    )


@declare(
    "location=vovchansk",
    rollup="location_id",
    location=name_field(
        "Place name, case-insensitive exact match, e.g. 'kharkiv'. A town or region in "
        "Salvo's gazetteer is found by any of its spellings ('Kharkov', 'Odessa', 'Київ')."
    ),
)
def _location(scope: Scope, location: str) -> Clause:
    # Place names are stored as each source wrote them: every spelling is matched.
    names = spellings_of_place(location)
    return (
        f"{scope.place} IN (SELECT id FROM locations "
        f"WHERE {scope.dialect.text_in('name', len(names))})",
        list(names),
    )


@declare(
    "bbox=36.1,49.9,36.3,50.1",
    resources=(EVENTS, LOCATIONS),
    rollup="location_id",
    bbox=bbox_field(),
)
def _bbox(scope: Scope, bbox: tuple[float, float, float, float]) -> Clause:
    places, params = scope.dialect.places_in_box(bbox)
    return f"{scope.place} IN ({places})", params


@declare(
    "near=49.9935,36.2304&radius_km=5",
    rollup="location_id",
    check=_needs("radius_km", "near", "give the centre as near=lat,lon."),
    near=Point(metadata={"description": NEAR}),
    radius_km=fields.Float(
        validate=validate.Range(min=0, max=20_000, min_inclusive=False),
        metadata={
            # The default is in words only: a generated client sends a declared
            # default with every call, and a radius without `near` is refused.
            "description": NEAR,
            "exclusiveMinimum": True,
        },
    ),
)
def _near(scope: Scope, near: tuple[float, float], radius_km: float = DEFAULT_RADIUS_KM) -> Clause:
    places, params = scope.dialect.places_near(*near, radius_km)
    return f"{scope.place} IN ({places})", params


# The most names an actor filter's total lists (_actor); a part of a name in more
# actors' names than that is read as a subquery.
MAX_LISTED_ACTORS = 100


@declare(
    "actor=france", actor=name_field("Case-insensitive part of an actor's name, e.g. 'russia'.")
)
def _actor(scope: Scope, actor: str) -> Clause:
    pattern = "%" + actor.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    names = f"SELECT name FROM actors WHERE {scope.dialect.text_like('name')}"
    if scope.paged:
        # Measured at 1M events: probing each row's actors along the sort index
        # fills a page in under 3 ms for common and uncommon actors alike, where
        # collecting every matching event first took up to 450 ms.
        return (
            "EXISTS (SELECT 1 FROM event_actors a WHERE a.event_id = e.id "
            f"AND a.actor_name IN ({names}))",
            [pattern],
        )
    # A total lists the matching names when there are few, so that the planner
    # weighs each name by its own statistics. Against the subquery, PostgreSQL
    # expected 243,786 events of `actor=france` where 18,552 of 1M events came, and
    # summed them in 919-1,053 ms; with the name listed, 220-384 ms (bench/postgresql.py).
    listed = scope.dialect.tuples(scope.conn, f"{names} LIMIT ?", [pattern, MAX_LISTED_ACTORS + 1])
    if len(listed) <= MAX_LISTED_ACTORS:
        matching = [name for (name,) in listed]
        names, params = scope.dialect.placeholders(matching) or "NULL", matching
    else:
        params = [pattern]
    return f"e.id IN (SELECT event_id FROM event_actors WHERE actor_name IN ({names}))", params


@declare(
    "weapon=drone",
    rollup="weapons",
    weapon=CommaSeparatedList(
        fields.String(validate=validate.OneOf(list(MUNITION_CATEGORIES))),
        metadata={
            "description": "Events using one of these munition categories, repeated or "
            "comma-separated.\n\n" + describe(MUNITION_CATEGORIES)
        },
    ),
)
def _weapon(scope: Scope, weapon: list[str]) -> Clause:
    return "(e.weapons & ?) != 0", [sum(WEAPON_BITS[value] for value in weapon)]


# min_killed / min_injured are never negative, so the sort expressions (which rank
# an unreported figure as -1) select the same rows and use the same index.
@declare(
    "min_killed=1",
    min_killed=fields.Integer(
        validate=validate.Range(min=0, max=MAX_COUNT),
        metadata={"description": "Events whose best estimate of people killed is at least this."},
    ),
)
def _min_killed(scope: Scope, min_killed: int) -> Clause:
    return "coalesce(e.killed_best, -1) >= ?", [min_killed]


@declare(
    "min_injured=4",
    min_injured=fields.Integer(
        validate=validate.Range(min=0, max=MAX_COUNT),
        metadata={"description": "Events whose best estimate of people injured is at least this."},
    ),
)
def _min_injured(scope: Scope, min_injured: int) -> Clause:
    return "coalesce(e.injured_best, -1) >= ?", [min_injured]


@declare(
    "updated_since=2999-01-01T00:00:00Z",
    updated_since=Timestamp(
        "Events that Salvo created or changed at or after this instant (ISO 8601 with an "
        "offset, e.g. 2024-05-30T00:00:00Z); compare with `updated_at`."
    ),
)
def _updated_since(scope: Scope, updated_since: datetime.datetime) -> Clause:
    return "e.updated_at >= ?", [updated_since.strftime(TIMESTAMP_FORMAT)]


# /stats sums every event its filters keep, and a search cannot be rolled up: the
# 120,000 events (12%) matching `kharkiv` at 1M events took 9-11x a full scan of
# the events table to sum. So a search's totals have a budget, as search engines
# cap what one query reads: its SEARCH_TOTALS_CAP most recent matches (by date,
# then id), found once per request by walking the date index newest first; the
# other filters narrow within them, and meta.search_capped says when the cap cut.
# At 1M events on the shared 2-core machine (bench/run.py --stats-only), summing
# every match took 6-13x the scan for q=kharkiv and 15-49x for its monthly series
# (three statements); a cap of 10,000 took 0.7-4.3x and 1.8-5.8x, 5,000 1.3x and
# 1.3-2.5x. Pages and exports of /events are not capped: they read as they serve.
SEARCH_TOTALS_CAP = 5_000


class SearchText(fields.String):
    """Text in Salvo's search grammar (api/store/search.py), loaded as the search it asks for."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text:
            raise ValidationError("Empty: give a word to search for, or leave q out.")
        try:
            return search.parse(text)
        except search.SearchTooLarge as error:
            raise ValidationError(str(error)) from None


@declare(
    "q=%22storm%20shadow%22",
    q=SearchText(
        metadata={
            "description": "Full-text search over the notes and place names: words (all of "
            'them, in any order), "quoted phrases", prefix* (words that start so), OR between '
            "two terms (either), -term (events without it). Any other text is searched as "
            "words: punctuation separates them, so S-300 finds the words S and 300 side by "
            f"side. At most {search.MAX_LENGTH} characters and {search.MAX_TERMS} words and "
            f"operators. /stats sums a search's {SEARCH_TOTALS_CAP:,} most recent matches (by "
            "date), the other filters narrowing within them; `meta.search_capped` says "
            "whether it matched more.",
            "minLength": 1,
            "maxLength": search.MAX_LENGTH,
        },
    ),
)
def _q(scope: Scope, q: search.Search) -> Clause:
    return scope.dialect.search(scope, q)


def filters_of(resource: str) -> tuple[Filter, ...]:
    """The filters a resource takes, in declaration order."""
    return tuple(f for f in REGISTRY if resource in f.resources)


def where(scope: Scope, filters: Iterable[Filter], args: dict[str, Any]) -> Clause:
    """The SQL conditions (joined with AND, "" for none) and parameters of the
    filters given in `args`."""
    conditions: list[str] = []
    params: list[Any] = []
    for declared in filters:
        given = {name: args[name] for name in declared.params if name in args}
        if given:
            sql, values = declared.clause(scope, **given)
            conditions.append(sql)
            params.extend(values)
    return " AND ".join(conditions), params


class FilteredArgs(QuerySchema):
    """A query schema whose filter parameters come from the registry."""

    filters: ClassVar[tuple[Filter, ...]] = ()

    @validates_schema
    def _check_filters(self, data: dict[str, Any], **kwargs: Any) -> None:
        for declared in self.filters:
            if declared.check is not None:
                declared.check(data)


def filtered_args(name: str, resource: str, others: type[QuerySchema]) -> type[FilteredArgs]:
    """The query schema of a filtered endpoint: the resource's filters, then the
    parameters of `others` (paging, sorting, grouping), and the checks `others`
    declares (`@validates_schema`, `@validates`). Not a subclass of `others`, which
    would list its parameters before the filters."""
    filters = filters_of(resource)
    declared = {param: field for f in filters for param, field in f.params.items()}
    fields_in_order = {**declared, **others._declared_fields}
    return type(name, (FilteredArgs,), {**fields_in_order, **_hooks(others), "filters": filters})


def _hooks(schema: type[QuerySchema]) -> dict[str, Any]:
    """The marshmallow hooks (validators, processors) that `schema` and its bases
    below QuerySchema declare, by name; a subclass's attribute overrides its base's."""
    hooks: dict[str, Any] = {}
    for klass in reversed(schema.__mro__):
        if not issubclass(klass, QuerySchema) or klass is QuerySchema:
            continue
        for name, member in vars(klass).items():
            if hasattr(member, "__marshmallow_hook__"):
                hooks[name] = member
            else:
                hooks.pop(name, None)
    return hooks


EventListArgs = filtered_args("EventListArgs", EVENTS, EventPagingArgs)
StatsArgs = filtered_args("StatsArgs", EVENTS, StatsQueryArgs)
# /locations takes every filter of /stats: those of places select places, the others
# the events counted at each (api/store/sqlite/query.py, list_locations).
LocationListArgs = filtered_args("LocationListArgs", EVENTS, LocationPagingArgs)
