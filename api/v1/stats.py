"""GET /api/v1/stats: totals over the same filters as /events, as one total, one row
per group, or a time series a chart can draw."""

import csv
import io
import sys
from typing import Any, NamedTuple

import orjson
from flask import Response

from api.db import store
from api.openapi import Blueprint, read_operation
from api.pagination import page_response
from api.params import chosen_format, refuse_paging
from api.store.cursors import decode_cursor
from api.store.filters import StatsArgs
from api.store.series import Group, Period
from schemas.csv import text_cell
from schemas.responses import StatsSchema
from schemas.vocabulary import ALL_CATEGORIES, MUNITION_CATEGORIES

blp = Blueprint(
    "stats",
    __name__,
    url_prefix="/api/v1",
    description="Totals of events, munitions and casualties.",
)

MEDIA_TYPES = {"json": "application/json", "csv": "text/csv"}

# The most periods a CSV series holds (a daily series of 27 years, ~13 MB): a date
# filter takes any ISO date, and 0001-01-01 to 9999-12-31 by day is 3.65 million rows.
CSV_MAX_ROWS = 10_000


@read_operation(
    blp,
    "/stats",
    operation_id="getStats",
    args=StatsArgs,
    response=StatsSchema,
    paged=True,
    alternatives={
        MEDIA_TYPES["csv"]: {"type": "string", "description": "Every row as CSV."},
    },
)
def event_stats(args: dict[str, Any]) -> Response:
    """Totals of munitions launched and intercepted, casualties and events

    Takes the filters of /events. `interval` gives a time series: one row per
    period, periods without events included, with the events dated less precisely
    than the interval in `coarser`. `group_by` gives one row per group. Unknown is
    not zero: a casualty total no event gives is null, and an interception rate is
    computed over the entries that give both counts, which the row shows.
    Served from totals maintained as events are written (docs/design.md).
    """
    chosen = chosen_format(args, MEDIA_TYPES)
    if chosen == "csv":
        refuse_paging(chosen, "row")
        answer = _rows(args, whole=True)
        grouped = args.get("group_by") is not None and args.get("interval") is not None
        body = _csv([*answer.rows, *answer.coarser], grouped)
        response = Response(body, mimetype=MEDIA_TYPES["csv"])
        response.headers["Content-Disposition"] = 'attachment; filename="stats.csv"'
    else:
        answer = _rows(args)
        meta = {
            "limit": args["limit"],
            "group_by": args.get("group_by"),
            "interval": args.get("interval"),
            "periods": answer.periods,
        }
        if "q" in args:
            meta["search_capped"] = store().search_capped(args["q"])
        response = page_response(
            [orjson.dumps(row) for row in answer.rows],
            answer.next_key,
            _shape(args),
            meta,
            beside={"coarser": answer.coarser},
        )
    if "format" not in args:
        response.headers["Vary"] = "Accept"
    return response


class _Rows(NamedTuple):
    """What a /stats answer holds: its rows (one page of them, unless asked for
    whole), the coarser rows, the periods covered, and the position after which the
    next page starts."""

    rows: list[dict[str, Any]]
    coarser: list[dict[str, Any]]
    periods: dict[str, Any] | None
    next_key: tuple[str | None, ...] | None


def _rows(args: dict[str, Any], whole: bool = False) -> _Rows:
    limit = sys.maxsize if whole else args["limit"]
    interval, group_by = args.get("interval"), args.get("group_by")
    if interval is None:
        after = _position(args, (str,))
        rows = [
            {"key": key, "precision": None, "start": None, "end": None, **totals}
            for key, totals in store().stats_grouped(args)
        ]
        # Groups are few: the page is cut from all of them, after the cursor's key
        # in their order (a null group first), even if that group has gone since.
        start = 0
        if after is not None:
            start = next(
                (i for i, row in enumerate(rows) if _order(row["key"]) > _order(after[0])),
                len(rows),
            )
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        return _Rows(page, [], None, (page[-1]["key"],) if more and page else None)
    if group_by is None:
        position = _position(args, (str,))
        after = None if position is None else (None, position[0])
    else:
        after = _position(args, (str, str))  # (group, period)
    series = store().stats_series(args, after, limit, CSV_MAX_ROWS if whole else None)
    periods = None
    if series.first is not None and series.last is not None:
        periods = {
            "first": series.first.isoformat(),
            "last": series.last.isoformat(),
            "count": series.count,
            "remaining": series.remaining,
        }
    next_key: tuple[str | None, ...] | None = series.next_key
    if next_key is not None and group_by is None:
        next_key = next_key[1:]  # a series' cursor names its period alone, as it always did
    grouped = group_by is not None
    return _Rows(
        [_period_row(*row, grouped) for row in series.rows],
        [_period_row(*row, grouped) for row in series.coarser],
        periods,
        next_key,
    )


def _position(args: dict[str, Any], types: tuple[type, ...]) -> tuple[Any, ...] | None:
    """The position a request's cursor carries, None without one."""
    if "cursor" not in args:
        return None
    return decode_cursor(args["cursor"], _shape(args), types)


def _period_row(
    group: Group, period: Period, totals: dict[str, Any], grouped: bool
) -> dict[str, Any]:
    return {
        "key": period.key,
        # Only the rows of a series per group (small multiples) say whose they are.
        **({"group": group} if grouped else {}),
        "precision": period.precision,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        **totals,
    }


def _shape(args: dict[str, Any]) -> str:
    """What a cursor pages: a cursor of one shape is refused by another."""
    interval, group_by = args.get("interval"), args.get("group_by")
    if interval is not None and group_by is not None:
        return f"group_by={group_by}&interval={interval}"
    if interval is not None:
        return f"interval={interval}"
    return f"group_by={group_by}"


def _order(key: str | None) -> tuple[bool, str]:
    return key is not None, key or ""


_CASUALTY_PARTS = ("best", "low", "high", "qualifier", "events_reporting")
_MUNITION_PARTS = (
    "launched",
    "intercepted",
    "launched_with_outcome",
    "intercepted_with_outcome",
    "interception_rate",
    "not_reached",
    "hit",
    "events",
)
# Every category, then the entries of all of them together.
_CATEGORIES = (*MUNITION_CATEGORIES, ALL_CATEGORIES)
CSV_COLUMNS = (
    "key",
    "precision",
    "start",
    "end",
    "events",
    *(f"{kind}_{part}" for kind in ("killed", "injured") for part in _CASUALTY_PARTS),
    *(f"{category}_{part}" for category in _CATEGORIES for part in _MUNITION_PARTS),
)


def _csv(rows: list[dict[str, Any]], grouped: bool) -> str:
    """Rows as a flat table a spreadsheet opens: one column per figure, empty for null;
    a series per group has the group's column after the key."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([CSV_COLUMNS[0], *(["group"] if grouped else []), *CSV_COLUMNS[1:]])
    for row in rows:
        writer.writerow(
            [
                # A key or group may be a region's name, as partners wrote it: escaped text.
                text_cell(row["key"]),
                *([text_cell(row["group"])] if grouped else []),
                *(row[name] for name in ("precision", "start", "end", "events")),
                *(row[kind][part] for kind in ("killed", "injured") for part in _CASUALTY_PARTS),
                *(
                    row["munitions"][category][part]
                    for category in _CATEGORIES
                    for part in _MUNITION_PARTS
                ),
            ]
        )
    return out.getvalue()
