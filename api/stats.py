"""The totals behind /stats: read from the smallest rollup that holds what a request
filters and groups on, or from the events where none does (api/rollups.py), and
shaped for charts: one row per group, or a time series with one row per period,
gaps included, and the events coded coarser than its interval beside it.
"""

import calendar
import datetime
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from api import filters
from api.filters import Scope
from api.rollups import (
    ALL_TIME,
    DAY,
    EVENT_SUMS,
    MONTH,
    MUNITION_SUMS,
    RAW,
    ROLLUPS,
    WIDTH,
    Source,
)
from schemas.vocabulary import MUNITION_CATEGORIES

_EVENT_FILTERS = filters.filters_of(filters.EVENTS)
# group_by -> the dimension it groups on (api/rollups.py), whose SQL over the alias
# `e` reads a rollup and the events alike.
_GROUP_DIMENSIONS = {"event_type": "event_type", "country": "country_code", "admin1": "admin1"}
_GROUP_KEYS = {
    "event_type": "e.event_type",
    "country": "e.country_code",
    "admin1": "coalesce(e.admin1, '')",
}

# Date precisions, finest first; an event goes into a series whose interval is at
# least as coarse as its precision (a week-precise event belongs to the month its
# date is in), and beside the series otherwise.
_FINENESS = {"day": 0, "week": 1, "month": 2, "year": 3}

_ZEROS = (0,) * WIDTH
_EVENT_COLUMN = {name: i for i, name in enumerate(EVENT_SUMS)}
_MUNITION_COLUMN = {name: i for i, name in enumerate(MUNITION_SUMS)}


@dataclass(frozen=True)
class Part:
    """One statement of a request's totals: a source and the arguments (the
    request's, with the date range narrowed to what this source reads)."""

    source: Source
    args: dict[str, Any]


def plan(args: dict[str, Any]) -> list[Part]:
    """Where a request's totals are read from: the smallest rollup that keeps the
    dimensions its filters and grouping read, as finely dated as it needs, or the
    events. A month rollup answers whole months; the days at either end of a range
    that cuts a month come from a day rollup."""
    given = [f for f in _EVENT_FILTERS if any(name in args for name in f.params)]
    if any(f.rollup is None for f in given):
        return [Part(RAW, args)]
    needed = {f.rollup for f in given if f.rollup is not None and f.rollup != "date"}
    if args.get("group_by") is not None:
        needed.add(_GROUP_DIMENSIONS[args["group_by"]])
    days = _smallest(needed, DAY)
    if args.get("interval") in ("day", "week"):
        return [Part(days, args)]
    date_from, date_to = args.get("date_from"), args.get("date_to")
    if date_from is None and date_to is None:
        return [Part(_smallest(needed, MONTH if args.get("interval") else ALL_TIME), args)]
    months = _smallest(needed, MONTH)
    first = date_from if date_from is None or date_from.day == 1 else _next_month(date_from)
    last = date_to
    if date_to is not None and not _is_month_end(date_to):
        last = date_to.replace(day=1) - datetime.timedelta(days=1)
    if first is not None and last is not None and first > last:
        return [Part(days, args)]
    parts = [Part(months, {**args, "date_from": first, "date_to": last})]
    if date_from is not None and first is not None and date_from < first:
        parts.append(Part(days, {**args, "date_to": first - datetime.timedelta(days=1)}))
    if date_to is not None and last is not None and date_to > last:
        parts.append(Part(days, {**args, "date_from": last + datetime.timedelta(days=1)}))
    return parts


def _smallest(dimensions: set[str], grain: int) -> Source:
    """The first rollup keeping these dimensions with dates at least as fine."""
    for rollup in ROLLUPS:
        if dimensions <= set(rollup.dimensions) and rollup.grain <= grain:
            return Source(rollup)
    return RAW


def _next_month(day: datetime.date) -> datetime.date:
    return (day.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)


def _is_month_end(day: datetime.date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


# Munition category -> its MUNITION_SUMS, and '' -> the EVENT_SUMS.
Totals = dict[str, tuple[int, ...]]


def _keys(args: dict[str, Any]) -> list[str]:
    """The key expressions a request's totals are grouped by (see totals)."""
    interval = args.get("interval")
    if interval == "month":
        return ["substr(e.date, 1, 7)", "e.date_precision"]
    if interval is not None:
        return ["e.date", "e.date_precision"]
    if args.get("group_by") is not None:
        return [_GROUP_KEYS[args["group_by"]]]
    return []


def statements(
    conn: sqlite3.Connection, args: dict[str, Any], raw: bool = False
) -> list[tuple[str, list[Any]]]:
    """The SQL (and parameters) behind a request's totals: one statement per part of
    its plan, or with `raw` one over the events (which tests compare them with)."""
    found = []
    for part in [Part(RAW, args)] if raw else plan(args):
        part_args = {name: value for name, value in part.args.items() if value is not None}
        condition, params = filters.where(
            Scope.events(conn, paged=False), _EVENT_FILTERS, part_args
        )
        found.append(part.source.statement(_keys(args), condition, params))
    return found


def totals(
    conn: sqlite3.Connection, args: dict[str, Any], raw: bool = False
) -> dict[tuple[Any, ...], Totals]:
    """Totals per key: (group,) with group_by, (date, precision) with an interval
    (days, or months for interval=month), () otherwise."""
    found: dict[tuple[Any, ...], Totals] = {}
    width = len(_keys(args))
    for sql, params in statements(conn, args, raw):
        for row in conn.execute(sql, params):
            key, category, sums = row[:width], row[width], row[width + 1 :]
            by_category = found.setdefault(key, {})
            earlier = by_category.get(category)
            by_category[category] = (
                sums if earlier is None else tuple(map(sum, zip(earlier, sums, strict=True)))
            )
    return found


def _merge(into: dict[Any, Totals], key: Any, totals: Totals) -> None:
    by_category = into.setdefault(key, {})
    for category, sums in totals.items():
        earlier = by_category.get(category)
        by_category[category] = (
            sums if earlier is None else tuple(map(sum, zip(earlier, sums, strict=True)))
        )


@dataclass
class Period:
    """A row of a series or beside it: the period's name, its precision, and the days
    of it the totals cover."""

    key: str
    precision: str
    start: datetime.date
    end: datetime.date


def period_of(day: datetime.date, precision: str) -> Period:
    """The period of one precision that holds a day."""
    if precision == "day":
        return Period(day.isoformat(), "day", day, day)
    if precision == "week":
        year, week, weekday = day.isocalendar()
        start = day - datetime.timedelta(days=weekday - 1)
        return Period(f"{year}-W{week:02d}", "week", start, start + datetime.timedelta(days=6))
    if precision == "month":
        start = day.replace(day=1)
        end = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        return Period(day.strftime("%Y-%m"), "month", start, end)
    return Period(str(day.year), "year", day.replace(month=1, day=1), day.replace(month=12, day=31))


def _periods(first: datetime.date, last: datetime.date, interval: str) -> Iterator[Period]:
    day = first
    while day <= last:
        period = period_of(day, interval)
        yield period
        day = period.end + datetime.timedelta(days=1)


@dataclass
class Series:
    """A time series: its rows in order, gaps included, the periods coded coarser
    than the interval, and the days it covers (None when nothing matched and no
    range was given)."""

    rows: list[tuple[Period, Totals]]
    coarser: list[tuple[Period, Totals]]
    first: datetime.date | None
    last: datetime.date | None


def series(conn: sqlite3.Connection, args: dict[str, Any]) -> Series:
    interval = args["interval"]
    in_series: dict[str, tuple[Period, Totals]] = {}
    coarser: dict[str, tuple[Period, Totals]] = {}
    for (date, precision), found in totals(conn, args).items():
        day = datetime.date.fromisoformat(date if len(date) == 10 else f"{date}-01")
        if _FINENESS[precision] <= _FINENESS[interval]:
            period, into = period_of(day, interval), in_series
        else:
            period, into = period_of(day, precision), coarser
        _, merged = into.setdefault(period.key, (period, {}))
        _merge({period.key: merged}, period.key, found)
    first, last = args.get("date_from"), args.get("date_to")
    if in_series and first is None:
        first = min(period.start for period, _ in in_series.values())
    if in_series and last is None:
        last = max(period.end for period, _ in in_series.values())
    rows = []
    if first is not None and last is not None:
        for period in _periods(first, last, interval):
            _, found = in_series.get(period.key, (period, {}))
            period.start, period.end = max(period.start, first), min(period.end, last)
            rows.append((period, found))
    ordered = sorted(coarser.values(), key=lambda item: (item[0].start, item[0].key))
    return Series(rows, ordered, first, last)


def grouped(conn: sqlite3.Connection, args: dict[str, Any]) -> list[tuple[str | None, Totals]]:
    """Totals per group in key order; the one overall total without group_by (also
    when nothing matched)."""
    found = totals(conn, args)
    if args.get("group_by") is None:
        return [(None, found.get((), {}))]
    return sorted(((key or None, by_category) for (key,), by_category in found.items()), key=_name)


def _name(item: tuple[str | None, Totals]) -> tuple[bool, str]:
    # A null group (a place with no region) sorts first, as in every other listing.
    return item[0] is not None, item[0] or ""


def render_totals(found: Totals) -> dict[str, Any]:
    """The events, casualty and munition figures of one row, as the API gives them."""
    events = found.get("", _ZEROS)
    return {
        "events": events[_EVENTS],
        "munitions": {
            category: _munitions(found[category]) if category in found else _NO_ENTRIES
            for category in MUNITION_CATEGORIES
        },
        "killed": _casualties(events, _KILLED),
        "injured": _casualties(events, _INJURED),
    }


_EVENTS = _EVENT_COLUMN["events"]
_CASUALTY_PARTS = ("best", "low", "high", "reporting", "no_high", "lower_bounds", "inexact")
_KILLED, _INJURED = (
    tuple(_EVENT_COLUMN[f"{kind}_{part}"] for part in _CASUALTY_PARTS)
    for kind in ("killed", "injured")
)
_UNKNOWN = {"best": None, "low": None, "high": None, "qualifier": None, "events_reporting": 0}


def _casualties(sums: tuple[int, ...], columns: tuple[int, ...]) -> dict[str, Any]:
    best, low, high, reporting, no_high, lower_bounds, inexact = (sums[i] for i in columns)
    if not reporting:
        return _UNKNOWN
    if lower_bounds:
        qualifier = "at_least"
    elif inexact:
        qualifier = "approximately"
    else:
        qualifier = "exact"
    return {
        "best": best,
        "low": low,
        "high": None if no_high else high,
        "qualifier": qualifier,
        "events_reporting": reporting,
    }


_NO_ENTRIES = {
    "launched": None,
    "intercepted": None,
    "launched_with_outcome": None,
    "intercepted_with_outcome": None,
    "interception_rate": None,
    "not_reached": None,
    "hit": None,
    "events": 0,
}


def _munitions(sums: tuple[int, ...]) -> dict[str, Any]:
    (
        events,
        launched,
        launched_reporting,
        intercepted,
        intercepted_reporting,
        not_reached,
        not_reached_reporting,
        hit,
        hit_reporting,
        launched_paired,
        intercepted_paired,
        paired,
    ) = sums[: len(MUNITION_SUMS)]
    return {
        "launched": launched if launched_reporting else None,
        "intercepted": intercepted if intercepted_reporting else None,
        "launched_with_outcome": launched_paired if paired else None,
        "intercepted_with_outcome": intercepted_paired if paired else None,
        "interception_rate": (
            round(intercepted_paired / launched_paired, 4) if paired and launched_paired else None
        ),
        "not_reached": not_reached if not_reached_reporting else None,
        "hit": hit if hit_reporting else None,
        "events": events,
    }
