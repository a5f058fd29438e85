"""GET /api/v1/stats: totals over the same filters as /events, as one total, one row
per group, or a time series a chart can draw."""

import csv
import io
from typing import Any

import orjson
from flask import Response

from api import stats
from api.db import get_db
from api.filters import StatsArgs
from api.openapi import Blueprint, read_operation
from api.pagination import decode_cursor, page_response
from api.params import chosen_format, refuse_paging
from schemas.responses import StatsSchema
from schemas.vocabulary import MUNITION_CATEGORIES

blp = Blueprint(
    "stats",
    __name__,
    url_prefix="/api/v1",
    description="Totals of events, munitions and casualties.",
)

MEDIA_TYPES = {"json": "application/json", "csv": "text/csv"}


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
    rows, coarser, periods = _rows(args)
    if chosen == "csv":
        refuse_paging(chosen, "row")
        response = Response(_csv([*rows, *coarser]), mimetype=MEDIA_TYPES["csv"])
        response.headers["Content-Disposition"] = 'attachment; filename="stats.csv"'
    else:
        response = _page(args, rows, coarser, periods)
    if "format" not in args:
        response.headers["Vary"] = "Accept"
    return response


def _rows(
    args: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None]:
    """The rows, the coarser rows and the periods covered (see StatsSchema)."""
    conn = get_db()
    if args.get("interval") is None:
        rows = [
            {"key": key, "precision": None, "start": None, "end": None, **stats.render_totals(t)}
            for key, t in stats.grouped(conn, args)
        ]
        return rows, [], None
    series = stats.series(conn, args)

    def period_row(period: stats.Period, found: stats.Totals) -> dict[str, Any]:
        return {
            "key": period.key,
            "precision": period.precision,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            **stats.render_totals(found),
        }

    periods = None
    if series.first is not None and series.last is not None:
        periods = {
            "first": series.first.isoformat(),
            "last": series.last.isoformat(),
            "count": len(series.rows),
        }
    return (
        [period_row(*row) for row in series.rows],
        [period_row(*row) for row in series.coarser],
        periods,
    )


def _page(
    args: dict[str, Any],
    rows: list[dict[str, Any]],
    coarser: list[dict[str, Any]],
    periods: dict[str, Any] | None,
) -> Response:
    # A cursor names the shape it pages and the key of the last row served; the next
    # page starts after that key in the rows' order, even if that row has gone since.
    if args.get("interval") is not None:
        shape = f"interval={args['interval']}"
    else:
        shape = f"group_by={args.get('group_by')}"
    start = 0
    if "cursor" in args:
        (last,) = decode_cursor(args["cursor"], shape, (str,))
        start = next(
            (i for i, row in enumerate(rows) if _order(row["key"]) > _order(last)), len(rows)
        )
    page = rows[start : start + args["limit"]]
    more = start + args["limit"] < len(rows)
    meta = {
        "limit": args["limit"],
        "group_by": args.get("group_by"),
        "interval": args.get("interval"),
        "periods": periods,
    }
    return page_response(
        [orjson.dumps(row) for row in page],
        (page[-1]["key"],) if more and page else None,
        shape,
        meta,
        beside={"coarser": coarser},
    )


def _order(key: str | None) -> tuple[bool, str]:
    # Rows are in this order: a null group first, then by key (periods' keys sort
    # in time: 2024-05-30, 2024-W22, 2024-05).
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
CSV_COLUMNS = (
    "key",
    "precision",
    "start",
    "end",
    "events",
    *(f"{kind}_{part}" for kind in ("killed", "injured") for part in _CASUALTY_PARTS),
    *(f"{category}_{part}" for category in MUNITION_CATEGORIES for part in _MUNITION_PARTS),
)


def _csv(rows: list[dict[str, Any]]) -> str:
    """Rows as a flat table a spreadsheet opens: one column per figure, empty for null."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                *(row[name] for name in ("key", "precision", "start", "end", "events")),
                *(row[kind][part] for kind in ("killed", "injured") for part in _CASUALTY_PARTS),
                *(
                    row["munitions"][category][part]
                    for category in MUNITION_CATEGORIES
                    for part in _MUNITION_PARTS
                ),
            ]
        )
    return out.getvalue()
