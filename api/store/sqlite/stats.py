"""The totals behind /stats: read from the smallest rollup that holds what a request
filters and groups on, or from the events where none does (api/store/sqlite/rollups.py), and
shaped for charts: one row per group, or a time series with one row per period,
gaps included, and the events coded coarser than its interval beside it.

Engine-neutral despite its folder: the SQL is built with the connection's dialect
(dialect_of) and run through its `execute`, which takes `?` statements (a SQLite
connection, or PostgreSQL's dialect.Reading).
"""

import calendar
import datetime
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from api.store import InvalidParameters, filters
from api.store.dialect import Dialect
from api.store.filters import Scope
from api.store.series import Group, Period, Series, period_of, shifted
from api.store.sqlite.dialect import SQLITE
from api.store.sqlite.rollups import (
    ALL_TIME,
    DAY,
    DIMENSIONS,
    DRAWN,
    EVENT_SUMS,
    MONTH,
    MUNITION_SUMS,
    RAW,
    ROLLUPS,
    WEEK,
    WIDTH,
    Source,
    serves,
)
from schemas.vocabulary import ALL_CATEGORIES, DATE_PRECISIONS, MUNITION_CATEGORIES

_EVENT_FILTERS = filters.filters_of(filters.EVENTS)


def dialect_of(conn: Any) -> Dialect:
    """The dialect of the connection the totals are read on: a connection of
    another engine names its own (`dialect`), whose execute takes statements with
    `?` parameters as this module writes them (PostgreSQL's dialect.Reading); a
    SQLite connection is SQLite's."""
    dialect: Dialect = getattr(conn, "dialect", SQLITE)
    return dialect


# group_by -> the dimension it groups on (api/store/sqlite/rollups.py), whose SQL over the alias
# `e` reads a rollup and the events alike.
# Grouping by place (`location_id`) is /locations' event counts of a filtered view,
# never a group_by a request gives (the vocabulary refuses it).
_PLACE = "location_id"
_GROUP_DIMENSIONS = {
    "event_type": "event_type",
    "country": "country_code",
    "admin1": "admin1",
    _PLACE: _PLACE,
}
_GROUP_KEYS = {name: DIMENSIONS[dimension] for name, dimension in _GROUP_DIMENSIONS.items()}
# An argument of the series' own reads, never a request's: the groups a page of
# small multiples shows, so that it sums no other group's rows.
_PAGE_GROUPS = "page_groups"

# Date precisions, finest first as the vocabulary lists them; an event goes into a
# series whose interval is at least as coarse as its precision (a week-precise event
# belongs to the month its date is in), and beside the series otherwise.
_FINENESS = {precision: i for i, precision in enumerate(DATE_PRECISIONS)}

_ZEROS = (0,) * WIDTH
_EVENT_COLUMN = {name: i for i, name in enumerate(EVENT_SUMS)}
_MUNITION_COLUMN = {name: i for i, name in enumerate(MUNITION_SUMS)}


@dataclass(frozen=True)
class Part:
    """One statement of a request's totals: a source and the arguments (the
    request's, with the date range narrowed to what this source reads)."""

    source: Source
    args: dict[str, Any]


def plan(conn: Any, args: dict[str, Any], drawn: tuple[str, ...] | None = None) -> list[Part]:
    """Where a request's totals are read from: the smallest rollup that keeps the
    dimensions its filters and grouping read, as finely dated as it needs, or the
    events. A month rollup answers whole months; the days at either end of a range
    that cuts a month come from a day rollup. `drawn`: the date precisions the read
    keeps and sums together, as a series does, which a series rollup of that grain
    holds (api/store/sqlite/rollups.py)."""
    given = [f for f in _EVENT_FILTERS if any(name in args for name in f.params)]
    if any(f.rollup is None for f in given):
        return [Part(RAW, args)]
    args = without_every_place(conn, args)
    given = [f for f in _EVENT_FILTERS if any(name in args for name in f.params)]
    needed = {f.rollup for f in given if f.rollup is not None and f.rollup != "date"}
    if args.get("group_by") is not None:
        needed.add(_GROUP_DIMENSIONS[args["group_by"]])
    days = _smallest(needed, DAY, drawn)
    if args.get("interval") == "week" and _whole_weeks(args.get("date_from"), args.get("date_to")):
        return [Part(_smallest(needed, WEEK, drawn), args)]
    if args.get("interval") in ("day", "week"):
        return [Part(days, args)]
    date_from, date_to = args.get("date_from"), args.get("date_to")
    if date_from is None and date_to is None:
        return [Part(_smallest(needed, MONTH if args.get("interval") else ALL_TIME, drawn), args)]
    months = _smallest(needed, MONTH, drawn)
    # The whole months of the range: from the first that starts in it to the last
    # that ends in it (none before the first date or after the last there is).
    first = date_from if date_from is None or date_from.day == 1 else _next_month(date_from)
    last = date_to
    if date_to is not None and not _is_month_end(date_to):
        last = shifted(date_to.replace(day=1), -1)
    whole = (date_from is None or first is not None) and (date_to is None or last is not None)
    if not whole or (first is not None and last is not None and first > last):
        return [Part(days, args)]
    parts = [Part(months, {**args, "date_from": first, "date_to": last})]
    if date_from is not None and first is not None and date_from < first:
        parts.append(Part(days, {**args, "date_to": first - datetime.timedelta(days=1)}))
    if date_to is not None and last is not None and date_to > last:
        parts.append(Part(days, {**args, "date_from": last + datetime.timedelta(days=1)}))
    return parts


def without_every_place(conn: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The arguments without their place filters when those keep every place that
    has events: a map's view of the whole country gives the same totals as no place
    filter, without summing every place's rows (0.28 s by place, a few ms without)."""
    places = [
        f for f in _EVENT_FILTERS if f.rollup == "location_id" and any(n in args for n in f.params)
    ]
    if not places:
        return args
    condition, params = filters.where(
        Scope(dialect_of(conn), conn, "t", "t.location_id", paged=False), places, args
    )
    left_out = conn.execute(
        f"SELECT 1 FROM (SELECT DISTINCT location_id FROM stats_totals) t WHERE NOT ({condition}) "
        "LIMIT 1",
        params,
    ).fetchone()
    if left_out is not None:
        return args
    return {
        name: value for name, value in args.items() if all(name not in f.params for f in places)
    }


def _smallest(dimensions: set[str], grain: int, drawn: tuple[str, ...] | None) -> Source:
    """The first rollup keeping these dimensions with dates it can sum into `grain`
    (a series rollup only for the precisions it holds, summed together)."""
    for rollup in ROLLUPS:
        if rollup.series and set(drawn or ()) != set(DRAWN[rollup.grain]):
            continue
        if dimensions <= set(rollup.dimensions) and serves(rollup.grain, grain):
            return Source(rollup)
    return RAW


def _whole_weeks(date_from: datetime.date | None, date_to: datetime.date | None) -> bool:
    """Whether a range starts on a Monday and ends on a Sunday (or is open), so that
    a week rollup answers it; a range cutting a week reads days."""
    return (date_from is None or date_from.weekday() == 0) and (
        date_to is None or date_to.weekday() == 6
    )


def _next_month(day: datetime.date) -> datetime.date | None:
    later = shifted(day.replace(day=28), 4)
    return None if later is None else later.replace(day=1)


def _is_month_end(day: datetime.date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


# Munition category -> its MUNITION_SUMS, and '' -> the EVENT_SUMS.
Totals = dict[str, tuple[int, ...]]


# interval -> the SQL of the first day of the period an event's date falls in, over
# the alias `e`: the day, the Monday of its ISO week, the first of its month or year.
# Summing per period in SQL returns a row per period, not per day.
def _period_key(dialect: Dialect, interval: str) -> str:
    return dialect.period_start(interval, "e.date")


# A rollup keeping dates as weeks or months keeps each as that first day already: its
# date is the key, with no SQL per row (the Monday of each row's week was about a
# quarter of event_type by week's read).
_PERIOD_GRAINS = {"week": WEEK, "month": MONTH}


def _keys(
    args: dict[str, Any],
    by_precision: bool = True,
    source: Source = RAW,
    precisions: tuple[str, ...] | None = None,
    dialect: Dialect = SQLITE,
) -> list[str]:
    """The key expressions a request's totals are grouped by (see totals), over the
    events or a rollup; without `by_precision`, the precision is '' in every key,
    unless only one precision is kept."""
    interval, group_by = args.get("interval"), args.get("group_by")
    groups = [] if group_by is None else [_GROUP_KEYS[group_by]]
    if interval is None:
        return groups
    period = _period_key(dialect, interval)
    if source.rollup is not None and source.rollup.grain == _PERIOD_GRAINS.get(interval):
        period = "e.date"
    # Summing one precision's events is keying them by it, which a rollup keyed by
    # date and precision answers as it is (a daily series over stats_days: 14 -> 8 ms).
    one = precisions is not None and len(precisions) == 1
    keyed = by_precision or (one and not (source.rollup is not None and source.rollup.series))
    return [period, "e.date_precision" if keyed else "''", *groups]


def _conditions(conn: Any, part: Part, precisions: tuple[str, ...] | None) -> tuple[str, list[Any]]:
    """The WHERE clause of one part: its filters, the date precisions kept, and the
    groups of a page of small multiples."""
    part_args = {name: value for name, value in part.args.items() if value is not None}
    condition, params = filters.where(
        Scope.events(dialect_of(conn), conn, paged=False), _EVENT_FILTERS, part_args
    )
    kept: list[tuple[str, list[Any]]] = []
    # A series rollup holds the precisions asked for alone (see plan).
    if precisions is not None and not (part.source.rollup and part.source.rollup.series):
        kept.append(("e.date_precision", list(precisions)))
    if _PAGE_GROUPS in part_args:
        groups = ["" if group is None else group for group in part_args[_PAGE_GROUPS]]
        kept.append((_GROUP_KEYS[part_args["group_by"]], groups))
    for key, values in kept:
        clause = f"{key} IN ({', '.join('?' * len(values))})"
        condition = f"{condition} AND {clause}" if condition else clause
        params = [*params, *values]
    return condition, params


def statements(
    conn: Any,
    args: dict[str, Any],
    raw: bool = False,
    precisions: tuple[str, ...] | None = None,
    by_precision: bool = True,
) -> list[tuple[str, list[Any]]]:
    """The SQL (and parameters) behind a request's totals: one statement per part of
    its plan, or with `raw` one over the events (which tests compare them with);
    only events of these date precisions, if given."""
    drawn = None if by_precision else precisions
    dialect = dialect_of(conn)
    return [
        part.source.statement(
            _keys(args, by_precision, part.source, precisions, dialect),
            *_conditions(conn, part, precisions),
            dialect,
        )
        for part in ([Part(RAW, args)] if raw else plan(conn, args, drawn))
    ]


def totals(
    conn: Any,
    args: dict[str, Any],
    raw: bool = False,
    precisions: tuple[str, ...] | None = None,
    by_precision: bool = True,
) -> dict[tuple[Any, ...], Totals]:
    """Totals per key: (group,) with group_by, (period, precision) with an interval
    (its first day: a day, the Monday of a week, the first of a month or a year),
    (period, precision, group) with both, () with neither. Without `by_precision`,
    the events of every precision in a period are summed together, with '' for
    their precision (or the one precision kept, if only one is)."""
    found: dict[tuple[Any, ...], Totals] = {}
    width = len(_keys(args))
    for sql, params in statements(conn, args, raw, precisions, by_precision):
        for row in conn.execute(sql, params):
            _add_sums(found.setdefault(row[:width], {}), row[width], row[width + 1 :])
    return found


def _add(into: Totals, found: Totals) -> None:
    """Add one key's totals to another's."""
    for category, sums in found.items():
        _add_sums(into, category, sums)


def _add_sums(into: Totals, category: str, sums: tuple[int, ...]) -> None:
    earlier = into.get(category)
    into[category] = sums if earlier is None else tuple(map(sum, zip(earlier, sums, strict=True)))


def _periods(first: datetime.date, last: datetime.date, interval: str) -> Iterator[Period]:
    day: datetime.date | None = first
    while day is not None and day <= last:
        period = period_of(day, interval)
        yield period
        day = shifted(period.end, 1)


def series(
    conn: Any,
    args: dict[str, Any],
    after: tuple[Group, str] | None,
    limit: int,
    max_rows: int | None = None,
) -> Series[Totals]:
    """The page of the series after the row `after` (None for the first page), of at
    most `limit` rows. With group_by, every group with matching events has the whole
    series, groups in key order (small multiples). Only the page's days are read: a
    deep page costs what the first does. The coarser events are on the first page
    alone, so that joined pages count each event once. A series of more than
    `max_rows` rows, if given, is a 400 naming the range, before any is built."""
    interval = args["interval"]
    # Once here rather than in each of the plans below (the span, the page, coarser).
    args = without_every_place(conn, args)
    drawn = tuple(p for p in _FINENESS if _FINENESS[p] <= _FINENESS[interval])
    beside = tuple(p for p in _FINENESS if _FINENESS[p] > _FINENESS[interval])
    coarser = []
    if after is None:
        coarser = sorted(
            _periods_of(conn, args, beside).values(),
            key=lambda row: (_group_order(row[0]), row[1].start, row[1].key),
        )
    first, last = args.get("date_from"), args.get("date_to")
    if first is None or last is None:
        # Every event is in some group: the span of all of them, from a rollup that
        # need not keep the groups.
        span = _span(conn, {**args, "group_by": None}, drawn)
        if span is None:
            return Series([], coarser, None, None, 0, 0, None)
        first = first or period_of(span[0], interval).start
        last = last or period_of(span[1], interval).end
    count = _count(first, last, interval)
    groups: list[Group] = [None]
    if args.get("group_by") is not None:
        groups = _groups(conn, args)
    if max_rows is not None and count * len(groups) > max_rows:
        reason = (
            f"This series has {count * len(groups):,} rows ({count:,} {interval} periods "
            f"of {len(groups):,} groups), more than the {max_rows:,} one answer gives: "
            "narrow date_from and date_to, choose a longer interval, or page through the JSON."
        )
        raise InvalidParameters(
            [{"name": name, "reason": reason} for name in ("date_from", "date_to")]
        )
    page = _page(groups, first, last, interval, after, limit)
    rows: list[tuple[Group, Period, Totals]] = []
    if page:
        read = {
            **args,
            "date_from": min(p.start for _, p in page),
            "date_to": max(p.end for _, p in page),
        }
        if args.get("group_by") is not None:
            # A page of small multiples reads its own groups (at 1M events, half the
            # rows of event_type by week).
            read[_PAGE_GROUPS] = list(dict.fromkeys(group for group, _ in page))
        found = _periods_of(conn, read, drawn, interval)
        for group, period in page:
            row = found.get((group, period.key))
            rows.append((group, period, {} if row is None else row[2]))
    remaining = 0
    if page:
        group, period = page[-1]
        following = shifted(period.end, 1)
        if following is not None and following <= last:
            remaining = _count(following, last, interval)
        remaining += count * (len(groups) - groups.index(group) - 1)
    return Series(
        rows,
        # The coarser events of the filters as given: a series without a range spans
        # its own events, and the coarser ones are all there are.
        coarser,
        first,
        last,
        count,
        remaining,
        (page[-1][0], page[-1][1].key) if remaining else None,
    )


def _page(
    groups: list[Group],
    first: datetime.date,
    last: datetime.date,
    interval: str,
    after: tuple[Group, str] | None,
    limit: int,
) -> list[tuple[Group, Period]]:
    """The rows of a page, each a group and a period (cut to first..last): up to
    `limit` after the row `after`, its group's following periods then the next
    groups' whole series."""
    start, resume = 0, first
    if after is not None:
        group, key = after
        # After the cursor's group in their order, even if that group has gone since.
        start = next(
            (i for i, g in enumerate(groups) if _group_order(g) >= _group_order(group)),
            len(groups),
        )
        if start < len(groups) and groups[start] == group:
            following = _period_after(key, interval)
            if following is None:  # the cursor's period ends on the last day there is
                start += 1
            else:
                resume = following
    page: list[tuple[Group, Period]] = []
    # A group's whole series, the same periods for every group: built once (up to a
    # page of them), not once per group.
    whole: list[Period] | None = None
    for group in groups[start:]:
        if resume > first:
            periods: Iterable[Period] = _cut(_periods(resume, last, interval), first, last)
        else:
            if whole is None:
                whole = list(
                    itertools.islice(_cut(_periods(first, last, interval), first, last), limit)
                )
            periods = whole
        for period in periods:
            if len(page) == limit:
                return page
            page.append((group, period))
        resume = first
    return page


def _cut(periods: Iterable[Period], first: datetime.date, last: datetime.date) -> Iterator[Period]:
    """Periods with their days cut to first..last."""
    for period in periods:
        period.start, period.end = max(period.start, first), min(period.end, last)
        yield period


def _group_order(group: Group) -> tuple[bool, str]:
    # A null group (a place with no region) sorts first, as in every other listing.
    return group is not None, group or ""


def _period_after(key: str, interval: str) -> datetime.date | None:
    """The first day after the period a cursor names (None after the last day there
    is); a 400 for a key that names no period of the interval (a cursor is opaque,
    but it can be forged)."""
    try:
        if interval == "week":
            year, week = key.split("-W")
            start = datetime.date.fromisocalendar(int(year), int(week), 1)
        elif interval == "month":
            start = datetime.date.fromisoformat(f"{key}-01")
        elif interval == "year":
            start = datetime.date(int(key), 1, 1)
        else:
            start = datetime.date.fromisoformat(key)
    except ValueError:
        raise InvalidParameters(
            [{"name": "cursor", "reason": "Not a cursor issued by this API."}]
        ) from None
    return shifted(period_of(start, interval).end, 1)


def _count(first: datetime.date, last: datetime.date, interval: str) -> int:
    """How many periods of the interval the days first..last touch."""
    if interval == "day":
        return (last - first).days + 1
    if interval == "week":
        return (period_of(last, "week").start - period_of(first, "week").start).days // 7 + 1
    if interval == "year":
        return last.year - first.year + 1
    return (last.year - first.year) * 12 + last.month - first.month + 1


def _span(
    conn: Any, args: dict[str, Any], precisions: tuple[str, ...]
) -> tuple[datetime.date, datetime.date] | None:
    """The first and last date of the matching events of these precisions."""
    dates = [
        conn.execute(*part.source.span(*_conditions(conn, part, precisions))).fetchone()
        for part in plan(conn, args, precisions)
    ]
    known = [(low, high) for low, high in dates if low is not None]
    if not known:
        return None
    return (
        datetime.date.fromisoformat(min(low for low, _ in known)),
        datetime.date.fromisoformat(max(high for _, high in known)),
    )


def _groups(conn: Any, args: dict[str, Any]) -> list[Group]:
    """The groups with matching events, in the series or beside it, in order: their
    keys alone, with nothing summed."""
    found: set[str] = set()
    for part in plan(conn, {**args, "interval": None}):
        sql, params = part.source.distinct(
            _GROUP_KEYS[args["group_by"]], *_conditions(conn, part, None)
        )
        found.update(key for (key,) in conn.execute(sql, params))
    return sorted((key or None for key in found), key=_group_order)


def _periods_of(
    conn: Any,
    args: dict[str, Any],
    precisions: tuple[str, ...],
    interval: str | None = None,
) -> dict[tuple[Group, str], tuple[Group, Period, Totals]]:
    """Totals per group (None without group_by) and period over the events of these
    precisions: the interval's periods, or each event's own (for the coarser ones,
    keyed by their dates), by group and the period's key."""
    if not precisions:
        return {}
    merged: dict[tuple[Group, str], tuple[Group, Period, Totals]] = {}
    # Coarser events are keyed by their own date, which month rollups keep for month-
    # and year-precise events (dated the first of their month or year): beside a
    # weekly or monthly series, a month rollup answers, a tenth of a day rollup's rows;
    # beside a daily one, week-precise events need days. A yearly series has none.
    keyed = args
    if interval is None:
        keyed = {**args, "interval": "day" if "week" in precisions else "month"}
    # A series sums the events of every precision it draws in each period: grouped by
    # precision as well, an admin1 series by month had three times the rows to sum.
    by_precision = interval is None
    found_by_key = totals(conn, keyed, precisions=precisions, by_precision=by_precision)
    # The period of each date and precision, worked out once for every group.
    periods: dict[tuple[str, str], Period] = {}
    for (date, precision, *grouping), found in found_by_key.items():
        group = grouping[0] or None if grouping else None
        period = periods.get((date, precision))
        if period is None:
            day = datetime.date.fromisoformat(date)
            period = periods[date, precision] = period_of(day, interval or precision)
        into = merged.get((group, period.key))
        if into is None:
            merged[group, period.key] = (group, period, found)
        else:
            _add(into[2], found)
    return merged


def event_total(conn: Any, args: dict[str, Any]) -> tuple[int, bool]:
    """How many events match a listing's filters, read from the rollups, and whether
    that is exact: filters no rollup keeps (actor, q, min_killed, min_injured,
    updated_since) are left out, which makes it an upper bound."""
    kept = {
        name: args[name]
        for f in _EVENT_FILTERS
        if f.rollup is not None
        for name in f.params
        if name in args
    }
    exact = all(f.rollup is not None for f in _EVENT_FILTERS if any(n in args for n in f.params))
    events = 0
    for part in plan(conn, kept):
        sql, params = part.source.count(*_conditions(conn, part, None), dialect_of(conn))
        events += conn.execute(sql, params).fetchone()[0]
    return events, exact


def total_key(args: dict[str, Any]) -> str:
    """What event_total reads of a listing's arguments (its filters), as a key."""
    return repr([(name, args[name]) for f in _EVENT_FILTERS for name in f.params if name in args])


def events_by_place(conn: Any, args: dict[str, Any]) -> dict[str, int]:
    """How many of the events matching the filters are at each place (places with
    none left out), from the smallest rollup keeping places and the filters."""
    found: dict[str, int] = {}
    by_place = {**args, "group_by": _PLACE, "interval": None}
    for part in plan(conn, by_place):
        sql, params = part.source.count(
            *_conditions(conn, part, None), dialect_of(conn), by=_GROUP_KEYS[_PLACE]
        )
        for place, events in conn.execute(sql, params):
            if events:
                found[place] = found.get(place, 0) + events
    return found


def grouped(conn: Any, args: dict[str, Any]) -> list[tuple[Group, Totals]]:
    """Totals per group in key order; the one overall total without group_by (also
    when nothing matched)."""
    found = totals(conn, args)
    if args.get("group_by") is None:
        return [(None, found.get((), {}))]
    return sorted(
        ((key or None, by_category) for (key,), by_category in found.items()),
        key=lambda item: _group_order(item[0]),
    )


def render_totals(found: Totals) -> dict[str, Any]:
    """The events, casualty and munition figures of one row, as the API gives them."""
    events = found.get("", _ZEROS)
    # Every category, in order, with no entries unless the row has some.
    munitions = dict(_NO_MUNITIONS)
    for category, sums in found.items():
        if category in munitions:
            munitions[category] = _munitions(sums)
    return {
        "events": events[_EVENTS],
        "munitions": munitions,
        "killed": _casualties(events, _KILLED),
        "injured": _casualties(events, _INJURED),
    }


_EVENTS = _EVENT_COLUMN["events"]
_CASUALTY_PARTS = ("best", "low", "high", "reporting", "no_high", "lower_bounds", "inexact")
_KILLED, _INJURED = (
    operator.itemgetter(*(_EVENT_COLUMN[f"{kind}_{part}"] for part in _CASUALTY_PARTS))
    for kind in ("killed", "injured")
)
_UNKNOWN = {"best": None, "low": None, "high": None, "qualifier": None, "events_reporting": 0}


def _casualties(
    sums: tuple[int, ...], columns: Callable[[tuple[int, ...]], tuple[int, ...]]
) -> dict[str, Any]:
    best, low, high, reporting, no_high, lower_bounds, inexact = columns(sums)
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
_NO_MUNITIONS = {category: _NO_ENTRIES for category in (*MUNITION_CATEGORIES, ALL_CATEGORIES)}


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
