"""python -m seed import: events from the datasets partners hold, mapped field by
field onto the event model (docs/imports.md says each rule and why).

- ACLED exports (`acled`), UCDP's Georeferenced Event Dataset (`ucdp-ged`) and the
  missile-attacks-on-Ukraine dataset (`missile-attacks`), as CSV.
- The file is read as a stream, BATCH_SIZE rows at a time; every row becomes a record
  that goes through EventSchema.load, as the curated data does, and is written through
  the store (insert_rows) in the caller's one transaction.
- Ids come from the dataset's own ids, so a second import of a file writes nothing and
  a changed row becomes an update in /changes.
"""

import calendar
import csv
import datetime
import functools
import hashlib
import importlib.metadata
import itertools
import json
import os
import re
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from marshmallow import ValidationError
from sqlite_utils import Database

import schemas as schemas_package
from api.store import BulkCounts, BulkWrites
from api.store.sqlite import writes
from api.store.sqlite.layout import next_seq, placeholders
from api.store.sqlite.writes import (
    BATCH_SIZE,
    BulkLoad,
    EventRows,
    bulk_load,
    event_rows,
    insert_rows,
    remembering_sources,
    taken_ids,
    unchanged_sources,
)
from schemas.acled_csv import INTER_KINDS
from schemas.countries import BY_ALPHA2, BY_GLEDITSCH_WARD, BY_NAME, BY_NUMERIC, Country
from schemas.event import EventSchema
from schemas.fields import flatten_messages
from schemas.gazetteer import Region, Town, admin1_named, place_named
from schemas.vocabulary import ACLED_SUB_EVENT_TYPES, MUNITION_CATEGORIES
from seed.places import UKRAINE_PLACE, region_place, slug
from seed.workers import in_order

_SCHEMA = EventSchema()

# After this many rows to write (new or changed) a load counts as bulk: the secondary
# indexes are dropped for the rest of it and rebuilt, with the stats rollups, once at
# the end (bulk_load). A small import into a large database keeps them, as rebuilding
# would cost more than it saves. Into a database of fewer events than this, every
# import is bulk from its first row to write: the rebuild then costs no more than the
# rows it writes, and a large file no longer writes its first 50,000 rows through
# every index and rollup (measured: about a tenth of a 1M-row import). An import
# that writes nothing rebuilds nothing.
BULK_AFTER_ROWS = 50_000


class RowError(Exception):
    """A row that cannot be mapped: the column at fault and why."""

    def __init__(self, column: str, reason: str, line: int | None = None) -> None:
        super().__init__(column, reason)
        # The line, where the row is one of several merged (merge_actor_rows).
        self.column, self.reason, self.line = column, reason, line


class ImportRefused(Exception):
    """The file cannot be imported; nothing was written. The message names the file,
    and where it applies the line, the column and the reason."""


Row = dict[str, str]


class Mapped(NamedTuple):
    """A row mapped to an event record, with the source column of each record field
    whose column depends on the row (actors), and warnings to print."""

    record: dict[str, Any]
    columns: dict[str, str]
    warnings: list[str]
    # Warnings given once at the end of the import, with the number of rows giving each.
    tallied: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layout:
    """One dataset's CSV layout: the columns its mapping requires, the mapping, and the
    source column of each event field, to name the column of a schema error.

    Columns are found by name, in any order; others are ignored. `optional` columns are
    read where the header has them, and read as empty cells where it does not; the
    header needs at least one of `one_of`. `dates` are the columns --date-format reads.
    `actor_rows`: a header without this column is a file of one row per actor, whose
    rows of one event are merged (ACLED's monadic exports; merge_actor_rows)."""

    name: str
    columns: tuple[str, ...]
    map_row: Callable[[Row], Mapped]
    field_columns: dict[str, str]
    optional: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    actor_rows: str | None = None

    def missing(self, header: list[str]) -> list[str]:
        """What the header lacks, as the refusal lists it."""
        missing = [column for column in self.columns if column not in header]
        if self.one_of and not set(self.one_of) & set(header):
            missing.append(" or ".join(self.one_of))
        return missing

    def by_actor(self, header: list[str]) -> bool:
        """Whether the file has one row per actor (see the class)."""
        return self.actor_rows is not None and self.actor_rows not in header

    def column_of(self, path: str, columns: dict[str, str]) -> str:
        """The source column behind an event field path such as 'location.latitude'."""
        parts = path.split(".")
        for end in range(len(parts), 0, -1):
            prefix = ".".join(parts[:end])
            if prefix in columns:
                return columns[prefix]
            if prefix in self.field_columns:
                return self.field_columns[prefix]
        return "(row)"


# Reading cells.


def _text(row: Row, column: str) -> str | None:
    value = row[column].strip()
    return value or None


def _required(row: Row, column: str) -> str:
    value = _text(row, column)
    if value is None:
        raise RowError(column, "is empty; it is required")
    return value


def _count(row: Row, column: str, required: bool = False) -> int | None:
    """A whole number of things. '12.0' (how some exports write integers) is 12."""
    value = _text(row, column)
    if value is None:
        if required:
            raise RowError(column, "is empty; a count is required")
        return None
    try:
        number = float(value)
    except ValueError:
        raise RowError(column, f"{value!r} is not a number") from None
    if not number.is_integer() or number < 0:
        raise RowError(column, f"{value!r} is not a whole number of 0 or more")
    return int(number)


def _float(row: Row, column: str) -> float:
    value = _required(row, column)
    try:
        return float(value)
    except ValueError:
        raise RowError(column, f"{value!r} is not a number") from None


def _date(row: Row, column: str, required: bool = True) -> datetime.date | None:
    """A date in any of the forms the datasets' files hold (read_date)."""
    value = _text(row, column)
    if value is None:
        if required:
            raise RowError(column, "is empty; a date is required")
        return None
    date = read_date(value)
    if isinstance(date, str):
        raise RowError(column, date)
    return date


_MONTHS = {name.casefold(): n for n, name in enumerate(calendar.month_name) if name}
_MONTHS |= {name.casefold(): n for n, name in enumerate(calendar.month_abbr) if name}
_MONTHS["sept"] = 9
# '21 March 2020', '9-May-20', '21-Mar-2020', 'March 21, 2020'.
_DAY_MONTH_YEAR = re.compile(r"(\d{1,2})[ -]([A-Za-z]{3,9})\.?[ -](\d{2}|\d{4})")
_MONTH_DAY_YEAR = re.compile(r"([A-Za-z]{3,9})\.? (\d{1,2}),? (\d{4})")
# '31-12-19', '03/21/2020', '21.03.2020': day and month in either order.
_NUMERIC = re.compile(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{2}|\d{4})")
DATE_FORMS = "2020-03-21, 21 March 2020, 9-May-20, 31-12-19, 03/21/2020"


def _year(text: str) -> int:
    """A year; two digits are 1997-1999 for 97-99 (ACLED starts in 1997), else 20xx."""
    year = int(text)
    if len(text) == 2:
        year += 1900 if year >= 97 else 2000
    return year


def _valid(year: int, month: int, day: int) -> datetime.date | None:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


@functools.lru_cache(maxsize=16_384)
def read_date(value: str, date_format: str | None = None) -> datetime.date | str:
    """The date a cell gives, or why it gives none. (Cached: a file repeats its dates
    on row after row, and a failure is a reason, not an exception, so it is cached too.)

    ISO first, alone or starting a date-time ('2024-05-30 08:00', UCDP's
    '2024-05-30 00:00:00.000'); then ACLED's '30 May 2024' and what spreadsheets make
    of dates ('9-May-20', '31-12-19', '03/21/2020'). A numeric date whose day and
    month could be either ('05/06/2020') is refused unless `date_format` reads it."""
    if date_format is not None:
        try:
            parsed = datetime.datetime.strptime(value, date_format).date()
        except ValueError:
            pass
        else:
            if "%y" in date_format and parsed.year < 1997:  # strptime's %y pivot is 1969
                parsed = parsed.replace(year=parsed.year + 100)
            return parsed
    try:
        return datetime.date.fromisoformat(value[:10])
    except ValueError:
        pass
    if match := _DAY_MONTH_YEAR.fullmatch(value):
        day, month, year = match.group(1), _MONTHS.get(match.group(2).casefold()), match[3]
    elif match := _MONTH_DAY_YEAR.fullmatch(value):
        month, day, year = _MONTHS.get(match.group(1).casefold()), match.group(2), match[3]
    elif match := _NUMERIC.fullmatch(value):
        first, second, year_text = int(match[1]), int(match[3]), match[4]
        year_number = _year(year_text)
        day_first = _valid(year_number, second, first)
        month_first = _valid(year_number, first, second)
        if day_first and month_first and day_first != month_first:
            return (
                f"{value!r} is ambiguous: {day_first:%-d %B %Y} or {month_first:%B %-d %Y}; "
                f"say which with --date-format (%d{match[2]}%m{match[2]}"
                f"{'%y' if len(year_text) == 2 else '%Y'} for day first)"
            )
        date = day_first or month_first
        return date if date else f"{value!r} is not a date ({DATE_FORMS})"
    else:
        return f"{value!r} is not a date ({DATE_FORMS})"
    date = None if month is None else _valid(_year(year), month, int(day))
    return date if date else f"{value!r} is not a date ({DATE_FORMS})"


def _digest(*parts: object) -> str:
    """A short, stable digest of values: ids of places and attacks built from them."""
    text = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:8]


@functools.lru_cache(maxsize=65_536)
def _place(
    prefix: str,
    name: str,
    admin1: str | None,
    country: Country,
    latitude: float,
    longitude: float,
    precision: str,
) -> dict[str, Any]:
    """A place, with an id made from everything that defines it: places are shared by
    id, so two rows describing a place differently must not share one.

    An admin1 the gazetteer knows in the place's country is stored as the gazetteer
    names it ('Kharkiv', 'Zaporizhzhya oblast', 'Kiev City' become 'Kharkiv Oblast',
    'Zaporizhzhia Oblast', 'Kyiv City', as in Salvo's own data, so that one admin1
    filter finds the events of every dataset), and a region-precise place there is the
    region's own. An admin1 it does not know is kept as given."""
    if admin1 is not None:
        region = admin1_named(admin1)
        if region is not None and region.country_code == country.alpha2:
            if precision == "region":
                return region_place(region)
            admin1 = region.name
    key = _digest(name, admin1, country.alpha2, latitude, longitude, precision)
    return {
        "id": f"{prefix}-{country.alpha2.lower()}-{slug(name)[:60] or 'place'}-{key}",
        "name": name,
        "admin1": admin1,
        "country": country.name,
        "country_code": country.alpha2,
        "latitude": latitude,
        "longitude": longitude,
        "precision": precision,
    }


def _clip(text: str | None, limit: int) -> str | None:
    """Text cut to a field's limit, marked with an ellipsis where it was cut."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


# Actors named with ACLED's conventions say what kind they are.
_KIND_BY_PREFIX = (
    ("Military Forces of", "state_forces"),
    ("Police Forces of", "state_forces"),
    ("Government of", "government"),
    ("Civilians", "civilians"),
    ("Protesters", "protesters"),
    ("Rioters", "rioters"),
)


def _kind_from_name(name: str) -> str:
    return next((kind for prefix, kind in _KIND_BY_PREFIX if name.startswith(prefix)), "other")


# ACLED.

_TIME_PRECISIONS = {"1": "day", "2": "week", "3": "month"}
_GEO_PRECISIONS = {"1": "city", "2": "near", "3": "region"}
# inter1/inter2 as older exports write them (codes) and newer ones (text).
_INTER_BY_CODE = {str(code): kind for kind, (code, _) in INTER_KINDS.items()}
_INTER_BY_TEXT = {text.casefold(): kind for kind, (_, text) in INTER_KINDS.items()}
_INTER_BY_TEXT |= {"rebel groups": "rebel_group", "political militias": "political_militia"}
_INTER_BY_TEXT |= {"identity militias": "identity_militia"}


def _inter_kind(row: Row, column: str) -> str:
    value = _text(row, column)
    if value is None:
        return "other"
    kind = _INTER_BY_CODE.get(value) or _INTER_BY_TEXT.get(value.casefold())
    if kind is None:
        raise RowError(
            column, f"{value!r} is neither an ACLED inter code (1-8) nor its name ('State forces')"
        )
    return kind


def _acled_country(row: Row) -> Country:
    iso = _text(row, "iso")
    if iso is None:
        name = _required(row, "country")
        if name.casefold() not in BY_NAME:
            raise RowError(
                "country", f"{name!r} is not in Salvo's country table (schemas/countries.py)"
            )
        return BY_NAME[name.casefold()]
    try:
        return BY_NUMERIC[int(iso)]
    except (ValueError, KeyError):
        raise RowError(
            "iso", f"{iso!r} is not an ISO 3166-1 numeric code in Salvo's country table "
            "(schemas/countries.py)"
        ) from None  # fmt: skip


def _acled_updated(row: Row) -> datetime.datetime:
    value = _required(row, "timestamp")
    try:
        return datetime.datetime.fromtimestamp(int(value), datetime.UTC)
    except (ValueError, OverflowError, OSError):
        raise RowError("timestamp", f"{value!r} is not a Unix time in seconds") from None


@functools.lru_cache(maxsize=4096)
def _acled_source(day: str) -> dict[str, Any]:
    """One source per day of ACLED changes: the dataset as it stood that day."""
    return {
        "id": f"acled-{day}",
        "title": f"ACLED data as changed on {day}",
        "publisher": "ACLED",
        "url": "https://acleddata.com/",
        "published": day,
        "reference": None,
    }


def _given(values: dict[str, Any]) -> dict[str, Any]:
    """The values that are not None: a field left out is loaded as null all the same,
    and costs the schema less than a null it has to check (bulk loads)."""
    return {key: value for key, value in values.items() if value is not None}


# ACLED's disorder type of each event type, for the layouts before the column
# (2019-2022), as ACLED's codebook defines it: battles, explosions and violence against
# civilians are political violence; protests and riots demonstrations; strategic
# developments their own. Two sub-event types are both political violence and
# demonstrations: excessive force against protesters, and mob violence.
_DISORDER_BY_EVENT_TYPE = {
    "Battles": "Political violence",
    "Explosions/Remote violence": "Political violence",
    "Violence against civilians": "Political violence",
    "Protests": "Demonstrations",
    "Riots": "Demonstrations",
    "Strategic developments": "Strategic developments",
}
_DISORDER_BY_SUB_EVENT_TYPE = {
    "Excessive force against protesters": "Political violence; Demonstrations",
    "Mob violence": "Political violence; Demonstrations",
}


def _disorder_type(row: Row, acled_type: str, sub_event_type: str) -> str:
    """ACLED's disorder type as the row gives it, else as ACLED defines it (above)."""
    given = _text(row, "disorder_type")
    if given is not None:
        return given
    return _DISORDER_BY_SUB_EVENT_TYPE.get(sub_event_type) or _DISORDER_BY_EVENT_TYPE[acled_type]


def map_acled(row: Row) -> Mapped:
    record_id = _required(row, "event_id_cnty")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}", record_id):
        raise RowError("event_id_cnty", f"{record_id!r} is not an ACLED event id")
    acled_type, sub_event_type = _required(row, "event_type"), _required(row, "sub_event_type")
    event_type = ACLED_SUB_EVENT_TYPES.get((acled_type, sub_event_type))
    if event_type is None:
        raise RowError(
            "sub_event_type", f"{sub_event_type!r} is not one of ACLED's sub-event types of "
            f"{acled_type!r}"
        )  # fmt: skip
    source_date = _date(row, "event_date")
    assert source_date is not None
    precision_code = _required(row, "time_precision")
    if precision_code not in _TIME_PRECISIONS:
        raise RowError("time_precision", f"{precision_code!r} is not 1, 2 or 3")
    date_precision = _TIME_PRECISIONS[precision_code]
    date = source_date.replace(day=1) if date_precision == "month" else source_date

    country = _acled_country(row)
    admin1 = _text(row, "admin1")
    geo_code = _required(row, "geo_precision")
    if geo_code not in _GEO_PRECISIONS:
        raise RowError("geo_precision", f"{geo_code!r} is not 1, 2 or 3")
    precision = _GEO_PRECISIONS[geo_code]
    if precision == "region" and admin1 is None:
        precision = "country"
    name = _required(row, "location")
    location = _place(
        "acled", name, admin1, country, _float(row, "latitude"), _float(row, "longitude"), precision
    )

    actors: list[dict[str, Any]] = []
    columns: dict[str, str] = {}
    sides = (
        ("actor1", "inter1", "initiator", "assoc_actor_1", "associated"),
        ("actor2", "inter2", "target", "assoc_actor_2", "target"),
    )
    for actor_column, inter_column, role, assoc_column, assoc_role in sides:
        actor = _text(row, actor_column)
        if actor is not None:
            columns[f"actors.{len(actors)}"] = actor_column
            actors.append({"name": actor, "role": role, "kind": _inter_kind(row, inter_column)})
        for name in filter(None, (n.strip() for n in (_text(row, assoc_column) or "").split(";"))):
            columns[f"actors.{len(actors)}"] = assoc_column
            actors.append({"name": name, "role": assoc_role, "kind": _kind_from_name(name)})

    fatalities = _count(row, "fatalities", required=True)
    updated = _acled_updated(row)
    day = updated.date().isoformat()
    record = {
        "id": f"acled-{record_id.lower()}",
        "event_type": event_type,
        "date": date.isoformat(),
        "date_precision": date_precision,
        "location": location,
        "actors": actors,
        "munitions": [],
        "casualties": {
            "killed": {
                "best": fatalities,
                "low": fatalities,
                "high": fatalities,
                "qualifier": "exact",
            },
            "injured": None,
        },
        "reported_by": [],
        "source": _acled_source(day),
        "notes": _text(row, "notes"),
        "provenance": _given(
            {
                "dataset": "acled",
                "record_id": record_id,
                "record_updated": updated.isoformat(),
                "source_date": None if source_date == date else source_date.isoformat(),
                "acled": {
                    "disorder_type": _disorder_type(row, acled_type, sub_event_type),
                    "event_type": acled_type,
                    "sub_event_type": sub_event_type,
                },
                "sources": _text(row, "source"),
                "source_scale": _text(row, "source_scale"),
                "tags": _text(row, "tags"),
                "civilian_targeting": _text(row, "civilian_targeting"),
            }
        ),
    }
    return Mapped(record, columns, [])


_ACLED_FIELDS = {
    "id": "event_id_cnty",
    "event_type": "sub_event_type",
    "date": "event_date",
    "date_precision": "time_precision",
    "location": "location",
    "location.name": "location",
    "location.admin1": "admin1",
    "location.latitude": "latitude",
    "location.longitude": "longitude",
    "location.country_code": "iso",
    "actors": "actor1",
    "casualties": "fatalities",
    "source": "timestamp",
    "notes": "notes",
    "provenance.record_id": "event_id_cnty",
    "provenance.record_updated": "timestamp",
    "provenance.source_date": "event_date",
    "provenance.acled": "sub_event_type",
    "provenance.acled.disorder_type": "disorder_type",
    "provenance.acled.event_type": "event_type",
    "provenance.sources": "source",
    "provenance.source_scale": "source_scale",
    "provenance.tags": "tags",
    "provenance.civilian_targeting": "civilian_targeting",
}


# UCDP GED.

GED_COLUMNS = (
    "id", "relid", "year", "active_year", "code_status", "type_of_violence",
    "conflict_dset_id", "conflict_new_id", "conflict_name", "dyad_dset_id", "dyad_new_id",
    "dyad_name", "side_a_dset_id", "side_a_new_id", "side_a", "side_b_dset_id",
    "side_b_new_id", "side_b", "number_of_sources", "source_article", "source_office",
    "source_date", "source_headline", "source_original", "where_prec", "where_coordinates",
    "where_description", "adm_1", "adm_2", "latitude", "longitude", "geom_wkt",
    "priogrid_gid", "country", "country_id", "region", "event_clarity", "date_prec",
    "date_start", "date_end", "deaths_a", "deaths_b", "deaths_civilians", "deaths_unknown",
    "best", "high", "low", "gwnoa", "gwnob",
)  # fmt: skip

# type_of_violence: 1 state-based, 2 non-state, 3 one-sided (against civilians).
_GED_EVENT_TYPES = {"1": "armed_clash", "2": "armed_clash", "3": "attack_on_civilians"}
_GED_DATE_PRECISIONS = {"1": "day", "2": "week", "3": "week", "4": "month", "5": "year"}
_GED_WHERE_PRECISIONS = {
    "1": "exact", "2": "near", "3": "region", "4": "region", "5": "region", "6": "country",
    "7": "country",
}  # fmt: skip


def _ged_country(row: Row) -> Country:
    code = _text(row, "country_id")
    if code is not None:
        try:
            return BY_GLEDITSCH_WARD[int(code)]
        except (ValueError, KeyError):
            raise RowError(
                "country_id", f"{code!r} is not a Gleditsch-Ward code in Salvo's country "
                "table (schemas/countries.py)"
            ) from None  # fmt: skip
    name = _required(row, "country")
    if name.casefold() not in BY_NAME:
        raise RowError(
            "country", f"{name!r} is not in Salvo's country table (schemas/countries.py)"
        )
    return BY_NAME[name.casefold()]


def _ged_kind(name: str) -> str:
    if name.startswith("Government of"):
        return "state_forces"  # UCDP's government side is the state's armed forces
    return "civilians" if name == "Civilians" else "other"


def map_ged(row: Row) -> Mapped:
    record_id = _required(row, "id")
    if not record_id.isdigit():
        raise RowError("id", f"{record_id!r} is not a UCDP GED id (digits)")
    violence = _required(row, "type_of_violence")
    if violence not in _GED_EVENT_TYPES:
        raise RowError("type_of_violence", f"{violence!r} is not 1, 2 or 3")
    start, end = _date(row, "date_start"), _date(row, "date_end")
    assert start is not None and end is not None
    if end < start:
        raise RowError("date_end", f"{end} is before date_start {start}")
    prec = _required(row, "date_prec")
    if prec not in _GED_DATE_PRECISIONS:
        raise RowError("date_prec", f"{prec!r} is not 1 to 5")
    date_precision = _GED_DATE_PRECISIONS[prec]
    date = {"month": start.replace(day=1), "year": start.replace(month=1, day=1)}.get(
        date_precision, start
    )
    country = _ged_country(row)
    where = _required(row, "where_prec")
    if where not in _GED_WHERE_PRECISIONS:
        raise RowError("where_prec", f"{where!r} is not 1 to 7")
    precision = _GED_WHERE_PRECISIONS[where]
    admin1 = _text(row, "adm_1")
    if precision == "region" and admin1 is None:
        precision = "country"
    if precision == "country":
        name = country.name
    elif precision == "region":
        name = admin1 or country.name
    else:
        name = _text(row, "where_coordinates") or _text(row, "adm_2") or admin1 or country.name
    location = _place(
        "ged",
        name,
        admin1 if precision != "country" else None,
        country,
        _float(row, "latitude"),
        _float(row, "longitude"),
        precision,
    )
    best, low, high = (_count(row, column, required=True) for column in ("best", "low", "high"))
    qualifier = "exact" if low == best == high else "approximately"
    actors: list[dict[str, Any]] = []
    columns: dict[str, str] = {}
    for column, role in (("side_a", "initiator"), ("side_b", "target")):
        name_of_side = _text(row, column)
        if name_of_side is not None:
            columns[f"actors.{len(actors)}"] = column
            actors.append({"name": name_of_side, "role": role, "kind": _ged_kind(name_of_side)})
    dyad = _text(row, "dyad_name") or " - ".join(a["name"] for a in actors) or "UCDP event"
    place = _text(row, "where_description") or name
    estimate = f"{best}" if qualifier == "exact" else f"{best} (between {low} and {high})"
    published = _date(row, "source_date", required=False) or end
    record = {
        "id": f"ged-{record_id}",
        "event_type": _GED_EVENT_TYPES[violence],
        "date": date.isoformat(),
        "date_precision": date_precision,
        "date_end": end.isoformat() if end > date else None,
        "location": location,
        "actors": actors,
        "munitions": [],
        "casualties": {
            "killed": {"best": best, "low": low, "high": high, "qualifier": qualifier},
            "injured": None,
        },
        "reported_by": [],
        # GED codes each event from its own articles: one source per event.
        "source": {
            "id": f"ged-{record_id}",
            "title": _clip(_text(row, "source_headline"), 500) or f"UCDP GED event {record_id}",
            "publisher": _clip(_text(row, "source_office"), 200),
            "url": None,
            "published": published.isoformat(),
            "reference": f"UCDP GED {record_id}",
        },
        "notes": _clip(f"{dyad}. Killed: {estimate}. Where: {place}.", 2000),
        "provenance": {
            "dataset": "ucdp-ged",
            "record_id": record_id,
            "source_date": None if start == date else start.isoformat(),
            "sources": _clip(_text(row, "source_article"), 2000),
            "deaths_civilians": _count(row, "deaths_civilians"),
        },
    }
    return Mapped(record, columns, [])


_GED_FIELDS = {
    "id": "id",
    "date": "date_start",
    "date_end": "date_end",
    "location": "where_coordinates",
    "location.admin1": "adm_1",
    "location.latitude": "latitude",
    "location.longitude": "longitude",
    "actors": "side_a",
    "casualties": "best",
    "casualties.killed.low": "low",
    "casualties.killed.high": "high",
    "source.published": "source_date",
    "notes": "dyad_name",
    "provenance.sources": "source_article",
    "provenance.deaths_civilians": "deaths_civilians",
}


# Missile attacks on Ukraine.

MISSILE_COLUMNS = (
    "time_start", "time_end", "model", "launch_place", "target", "target_main", "launched",
    "destroyed", "not_reach_goal", "still_attacking", "border_crossing", "is_shahed",
    "num_hit_location", "num_fall_fragment_location", "carrier", "turbojet",
    "turbojet_destroyed", "affected region", "destroyed_details", "launched_details",
    "launch_place_details", "source",
)  # fmt: skip

# The munition category of each weapon model, keyed by its spelling in lower case
# (_model_key): every model of the dataset's companion table (missiles_and_uavs.csv)
# and the dataset's own spellings. The dataset writes Kh- missiles with the Latin X of
# their Cyrillic name (X-101, read as Kh-101 too) and S-300/S-400 with the Latin C of
# theirs (C-300); it writes some drones in Cyrillic (Молнія, Фенікс). Generic words
# ('UAV', 'missile') end the table: 'Unknown UAV' is a drone by its last word.
MODEL_CATEGORIES: dict[str, str] = {
    **dict.fromkeys((
        "shahed", "shahed-136", "shahed-131", "shahed-136/131", "shahed-238", "geran",
        "geran-1", "geran-2", "geran-3", "gerbera", "lancet", "orlan", "orlan-10",
        "orlan-30", "supercam", "zala", "italmas", "молнія", "молния", "molniya", "merlin-vr",
        "orion", "mohajer-6", "kub", "forpost", "forpost-r", "eleron", "eleron-3",
        "granat-4", "фенікс", "feniks", "картограф", "kartograf", "привет-82", "privet-82",
        "uav", "drone", "bpla",
    ), "drone"),
    **dict.fromkeys((
        "x-101", "x-555", "x-55", "x-22", "x-32", "x-31", "x-31p", "x-31pd", "x-35",
        "x-59", "x-69", "x-47", "x-47 kinzhal", "kinzhal", "kalibr", "iskander",
        "iskander-m", "iskander-k", "kn-23", "kn-24", "3m22 zircon", "zircon", "tsirkon",
        "p-800 oniks", "oniks", "onyx", "tochka", "tochka-u", "banderol", "s-300", "s-400",
        "c-300", "c-400", "\u0441-300", "\u0441-400", "missile",
    ), "missile"),
    **dict.fromkeys((
        "gbu", "kab", "fab", "upab", "umpk", "guided bomb", "glide bomb", "aerial bomb",
        "bomb",
    ), "aerial_bomb"),
    **dict.fromkeys(
        ("smerch", "uragan", "tornado", "tornado-s", "grad", "mlrs", "rocket"), "rocket"
    ),
}  # fmt: skip

# The category words of the companion table (missiles_and_uavs.csv), and others a
# partner's table in its layout may use, as Salvo's munition categories. S-300/S-400
# fired at the ground are missiles, whatever they were built for.
COMPANION_CATEGORIES: dict[str, str] = {
    "uav": "drone",
    "loitering munition": "drone",
    "cruise missile": "missile",
    "ballistic missile": "missile",
    "surface-to-air": "missile",
    "surface-to-air missile": "missile",
    "surface-to-air and ballistic": "missile",
    "anti-ship missile": "missile",
    "air-to-surface missile": "missile",
    "guided bomb": "aerial_bomb",
    "glide bomb": "aerial_bomb",
    "aerial bomb": "aerial_bomb",
    "mlrs": "rocket",
    **{category: category for category in MUNITION_CATEGORIES},
}
# A companion row of these categories gives none: the built-in table decides.
_NO_CATEGORY = frozenset({"", "unknown"})

# Kh-101, Kh101 and X-101 with a Cyrillic Kha are X-101.
_KH = re.compile("\\b(?:kh|\u0445)-?(?=\\d)")
_COMBINED = re.compile(r"\s*(?:\band\b|,|\+)\s*")
_UP_TO_NUMBER = re.compile(r"\D*\d+")  # x-59mk2 -> x-59
_NAME = re.compile(r"[^\W\d]+")  # kab-500 -> kab


def _model_key(text: str) -> str:
    """A model's spelling as the table keys it: lower case, one space, '-' for dashes."""
    text = " ".join(text.casefold().replace("\u2013", "-").replace("\u2014", "-").split())
    return _KH.sub("x-", text)


class ModelTable:
    """Weapon models and their munition categories, looked up by dictionary: a combined
    string is split at ' and ', ',' and '+' (then '/'), and a part not in the table
    is tried up to its first number (X-59MK2 as X-59), by its name (KAB-500 as KAB),
    then by its last word ('Reconnaissance UAV' as UAV). Each distinct string is looked
    up once."""

    def __init__(self, categories: dict[str, str]) -> None:
        self.categories = categories
        self._known: dict[str, str | None] = {}

    def category(self, model: str) -> str | None:
        """The model string's category; `mixed` when it names models of several
        categories; None when a part of it is in no table."""
        if model not in self._known:
            self._known[model] = self._look_up(_model_key(model))
        return self._known[model]

    def _look_up(self, key: str) -> str | None:
        if key in self.categories:
            return self.categories[key]
        found: set[str] = set()
        for part in filter(None, _COMBINED.split(key)):
            category = self._part(part)
            if category is None:
                pieces = [self._part(piece) for piece in part.split("/") if piece]
                if not pieces or None in pieces:
                    return None  # a part no table knows: the string's category is unknown
                found.update(piece for piece in pieces if piece is not None)
            else:
                found.add(category)
        if not found:
            return None
        return found.pop() if len(found) == 1 else "mixed"

    def _part(self, part: str) -> str | None:
        table = self.categories
        if part in table:
            return table[part]
        for match in (_UP_TO_NUMBER.match(part), _NAME.match(part)):
            if match and match.group() in table:
                return table[match.group()]
        return table.get(part.rsplit(" ", 1)[-1])


def read_models(path: str) -> dict[str, str]:
    """A companion table (missiles_and_uavs.csv, or a partner's in its layout: the
    columns model and category, any others ignored) as model keys and categories.
    Raises ImportRefused, naming the line, for a category no mapping knows, and
    OSError for a file that cannot be read."""
    with open(path, encoding="utf-8-sig", newline="") as file:
        reader = csv.DictReader(file)
        missing = [c for c in ("model", "category") if c not in (reader.fieldnames or [])]
        if missing:
            raise ImportRefused(
                f"--models {path}: line 1: the header lacks the column(s) {', '.join(missing)}"
            )
        models: dict[str, str] = {}
        for row in reader:
            model, word = (row["model"] or "").strip(), (row["category"] or "").strip()
            if not model or word.casefold() in _NO_CATEGORY:
                continue
            category = COMPANION_CATEGORIES.get(" ".join(word.casefold().split()))
            if category is None:
                raise ImportRefused(
                    f"--models {path}: line {reader.line_num}: column category: {word!r} is "
                    f"not a category Salvo maps ({', '.join(COMPANION_CATEGORIES)})"
                )
            models[_model_key(model)] = category
    return models


# The table the mapping uses. --models replaces it for one import (use_models); the
# worker processes, forked after that, inherit it.
_models = ModelTable(MODEL_CATEGORIES)


@contextmanager
def use_models(models: dict[str, str]) -> Iterator[None]:
    """Map with the built-in table overridden by `models` (a companion table's rows
    take precedence), for the duration of the block."""
    global _models
    before, _models = _models, ModelTable({**MODEL_CATEGORIES, **models})
    try:
        yield
    finally:
        _models = before


def model_category(model: str) -> str | None:
    """The munition category of a model string (ModelTable.category)."""
    return _models.category(model)


# Where a wave was aimed. `target` names one place, several joined by ' and ', or
# the whole country or a part of it ('Ukraine', 'south', 'north and east'); a place
# may carry its district or sea ('Dnipropetrovsk oblast, Dnipro Raion', 'Odesa
# oblast, Black Sea'). `affected region` is not the target: it lists the regions
# where damage was reported, which a nationwide wave may have in only one.
_TARGETS_SPLIT = re.compile(r"\s+and\s+")


@functools.lru_cache(maxsize=4096)
def targets_named(text: str) -> tuple[tuple[str, Region | Town | None], ...]:
    """Each target a `target` text names, as written, with the place the gazetteer
    knows it as (None for 'Ukraine', 'south', a place it does not know). A target
    written 'place, detail' is the first of its parts the gazetteer knows.
    (Cached: the dataset repeats its few target texts.)"""
    targets = []
    for target in filter(None, (part.strip() for part in _TARGETS_SPLIT.split(text))):
        known = [place for part in target.split(",") if (place := place_named(part))]
        targets.append((target, known[0] if len(set(known)) == 1 else None))
    return tuple(targets)


def _target_place(targets: tuple[tuple[str, Region | Town | None], ...]) -> dict[str, Any]:
    """A wave's place: its single target the gazetteer knows (a region, or a town,
    city-precise, in its region); else Ukraine, country-precise."""
    if len(targets) != 1 or targets[0][1] is None:
        return UKRAINE_PLACE
    place = targets[0][1]
    if isinstance(place, Region):
        return region_place(place)
    country = BY_ALPHA2["UA"]
    return _place(
        "missile", place.name, place.region, country, place.latitude, place.longitude, "city"
    )


AIR_FORCE: dict[str, Any] = {"name": "Air Force of Ukraine", "kind": "military", "title": None}

# The pages whose posts the dataset's `source` cells give, by page name in lower case
# (facebook.com/<page>/posts/..., t.me/<page>/...): who reported the figures. The
# Air Force posts on its own page and through its regional air commands ("Povitriani
# Syly ZSU": kpszsu; "Povitrianyi Komanduvannia Pivden": PvKPivden, and so on).
REPORTING_PAGES: dict[str, dict[str, Any]] = {
    "kpszsu": AIR_FORCE,
    "pvkpivden": {"name": "Air Command South", "kind": "military", "title": None},
    "pvkshid": {"name": "Air Command East", "kind": "military", "title": None},
    "pvkzahid": {"name": "Air Command West", "kind": "military", "title": None},
    "pvkcenter": {"name": "Air Command Centre", "kind": "military", "title": None},
    "generalstaff.ua": {
        "name": "General Staff of the Armed Forces of Ukraine", "kind": "military", "title": None
    },
    "cincafu": {
        "name": "Commander-in-Chief of the Armed Forces of Ukraine",
        "kind": "military",
        "title": None,
    },
    "chiefukrdiu": {"name": "Defence Intelligence of Ukraine", "kind": "military", "title": None},
    "kharkivoda.gov.ua": {
        "name": "Kharkiv Regional Military Administration", "kind": "government", "title": None
    },
}  # fmt: skip
# Facebook paths whose first part is no page: a video, a story.
_FACEBOOK_PATHS = frozenset({"watch", "story.php", "permalink.php", "photo.php"})
# Hosts whose first path part is the page.
_PAGE_HOSTS = frozenset({"t.me", "facebook.com", "www.facebook.com", "m.facebook.com"})


class Report(NamedTuple):
    """A `source` cell as a link partners can open, and who reported the figures."""

    url: str
    reporter: dict[str, Any]


@functools.lru_cache(maxsize=65_536)
def report(cell: str) -> Report:
    """The report a `source` cell gives. The dataset writes most as Facebook paths
    without a scheme ('kpszsu/posts/pfbid...', 'watch/?v=...'), a few as full URLs
    (https://t.me/kpszsu/44624) or as a site's path ('kharkivoda.gov.ua/news/123125':
    a first part with a dot that is not a Facebook page's). The reporter is the page's
    (REPORTING_PAGES); a page the table lacks leaves the dataset's, the Air Force."""
    if "://" in cell:
        url = cell
        host, _, path = cell.split("://", 1)[1].partition("/")
        page = path.split("/", 1)[0] if host in _PAGE_HOSTS else host
    else:
        address = cell.lstrip("/")
        page, _, rest = address.partition("/")
        if "." in page and not rest.startswith(("posts/", "videos/", "photos/")):
            url = f"https://{address}"  # a site's own page
        else:
            url = f"https://www.facebook.com/{address}"
    if page in _FACEBOOK_PATHS:
        page = ""
    return Report(url, REPORTING_PAGES.get(page.casefold(), AIR_FORCE))


def map_missile_attack(row: Row) -> Mapped:
    warnings: list[str] = []
    start = _date(row, "time_start")
    end = _date(row, "time_end", required=False)
    assert start is not None
    # An overnight attack is reported in the morning, and Salvo dates it so
    # (docs/coding.md): the end of the wave gives the date.
    date = end or start
    model = _required(row, "model")
    category = model_category(model)
    tallied: tuple[str, ...] = ()
    if category is None:
        # Said once at the end of the import, with the number of its rows.
        tallied = (f"model {model!r} is not in the model table; counted as mixed",)
        category = "mixed"
    launched = _count(row, "launched")
    destroyed = _count(row, "destroyed")
    not_reached = _count(row, "not_reach_goal")
    target = _text(row, "target")
    targets = targets_named(target or "")
    location = _target_place(targets)
    time_start, time_end = _required(row, "time_start"), _text(row, "time_end")
    launch_place = _text(row, "launch_place")
    cell = _text(row, "source")
    # What tells a wave from another: two launches of one model from one place at
    # one time differ by their target, their counts or the report giving them.
    key = _digest(
        time_start, time_end, model, launch_place, _text(row, "target"), launched, destroyed,
        not_reached, cell,
    )  # fmt: skip
    stamp = time_start.replace("-", "").replace(":", "").replace(" ", "-")[:13]
    source_key = "" if cell is None else f"-{_digest(cell)}"
    url, reporter = report(cell) if cell is not None else (None, AIR_FORCE)
    counts = [f"launched {launched if launched is not None else 'an unknown number of'} {model}"]
    if destroyed is not None:
        counts.append(f"air defence destroyed {destroyed}")
    if not_reached is not None:
        counts.append(f"{not_reached} did not reach their targets")
    # The notes name every target as written: of a wave placed at the country, they
    # are what says where it was aimed (and what `q` finds).
    notes = f"Russia {', '.join(counts)}" + (f"; target: {target}." if target else ".")
    record = {
        "id": f"missile-{slug(stamp)}-{slug(model)[:40] or 'model'}-{key}",
        "event_type": "air_defense_interception",
        "date": date.isoformat(),
        "date_precision": "day",
        "location": location,
        "actors": [
            {"name": "Military Forces of Russia", "role": "initiator", "kind": "state_forces"},
            {"name": "Air Force of Ukraine", "role": "interceptor", "kind": "state_forces"},
        ],
        "munitions": [
            {
                "category": category,
                "model": model,
                "launched": launched,
                "intercepted": destroyed,
                "not_reached": not_reached,
                "hit": None,
                "reported_by": reporter["name"],
            }
        ],
        "casualties": {"killed": None, "injured": None},
        "reported_by": [reporter],
        "source": {
            "id": f"missile-attacks-{date.isoformat()}{source_key}",
            "title": f"{reporter['name']} report of {date.isoformat()}",
            "publisher": reporter["name"],
            "url": url,
            "published": date.isoformat(),
            "reference": None,
        },
        "notes": _clip(notes, 2000),
        "provenance": {
            "dataset": "missile-attacks",
            "launch_place": launch_place,
            "carrier": _text(row, "carrier"),
        },
    }
    return Mapped(record, {"location": "target"}, warnings, tallied)


_MISSILE_FIELDS = {
    "id": "time_start",
    "date": "time_end",
    "munitions": "launched",
    "munitions.0.model": "model",
    "munitions.0.launched": "launched",
    "munitions.0.intercepted": "destroyed",
    "munitions.0.not_reached": "not_reach_goal",
    "source.url": "source",
    "notes": "target",
    "provenance.launch_place": "launch_place",
    "provenance.carrier": "carrier",
}

# What map_acled reads. Every layout ACLED has published since 2019 has the required
# ones; the 2019-2022 exports lack disorder_type, civilian_targeting and tags (and
# have data_id, event_id_no_cnty and iso3, which are not read); a monadic export
# lacks actor2, assoc_actor_2 and inter2.
_ACLED_REQUIRED = (
    "event_id_cnty", "event_date", "time_precision", "event_type", "sub_event_type",
    "actor1", "inter1", "location", "latitude", "longitude", "geo_precision", "notes",
    "fatalities", "timestamp",
)  # fmt: skip
_ACLED_OPTIONAL = (
    "disorder_type", "assoc_actor_1", "actor2", "assoc_actor_2", "inter2",
    "civilian_targeting", "iso", "country", "admin1", "source", "source_scale", "tags",
)  # fmt: skip

LAYOUTS = {
    "acled": Layout(
        "acled",
        _ACLED_REQUIRED,
        map_acled,
        _ACLED_FIELDS,
        optional=_ACLED_OPTIONAL,
        one_of=("iso", "country"),
        dates=("event_date",),
        actor_rows="actor2",
    ),
    "ucdp-ged": Layout("ucdp-ged", GED_COLUMNS, map_ged, _GED_FIELDS),
    "missile-attacks": Layout(
        "missile-attacks", MISSILE_COLUMNS, map_missile_attack, _MISSILE_FIELDS
    ),
}


# Reading, validating and writing.


class Rejected(NamedTuple):
    """A row that does not import: its line, each (column, reason), and its cells."""

    line: int
    problems: list[tuple[str, str]]
    cells: list[str]

    def reason(self) -> str:
        return "; ".join(f"column {column}: {reason}" for column, reason in self.problems)


@dataclass
class Batch:
    """One batch of rows mapped and validated (in a worker process, for a bulk load)."""

    rows: EventRows
    lines: dict[str, int]  # each event's id, and the line of its row
    read: int
    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tallied: Counter[str] = field(default_factory=Counter)
    repeated: int = 0


# The cells pandas reads as missing by default (read_csv's na_values), R's NA among
# them; an empty cell is always missing. --na-values replaces the set.
NA_VALUES = frozenset(
    {
        "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
        "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
    }
)  # fmt: skip


class Reading(NamedTuple):
    """How an import reads cells: which are missing (--na-values), and the form of the
    layout's dates where the usual forms leave them ambiguous (--date-format)."""

    na_values: frozenset[str] = NA_VALUES
    date_format: str | None = None


AS_GIVEN = Reading()  # the defaults

Lines = list[tuple[int, list[str]]]


def map_batch(
    layout_name: str,
    label: str,
    header: list[str],
    lines: Lines,
    changed_at: datetime.datetime,
    reading: Reading = AS_GIVEN,
) -> Batch:
    """Map and validate the rows of one batch, and render the valid ones' table rows.
    A row giving the event id of an earlier row in the batch is rejected (import_rows
    checks the ids of earlier batches). In a file of one row per actor, the rows of an
    event come together (import_rows) and are merged into one event."""
    layout = LAYOUTS[layout_name]
    # Optional columns the header lacks read as empty cells.
    absent = {column: "" for column in layout.optional if column not in header}
    dates = [column for column in layout.dates if column in header and reading.date_format]
    na_values = reading.na_values
    events: dict[str, dict[str, Any]] = {}
    event_lines: dict[str, int] = {}  # in the order of `events`
    rejected: list[Rejected] = []
    warnings: list[str] = []
    tallied: Counter[str] = Counter()
    event_cells: dict[str, list[str]] = {}
    repeated = 0
    for group in _grouped(layout, header, lines):
        line, cells = group[0]
        if len(cells) != len(header):
            problem = ("(row)", f"has {len(cells)} fields where the header has {len(header)}")
            rejected.append(Rejected(line, [problem], cells))
            continue
        rows = []
        for row_line, row_cells in group:
            if not na_values.isdisjoint(row_cells):
                row_cells = ["" if cell in na_values else cell for cell in row_cells]
            row = dict(zip(header, row_cells, strict=True))
            if absent:
                row.update(absent)
            for column in dates:
                date = read_date(row[column].strip(), reading.date_format)
                if isinstance(date, datetime.date):
                    row[column] = date.isoformat()
            rows.append((row_line, row))
        origins: dict[str, tuple[int, str]] = {}
        try:
            if len(rows) == 1:
                row = rows[0][1]
            else:
                row, origins = merge_actor_rows(rows)
            mapped = layout.map_row(row)
        except RowError as error:
            at = (error.line, error.column) if error.line else origins.get(error.column)
            rejected.extend(_rejected(group, [(*(at or (line, error.column)), error.reason)]))
            continue
        try:
            event = _SCHEMA.load(mapped.record)
        except ValidationError as error:
            problems = []
            for path, message in flatten_messages(error.messages):
                column = layout.column_of(path, mapped.columns)
                problems.append((*origins.get(column, (line, column)), f"{message} (field {path})"))
            rejected.extend(_rejected(group, problems))
            continue
        if event["id"] in events:
            if cells == event_cells[event["id"]]:
                warnings.append(_repeat(label, line, event_lines[event["id"]]))
                repeated += 1
                continue
            column = layout.column_of("id", mapped.columns)
            rejected.extend(_rejected(group, [(line, column, _twice(event["id"], event_lines))]))
            continue
        warnings.extend(f"{label}: line {line}: {warning}" for warning in mapped.warnings)
        tallied.update(mapped.tallied)
        events[event["id"]] = event
        event_lines[event["id"]] = line
        event_cells[event["id"]] = cells
    return Batch(
        event_rows(events.values(), changed_at),
        event_lines,
        len(lines),
        rejected,
        warnings,
        tallied,
        repeated,
    )


def _rejected(group: Lines, problems: list[tuple[int, str, str]]) -> list[Rejected]:
    """The rows of one event rejected: each (line, column, reason) on its line, and
    the event's other rows (in a file of one row per actor) as refused with it."""
    faulty = sorted({line for line, _, _ in problems})
    others = ", ".join(map(str, faulty))
    return [
        Rejected(
            line,
            [(column, reason) for at, column, reason in problems if at == line]
            or [("(row)", f"is a row of the event of line {others}, which is refused")],
            cells,
        )
        for line, cells in group
    ]


def _grouped(layout: Layout, header: list[str], lines: Lines) -> list[Lines]:
    """The rows of each event: one each, or in a file of one row per actor, the rows
    giving one event id together (they come together: import_rows)."""
    if not layout.by_actor(header):
        return [[row] for row in lines]
    key = functools.partial(_event_key, header.index(layout.column_of("id", {})), len(header))
    return [list(rows) for _, rows in itertools.groupby(lines, key=lambda row: key(*row))]


def _event_key(id_index: int, width: int, line: int, cells: list[str]) -> str:
    """What groups the rows of one event: the id as written. A row without one, or
    with the wrong number of fields, is an event of its own (and refused as such)."""
    event_id = cells[id_index].strip() if len(cells) == width else ""
    return event_id or f"\0{line}"


# One actor's cells in a monadic ACLED row, and where the merge puts a later row's.
_ACTOR_CELLS = ("actor1", "assoc_actor_1", "inter1")
_SECOND_ACTOR_CELLS = ("actor2", "assoc_actor_2", "inter2")


def merge_actor_rows(rows: list[tuple[int, Row]]) -> tuple[Row, dict[str, tuple[int, str]]]:
    """An event's rows of a monadic ACLED file (one row per actor, each in actor1) as
    one row: the first row's actor is actor1, the second's actor2 (its inter1 inter2,
    its associated actors assoc_actor_2), and any further row's actor and associated
    actors join assoc_actor_2. Returned with the (line, column) each merged column
    came from, for error messages. Every other cell read must be alike on every row:
    a row that differs is refused, rather than one row silently winning."""
    (first_line, first), (second_line, second), *rest = rows
    merged = dict(first)
    origins = {
        merged_column: (second_line, column)
        for merged_column, column in zip(_SECOND_ACTOR_CELLS, _ACTOR_CELLS, strict=True)
    }
    compared = [c for c in (*_ACLED_REQUIRED, *_ACLED_OPTIONAL) if c not in _ACTOR_CELLS]
    for line, row in rows[1:]:
        for column in compared:
            if row[column] != first[column]:
                raise RowError(
                    column,
                    f"{row[column]!r} differs from {first[column]!r} on line {first_line}, "
                    f"a row of the same event; a monadic file repeats an event's cells on "
                    "each actor's row",
                    line,
                )
    merged["actor2"], merged["inter2"] = second["actor1"], second["inter1"]
    associated = [second["assoc_actor_1"]]
    for _, row in rest:
        associated += [row["actor1"], row["assoc_actor_1"]]
    merged["assoc_actor_2"] = "; ".join(name for name in associated if name.strip())
    return merged, origins


def _repeat(label: str, line: int, earlier: int) -> str:
    # A row repeating another cell for cell is no invalid data: it adds nothing.
    return f"{label}: line {line} repeats line {earlier} exactly; skipped"


def _twice(event_id: str, lines: dict[str, int]) -> str:
    # Rows with one id would replace each other, and a second import of the file would
    # then write the earlier row again: it would not be idempotent.
    return (
        f"gives the event id {event_id!r}, as line {lines[event_id]} does; a file gives "
        "each event once"
    )


@dataclass
class ImportResult:
    read: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0
    tallied: Counter[str] = field(default_factory=Counter)
    repeated: int = 0
    # Other events written again: they copy a place or source the import changed.
    rerendered: int = 0

    def wrote(self, counts: BulkCounts) -> None:
        """Take what a store's bulk load wrote of the import's events (import_rows'
        `into`), which import_rows counted as unchanged until then."""
        self.new, self.updated, self.rerendered = counts
        self.unchanged -= counts.new + counts.updated


def read_batches(
    label: str, stream: TextIO, layout: Layout
) -> tuple[list[str], Iterator[list[tuple[int, list[str]]]]]:
    """The header, and the rows in batches of (line where the row starts, cells).
    Raises ImportRefused if the header lacks a column the layout requires."""
    reader = csv.reader(stream)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise ImportRefused(f"{label}: the file is empty; it needs a header line") from None
    except (csv.Error, UnicodeDecodeError) as error:
        raise ImportRefused(f"{label}: line 1: {_reading_error(error)}") from None
    missing = layout.missing(header)
    if missing:
        raise ImportRefused(f"{label}: line 1: the header lacks the column(s) {', '.join(missing)}")
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise ImportRefused(f"{label}: line 1: the header names {', '.join(twice)} twice")

    def batches() -> Iterator[list[tuple[int, list[str]]]]:
        batch: list[tuple[int, list[str]]] = []
        line = reader.line_num + 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as error:
                raise ImportRefused(f"{label}: line {line}: {_reading_error(error)}") from None
            if cells:  # a blank line is no row
                batch.append((line, cells))
            line = reader.line_num + 1
            if len(batch) == BATCH_SIZE:
                yield batch
                batch = []
        if batch:
            yield batch

    return header, batches()


def _reading_error(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return "is not UTF-8 text"
    return f"is not valid CSV ({error})"


def import_rows(
    db: Database,
    layout_name: str,
    label: str,
    stream: TextIO,
    *,
    changed_at: datetime.datetime,
    on_rejected: Callable[[list[str], Rejected], None] | None = None,
    on_progress: Callable[[int], None] = lambda rows: None,
    workers: int = 1,
    reading: Reading = AS_GIVEN,
    into: BulkWrites | None = None,
) -> ImportResult:
    """Import a CSV stream in the caller's transaction. Without `on_rejected` the first
    invalid row raises ImportRefused (the caller rolls back); with it, each rejected
    row is handed to it with the header, and the valid rows are written.

    A row an earlier import wrote, whose event is still as that import left it, is
    known by the digest of its cells (_SourceRows) and skipped: only new and changed
    rows are mapped and validated.

    `into`, a store's bulk load (PostgreSQL's), takes the rows and knows the source
    rows instead; `db` is then a new, empty SQLite file (migrated) that holds only
    what the import keeps while it reads: the ids given so far, a file of one row per
    actor sorted by event. The bulk load skips the events whose content is stored:
    until it has written (ImportResult.wrote), every event given counts as
    unchanged."""
    layout = LAYOUTS[layout_name]
    id_column = layout.column_of("id", {})
    header, batches = read_batches(label, stream, layout)
    result = ImportResult()
    context = _import_context(layout_name, header, reading)
    if into is None:
        sources = _SourceRows(functools.partial(unchanged_sources, db.conn), context)
    else:
        sources = _SourceRows(into.unchanged_sources, context)
    # The batches the workers have, each with what _SourceRows found in it: a row
    # whose id an earlier batch gave is rejected here, with its cells.
    in_flight: deque[tuple[Lines, _Sorted]] = deque()
    first_seq = next_seq(db.conn)

    def unknown() -> Iterator[Lines]:
        for lines in batches:
            sorted_out = sources.sort_out(_grouped(layout, header, lines))
            in_flight.append((lines, sorted_out))
            yield sorted_out.unknown

    with (
        ExitStack() as bulk,
        _earlier_ids(db, id_column) as earlier,
        remembering_sources(db.conn) as remember,
    ):
        if layout.by_actor(header):
            id_index = header.index(id_column)
            batches = bulk.enter_context(_events_together(db, id_index, len(header), batches))
        # Bulk from the first row to write, in a small database; else once many are.
        bulk_after = 0 if _fewer_events_than(db, BULK_AFTER_ROWS) else BULK_AFTER_ROWS
        # The bulk load, once the rows to write are many (bulk_after).
        loading: BulkLoad | None = None
        mapped = _mapped(layout_name, label, header, unknown(), changed_at, reading, workers)
        for batch in mapped:
            lines, sorted_out = in_flight.popleft()
            sorted_out.join(batch, lines, label, id_column)
            earlier.check(batch, lines, label)
            if batch.rejected and on_rejected is None:
                first = batch.rejected[0]
                raise ImportRefused(f"{label}: line {first.line}: {first.reason()}")
            for rejected in batch.rejected:
                assert on_rejected is not None
                on_rejected(header, rejected)
            result.rejected += len(batch.rejected)
            result.repeated += batch.repeated
            result.tallied.update(batch.tallied)
            result.warning_count += len(batch.warnings)
            result.warnings.extend(batch.warnings[: max(0, 20 - len(result.warnings))])
            if into is not None:
                into.add(batch.rows)
                into.remember_sources(sorted_out.sources(batch))
                result.unchanged += len(batch.lines)
            elif batch.lines:
                to_write = result.new + result.updated + len(batch.rows.events)
                if batch.rows.events and to_write > bulk_after and loading is None:
                    loading = bulk.enter_context(bulk_load(db))
                # Known events exist; only the mapped ones' ids need looking up.
                mapped_ids = [i for i in batch.lines if i not in sorted_out.known]
                existing = len(batch.lines) - len(mapped_ids)
                existing += len(taken_ids(db.conn, mapped_ids)) if mapped_ids else 0
                written = insert_rows(db, batch.rows, bulk=loading)
                new = len(batch.lines) - existing
                result.new += new
                result.updated += written - new
                result.unchanged += len(batch.lines) - written
                remember(sorted_out.sources(batch))
            result.read += batch.read + sorted_out.skipped
            on_progress(len(lines))
    # Each event written takes one number: those beyond the import's own went to the
    # events re-rendered with a place or source it changed (at the end of a bulk load).
    result.rerendered = next_seq(db.conn) - first_seq - result.new - result.updated
    return result


def _import_context(layout_name: str, header: list[str], reading: Reading) -> bytes:
    """What a row's event depends on beside its cells: the layout, the header (which
    names the cells), how cells are read, the model table, and the code and data that
    map, validate and render rows. A change to any of them makes every row unknown,
    so that the next import maps each once more."""
    context = hashlib.sha256()
    for part in (
        layout_name,
        header,
        sorted(reading.na_values),
        reading.date_format,
        sorted(_models.categories.items()),
    ):
        context.update(repr(part).encode())
    context.update(_mapping_code())
    return context.digest()


@functools.cache
def _mapping_code() -> bytes:
    """A digest of the code and data that turn a row into an event and its stored
    rows (the seed and schemas packages, the store's renderer), and of the versions of
    the libraries that validate it and name its country. An upgrade of any of them
    makes the next import revalidate every row once."""
    code = hashlib.sha256()
    seed, schemas = Path(__file__).parent, Path(schemas_package.__file__).parent
    files = [*seed.glob("*.py"), *schemas.glob("*.py"), *(schemas / "data").iterdir()]
    for path in [*sorted(files), Path(writes.__file__)]:
        code.update(path.name.encode() + path.read_bytes())
    for library in ("marshmallow", "pycountry"):
        code.update(importlib.metadata.version(library).encode())
    return code.digest()


class _Sorted(NamedTuple):
    """One batch's rows as _SourceRows.sort_out finds them."""

    unknown: Lines  # to map and validate
    digests: dict[int, bytes]  # the digest of each unknown event's rows, by its first line
    known: dict[str, int]  # the unchanged events' ids, and their first lines
    repeats: list[tuple[int, int]]  # (line, earlier line) of rows repeating a known row
    skipped: int  # the rows of the known events and their repeats

    def sources(self, batch: Batch) -> Iterator[tuple[bytes, str]]:
        """The batch's mapped events (written, or unchanged in content) as source rows to
        remember for the next import of their file: (digest, event id)."""
        for row in batch.rows.events:
            yield self.digests[batch.lines[row.id]], row.id

    def join(self, batch: Batch, lines: Lines, label: str, id_column: str) -> None:
        """Add the batch's unchanged events to its mapped ones (`lines`: the batch's
        rows, whose cells a rejection lists). Where a mapped row gives the id of a
        known one, the later of the two is rejected, as map_batch rejects any row
        giving an earlier row's id."""
        for line, earlier in self.repeats:
            batch.warnings.append(_repeat(label, line, earlier))
            batch.repeated += 1
        cells = dict(lines)
        twice = set()
        for event_id, line in self.known.items():
            mapped_line = batch.lines.get(event_id)
            if mapped_line is not None:
                earlier, later = sorted((line, mapped_line))
                problem = (id_column, _twice(event_id, {event_id: earlier}))
                batch.rejected.append(Rejected(later, [problem], cells[later]))
                if later == line:
                    continue
                twice.add(event_id)
            batch.lines[event_id] = line
        if twice:
            batch.rows = batch.rows.only({row.id for row in batch.rows.events} - twice)
        batch.rejected.sort(key=lambda rejected: rejected.line)


class _SourceRows:
    """The digests of the source rows imports wrote (the store's import_sources): a
    row is known when its digest, taken in the same context (_import_context), is
    there and its event has had no write since (unchanged_sources). Each event's rows
    are digested together (one row, or the rows of one event in a file of one row per
    actor)."""

    def __init__(
        self, unchanged: Callable[[Collection[bytes]], dict[bytes, str]], context: bytes
    ) -> None:
        self._unchanged = unchanged
        self._context = hashlib.blake2b(context, digest_size=16)

    def _digest(self, group: Lines) -> bytes:
        digest = self._context.copy()
        for _, cells in group:
            digest.update(repr(cells).encode())
        return digest.digest()

    def sort_out(self, groups: list[Lines]) -> _Sorted:
        digests = {group[0][0]: self._digest(group) for group in groups}
        unchanged = self._unchanged(digests.values())
        unknown: Lines = []
        known: dict[str, int] = {}
        repeats: list[tuple[int, int]] = []
        skipped = 0
        for group in groups:
            line = group[0][0]
            event_id = unchanged.get(digests[line])
            if event_id is None:
                unknown.extend(group)
                continue
            del digests[line]
            skipped += len(group)
            if event_id in known:
                repeats.append((line, known[event_id]))
            else:
                known[event_id] = line
        return _Sorted(unknown, digests, known, repeats, skipped)


class _EarlierIds:
    """The event ids of an import's earlier batches, with their lines, in a temporary
    table (memory stays flat however long the file)."""

    def __init__(self, db: Database, id_column: str) -> None:
        self._conn, self._id_column = db.conn, id_column

    def check(self, batch: Batch, lines: list[tuple[int, list[str]]], label: str) -> None:
        """Reject the batch's rows whose ids an earlier batch gave (`lines`: the
        batch's rows, whose cells a rejection lists), skip those repeating that row
        exactly, and remember the ids of the rest with a digest of their cells."""
        ids = list(batch.lines)
        given = {
            event_id: (line, cells)
            for event_id, line, cells in self._conn.execute(
                f"SELECT id, line, cells FROM temp.import_ids WHERE id IN ({placeholders(ids)})",
                ids,
            )
        }
        cells = dict(lines)
        if given:
            for event_id in given.keys() & batch.lines.keys():
                line = batch.lines.pop(event_id)
                earlier, earlier_cells = given[event_id]
                if _cells_digest(cells[line]) == earlier_cells:
                    batch.warnings.append(_repeat(label, line, earlier))
                    batch.repeated += 1
                    continue
                problem = (self._id_column, _twice(event_id, {event_id: earlier}))
                batch.rejected.append(Rejected(line, [problem], cells[line]))
            batch.rejected.sort(key=lambda rejected: rejected.line)
            batch.rows = batch.rows.only(set(batch.lines))
        self._conn.executemany(
            "INSERT INTO temp.import_ids VALUES (?, ?, ?)",
            (
                (event_id, line, _cells_digest(cells[line]))
                for event_id, line in batch.lines.items()
            ),
        )


def _cells_digest(cells: list[str]) -> int:
    """What tells a row's cells from another's within one import: Python's 64-bit hash,
    consistent in the importer's process (it alone computes it). It is compared only
    where two rows give one id, so a false match is a 1 in 2**64 chance there; a SHA-1
    of the joined cells cost 6.5 us a row of the importer's CPU (100,000 ACLED rows),
    this about 1."""
    return hash(tuple(cells))


@contextmanager
def _earlier_ids(db: Database, id_column: str) -> Iterator[_EarlierIds]:
    db.execute(
        "CREATE TEMP TABLE import_ids (id TEXT PRIMARY KEY, line INTEGER, cells INTEGER) "
        "WITHOUT ROWID"
    )
    try:
        yield _EarlierIds(db, id_column)
    finally:
        # IF EXISTS: a failed write (a full disk) may have rolled the transaction back.
        db.execute("DROP TABLE IF EXISTS temp.import_ids")


@contextmanager
def _events_together(
    db: Database, id_index: int, width: int, batches: Iterable[Lines]
) -> Iterator[Iterator[Lines]]:
    """The rows of a file of one row per actor in batches of whole events, each event's
    rows together, in the order of its first row.

    An event's rows may be anywhere in the file, so a first pass writes every row to
    a temporary table keyed by (its event's first line, its line); memory stays flat,
    and batches can then be read in that order, whole events at a time."""
    db.execute("CREATE TEMP TABLE import_events (event TEXT PRIMARY KEY, line INTEGER)")
    db.execute(
        "CREATE TEMP TABLE import_rows (first_line INTEGER, line INTEGER, cells TEXT, "
        "PRIMARY KEY (first_line, line)) WITHOUT ROWID"
    )
    try:
        for lines in batches:
            keys = [_event_key(id_index, width, line, cells) for line, cells in lines]
            db.conn.executemany(
                "INSERT OR IGNORE INTO temp.import_events VALUES (?, ?)",
                zip(keys, (line for line, _ in lines), strict=True),
            )
            first = dict(
                db.conn.execute(
                    "SELECT event, line FROM temp.import_events "
                    f"WHERE event IN ({placeholders(keys)})",
                    keys,
                )
            )
            db.conn.executemany(
                "INSERT INTO temp.import_rows VALUES (?, ?, ?)",
                (
                    (first[key], line, json.dumps(cells))
                    for key, (line, cells) in zip(keys, lines, strict=True)
                ),
            )
        yield _whole_events(db)
    finally:
        # IF EXISTS: a failed write (a full disk) may have rolled the transaction back.
        db.execute("DROP TABLE IF EXISTS temp.import_events")
        db.execute("DROP TABLE IF EXISTS temp.import_rows")


def _whole_events(db: Database) -> Iterator[Lines]:
    """The rows _events_together wrote, in batches of about BATCH_SIZE rows that never
    split an event. Read a page at a time (no statement stays open while the importer
    drops and builds its indexes)."""
    after: tuple[int, int] = (0, 0)
    carried: list[tuple[int, int, str]] = []
    while True:
        page = db.conn.execute(
            "SELECT first_line, line, cells FROM temp.import_rows "
            "WHERE (first_line, line) > (?, ?) ORDER BY first_line, line LIMIT ?",
            [*after, BATCH_SIZE],
        ).fetchall()
        rows = carried + page
        cut = len(rows)
        if len(page) == BATCH_SIZE:
            after = page[-1][:2]
            # The last event may go on in the next page: it waits for it.
            while cut and rows[cut - 1][0] == page[-1][0]:
                cut -= 1
        carried = rows[cut:]
        if cut:
            yield [(line, json.loads(cells)) for _, line, cells in rows[:cut]]
        if len(page) < BATCH_SIZE:
            return


def _fewer_events_than(db: Database, count: int) -> bool:
    """Whether the database holds fewer than count events (counting no further)."""
    (held,) = db.execute("SELECT count(*) FROM (SELECT 1 FROM events LIMIT ?)", [count]).fetchone()
    return bool(held < count)


def _mapped(
    layout_name: str,
    label: str,
    header: list[str],
    batches: Iterable[list[tuple[int, list[str]]]],
    changed_at: datetime.datetime,
    reading: Reading,
    workers: int,
) -> Iterator[Batch]:
    """The batches mapped and validated, in file order: here, or in worker processes
    while this one writes."""
    arguments = ((layout_name, label, header, lines, changed_at, reading) for lines in batches)
    return in_order(map_batch, arguments, workers)


def rejects_path(file: str) -> str:
    """Where --skip-invalid lists the rejected rows: beside the input (data.csv gives
    data.rejected.csv), or in the working directory for standard input."""
    if file == "-":
        return "stdin.rejected.csv"
    base = file.removesuffix(".csv").removesuffix(".CSV")
    return f"{base}.rejected.csv"


class RejectedFile:
    """The rejected rows of an import, as CSV: line, column, reason, then the row's own
    cells under the input's header. Written on every --skip-invalid run, so that it
    never lists the rejections of an earlier one (a header alone when none)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._writer: Any = None

    def write(self, header: list[str], rejected: Rejected) -> None:
        if self._file is None:
            self._file = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            self._writer = csv.writer(self._file)
            self._writer.writerow(["line", "column", "reason", *header])
        columns = ", ".join(dict.fromkeys(column for column, _ in rejected.problems))
        reasons = "; ".join(reason for _, reason in rejected.problems)
        self._writer.writerow([rejected.line, columns, reasons, *rejected.cells])

    def close(self) -> None:
        if self._file is None:
            with open(self.path, "w", encoding="utf-8", newline="") as empty:
                csv.writer(empty).writerow(["line", "column", "reason"])
        else:
            self._file.close()


class Progress:
    """Rows read so far: a tqdm bar on a terminal, else a plain line every
    PLAIN_EVERY rows (a log file or a pipe gets no carriage returns). tqdm is imported
    only for a terminal."""

    PLAIN_EVERY = 100_000

    def __init__(self, stream: TextIO) -> None:
        self._stream, self._rows = stream, 0
        self._bar: Any = None
        if stream.isatty() and _columns(stream) > 0:
            from tqdm import tqdm

            self._bar = tqdm(file=stream, unit=" rows", unit_scale=True, desc="seed: import")

    def advance(self, rows: int) -> None:
        before, self._rows = self._rows, self._rows + rows
        if self._bar is not None:
            self._bar.update(rows)
        elif before // self.PLAIN_EVERY != self._rows // self.PLAIN_EVERY:
            print(f"seed: import: {self._rows:,} rows read", file=self._stream, flush=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def _columns(stream: TextIO) -> int:
    """The terminal's width; 0 for a terminal of no size (a bare pseudo-terminal),
    where tqdm would draw an empty bar and the plain lines are better."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 0
