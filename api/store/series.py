"""A /stats series in any engine's terms: its periods (a day, an ISO week, a month,
a year) and a page of rows, each a group, a period and its figures."""

import calendar
import datetime
from dataclasses import dataclass
from typing import Generic, TypeVar

# What a row's figures are: an engine's sums, or the API's rendered totals.
Figures = TypeVar("Figures")


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
        # The last week of 9999 ends past the last date Python has.
        end = shifted(start, 6) or datetime.date.max
        return Period(f"{year}-W{week:02d}", "week", start, end)
    if precision == "month":
        start = day.replace(day=1)
        end = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        return Period(day.strftime("%Y-%m"), "month", start, end)
    return Period(str(day.year), "year", day.replace(month=1, day=1), day.replace(month=12, day=31))


def shifted(day: datetime.date, days: int) -> datetime.date | None:
    """The day `days` after `day`; None past the first or last date there is (a
    date filter takes any ISO date)."""
    try:
        return day + datetime.timedelta(days=days)
    except OverflowError:
        return None


# A group of a grouped series (an event type, a country, a region; None for places
# with no region), or None throughout a series without group_by.
Group = str | None


@dataclass
class Series(Generic[Figures]):
    """One page of a time series (of each group, with group_by): its rows in order,
    gaps included, the periods coded coarser than the interval (over the whole
    series, on the first page only), the days the series covers and its number of
    periods (None and 0 when nothing matched and no range was given), how many rows
    follow this page, and the position of the page's last row (its group and
    period's key) when another page follows."""

    rows: list[tuple[Group, Period, Figures]]
    coarser: list[tuple[Group, Period, Figures]]
    first: datetime.date | None
    last: datetime.date | None
    count: int
    remaining: int
    next_key: tuple[Group, str] | None
