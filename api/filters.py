"""Every filter of the read endpoints, declared once: the query parameters it takes
(marshmallow fields, which validate them and document them in the OpenAPI spec),
the SQL clause it adds, the resources it applies to, and an example that narrows
the seed data (tests/test_filters.py proves each one does).

After Datasette's filters.py: a new filter is one `@declare(...)` here, and
/events, its exports, /stats and /locations take it from this registry, so a
parameter cannot be accepted without its clause. Clauses are parameterised SQL;
nothing from the request is spliced into SQL text.
"""

import datetime
import math
import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from marshmallow import ValidationError, fields, validate, validates_schema

from api.db import EARTH_RADIUS_KM
from api.problems import invalid_parameter
from api.storage import WEAPON_BITS, placeholders
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
from schemas.vocabulary import EVENT_TYPES, LOCATION_PRECISIONS, MUNITION_CATEGORIES, describe

Clause = tuple[str, list[Any]]

EVENTS = "events"
LOCATIONS = "locations"

# What a map's "events near here" means without a radius: a city and its outskirts.
DEFAULT_RADIUS_KM = 25.0


@dataclass(frozen=True)
class Scope:
    """What a clause is built for.

    `table` is the alias of the rows filtered (`e` for events, `l` for places) and
    `place` the column holding their place id; `conn` lets a filter look at the data
    to choose its form; `paged` says the query reads one ordered page, where testing
    rows one by one along the sort index beats collecting every match."""

    conn: sqlite3.Connection
    table: str
    place: str
    paged: bool

    @classmethod
    def events(cls, conn: sqlite3.Connection, paged: bool) -> "Scope":
        return cls(conn, "e", "e.location_id", paged)

    @classmethod
    def locations(cls, conn: sqlite3.Connection) -> "Scope":
        return cls(conn, "l", "l.id", paged=True)


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


def _needs(dependent: str, required: str) -> Callable[[dict[str, Any]], None]:
    def check(data: dict[str, Any]) -> None:
        if dependent in data and required not in data:
            raise ValidationError(f"{dependent} needs {required}.", required)

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
    return f"{scope.table}.event_type IN ({placeholders(event_type)})", list(event_type)


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
    return f"{scope.table}.admin1 = ? COLLATE NOCASE", [admin1 if region is None else region.name]


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
        f"({placeholders(precision)}))",
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
        f"WHERE name COLLATE NOCASE IN ({placeholders(names)}))",
        list(names),
    )


@declare(
    "bbox=36.1,49.9,36.3,50.1",
    resources=(EVENTS, LOCATIONS),
    rollup="location_id",
    bbox=bbox_field(),
)
def _bbox(scope: Scope, bbox: tuple[float, float, float, float]) -> Clause:
    places, params = _places_in_box(bbox)
    return f"{scope.place} IN ({places})", params


@declare(
    "near=49.9935,36.2304&radius_km=5",
    rollup="location_id",
    check=_needs("radius_km", "near"),
    near=Point(
        metadata={
            "description": "lat,lon of a centre point; events within `radius_km` of it "
            f"(default {DEFAULT_RADIUS_KM:g} km).",
        }
    ),
    radius_km=fields.Float(
        validate=validate.Range(min=0, max=20_000, min_inclusive=False),
        metadata={
            # The default is in words only: a generated client sends a declared
            # default with every call, and a radius without `near` is refused.
            "description": "Radius around `near`, in kilometres (great-circle); needs "
            f"`near`. Without it, {DEFAULT_RADIUS_KM:g} km.",
            "exclusiveMinimum": True,
        },
    ),
)
def _near(scope: Scope, near: tuple[float, float], radius_km: float = DEFAULT_RADIUS_KM) -> Clause:
    places, params = _places_near(*near, radius_km)
    return f"{scope.place} IN ({places})", params


@declare(
    "actor=france", actor=name_field("Case-insensitive part of an actor's name, e.g. 'russia'.")
)
def _actor(scope: Scope, actor: str) -> Clause:
    pattern = "%" + actor.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    names = "SELECT name FROM actors WHERE name LIKE ? ESCAPE '\\'"
    if scope.paged:
        # Measured at 1M events: probing each row's actors along the sort index
        # fills a page in under 3 ms for common and uncommon actors alike, where
        # collecting every matching event first took up to 450 ms.
        return (
            "EXISTS (SELECT 1 FROM event_actors a WHERE a.event_id = e.id "
            f"AND a.actor_name IN ({names}))",
            [pattern],
        )
    return f"e.id IN (SELECT event_id FROM event_actors WHERE actor_name IN ({names}))", [pattern]


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


# A page filtered by a common term fills after testing a few rows along the
# sort index; one filtered by a rare term is faster to collect and sort.
# Counting matches up to this bound (a few ms at 1M events) decides which.
FTS_COMMON_TERM_MATCHES = 20_000


# The most a search may ask for. Every term (a word, bare or in a phrase, with or
# without a prefix *) is a scan of the full-text index, and OR'd prefix terms
# multiply: a valid 500-character q of them took 8.2 s at 100,000 events. Sixteen
# terms and operators and 200 characters hold any search a person types (the
# examples are two or three words).
MAX_Q_LENGTH = 200
MAX_Q_TERMS = 16
_TERM = re.compile(r"\w+")


def _few_terms(q: str) -> None:
    terms = len(_TERM.findall(q))
    if terms > MAX_Q_TERMS:
        raise ValidationError(
            f"At most {MAX_Q_TERMS} words and operators (AND, OR, NOT, NEAR); this has {terms}."
        )


@declare(
    "q=%22storm%20shadow%22",
    q=fields.String(
        validate=[validate.Length(min=1, max=MAX_Q_LENGTH), _few_terms],
        metadata={
            "description": 'Full-text search (SQLite FTS5 syntax: words, "phrases", prefix*, '
            f"AND/OR/NOT) over the notes and place names; at most {MAX_Q_LENGTH} characters "
            f"and {MAX_Q_TERMS} words and operators."
        },
    ),
)
def _q(scope: Scope, q: str) -> Clause:
    # FTS5 reports a malformed query only when it runs; running the count alone
    # attributes the error to `q` rather than to the whole statement.
    try:
        (matches,) = scope.conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM events_fts WHERE events_fts MATCH ? LIMIT ?)",
            [q, FTS_COMMON_TERM_MATCHES],
        ).fetchone()
    except sqlite3.OperationalError as error:
        reason = search_error(str(error))
        if reason is None:
            raise  # not the search's syntax (a lock, an interrupted query): not the client's
        raise invalid_parameter("q", reason) from None
    # A prefix term (word*) is expanded to every indexed word it begins at each
    # evaluation, so probing row by row repeats that: at 100,000 events `a*` took
    # 4.2 s a page probed and 0.08 s collected once (8 OR'd one-letter prefixes,
    # 6.9 s against 0.19 s).
    if scope.paged and matches >= FTS_COMMON_TERM_MATCHES and "*" not in q:
        return (
            "EXISTS (SELECT 1 FROM events_fts f WHERE f.rowid = e.row_id AND events_fts MATCH ?)",
            [q],
        )
    return "e.row_id IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)", [q]


_SEARCH_SYNTAX = (
    'use words, "phrases", prefix*, AND/OR/NOT between terms, and quotes around anything else'
)


def search_error(message: str) -> str | None:
    """What is wrong with a search, in Salvo's words, from SQLite's message for an
    FTS5 query it cannot parse (the messages of SQLite 3.4x's fts5_expr.c); None
    for a message that is no syntax error."""
    if message == "unterminated string":
        return 'A quote is not closed: close the "phrase", or remove the quote.'
    if message.startswith("no such column: "):
        # FTS5 reads `word:` as a column filter, and `-word` as one excluded.
        word = message.removeprefix("no such column: ")
        return (
            f"A column filter like `{word}:` (or a hyphen before `{word}`) is not searchable "
            'here; put the words in quotes, e.g. "storm-shadow".'
        )
    if message.startswith("unknown special query"):
        return "A * must end a word, as in kharkiv*, for words that start so."
    if message.startswith("expected integer"):
        return "NEAR's distance must be a whole number, as in NEAR(storm shadow, 5)."
    if message.startswith("fts5: syntax error near "):
        near = message.removeprefix("fts5: syntax error near ").strip('"')
        where = f"at `{near}`" if near else "where it ends"
        return f"Not a valid search {where}: {_SEARCH_SYNTAX}."
    if message.startswith("fts5: "):
        return f"Not a valid search: {_SEARCH_SYNTAX}."
    return None


def _places_in_box(bbox: tuple[float, float, float, float]) -> Clause:
    """SQL selecting locations.id inside a box, through the R*Tree of places."""
    min_lon, min_lat, max_lon, max_lat = bbox
    select = (
        "SELECT l.id FROM locations_rtree r JOIN locations l ON l.row_id = r.id "
        "WHERE r.min_lat >= ? AND r.max_lat <= ? AND r.min_lon >= ? AND r.max_lon <= ?"
    )
    if min_lon <= max_lon:
        return select, [min_lat, max_lat, min_lon, max_lon]
    # RFC 7946 section 5.2: a box whose west edge is east of its east edge crosses
    # the antimeridian; it is the union of the boxes on either side.
    return (
        f"{select} UNION ALL {select}",
        [min_lat, max_lat, min_lon, 180.0, min_lat, max_lat, -180.0, max_lon],
    )


def _places_near(lat: float, lon: float, radius_km: float) -> Clause:
    """SQL selecting locations.id within radius_km of a point: the R*Tree narrows to
    the circle's bounding box, the great-circle distance decides."""
    dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    min_lat, max_lat = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    cos_lat = min(math.cos(math.radians(lat - dlat)), math.cos(math.radians(lat + dlat)))
    if max_lat == 90.0 or min_lat == -90.0 or cos_lat <= 0 or dlat / cos_lat >= 180:
        box = (-180.0, min_lat, 180.0, max_lat)
    else:
        dlon = dlat / cos_lat
        west, east = lon - dlon, lon + dlon
        box = (
            west + 360 if west < -180 else west,
            min_lat,
            east - 360 if east > 180 else east,
            max_lat,
        )
    candidates, params = _places_in_box(box)
    return (
        f"SELECT id FROM locations WHERE id IN ({candidates}) "
        "AND distance_km(latitude, longitude, ?, ?) <= ?",
        [*params, lat, lon, radius_km],
    )


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
        for check in self.cross_checks:
            check(data)


def filtered_args(name: str, resource: str, others: type[QuerySchema]) -> type[FilteredArgs]:
    """The query schema of a filtered endpoint: the resource's filters, then the
    parameters of `others` (paging, sorting, grouping)."""
    filters = filters_of(resource)
    declared = {param: field for f in filters for param, field in f.params.items()}
    fields_in_order = {**declared, **others._declared_fields}
    return type(
        name,
        (FilteredArgs,),
        {**fields_in_order, "filters": filters, "cross_checks": others.cross_checks},
    )


EventListArgs = filtered_args("EventListArgs", EVENTS, EventPagingArgs)
StatsArgs = filtered_args("StatsArgs", EVENTS, StatsQueryArgs)
# /locations takes every filter of /stats: those of places select places, the others
# the events counted at each (api/query.py, list_locations).
LocationListArgs = filtered_args("LocationListArgs", EVENTS, LocationPagingArgs)
