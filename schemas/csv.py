"""The flat CSV shape of an event: its columns, documented, and how an event fills them."""

import csv
import io
import re
from typing import Any

from schemas.vocabulary import MUNITION_CATEGORIES

_ROLE_COLUMNS = {
    "initiators": "initiator",
    "targets": "target",
    "interceptors": "interceptor",
    "associated": "associated",
}

_MUNITION_KEYS = [(c, n) for c in MUNITION_CATEGORIES for n in ("launched", "intercepted")]

CSV_COLUMNS: dict[str, str] = {
    "id": "Stable event id.",
    "event_type": "Salvo event type.",
    "acled_event_type": "ACLED event_type.",
    "acled_sub_event_type": "ACLED sub_event_type.",
    "date": "ISO date (first day of the period when not day-precise).",
    "date_precision": "day, week, month or year.",
    "location_id": "Stable place id.",
    "location_name": "Place name.",
    "admin1": "First-level region.",
    "country": "Country name.",
    "country_code": "ISO 3166-1 alpha-2.",
    "latitude": "WGS84 latitude.",
    "longitude": "WGS84 longitude.",
    "location_precision": "exact, near, city, region or country.",
    **{
        column: f"Names of the actors whose role is {role}, separated by '; '."
        for column, role in _ROLE_COLUMNS.items()
    },
    **{
        f"{category}_{count}": f"{count.capitalize()} {category} munitions: the sum over the "
        f"event's {category} entries, empty when any of them does not give it."
        for category in MUNITION_CATEGORIES
        for count in ("launched", "intercepted")
    },
    **{
        f"{kind}_{part}": f"People {kind}: the estimate's {part}."
        for kind in ("killed", "injured")
        for part in ("best", "low", "high", "qualifier")
    },
    "reported_by": "Names of who gave the figures, separated by '; '.",
    "source_id": "Stable id of the source document.",
    "source_title": "Title of the source document.",
    "source_published": "Publication date of the source document.",
    "notes": "Short description of the event.",
}


# The columns that hold numbers: their cells are written as numbers, so that a
# negative longitude stays -3.5; every other cell is text, and escaped (text_cell).
NUMBER_COLUMNS = frozenset(
    (
        "latitude",
        "longitude",
        *(f"{category}_{count}" for category, count in _MUNITION_KEYS),
        *(f"{kind}_{part}" for kind in ("killed", "injured") for part in ("best", "low", "high")),
    )
)
_NUMBER_INDEXES = frozenset(i for i, name in enumerate(CSV_COLUMNS) if name in NUMBER_COLUMNS)

# OWASP's CSV injection list: a spreadsheet takes a cell starting with one of these
# as a formula (or, for tab and CR, strips them and then does).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# C0 controls and DEL other than tab and line breaks: NUL and escape sequences have
# no place in a spreadsheet, and CSV quotes the line breaks of notes.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def text_cell(value: str | None) -> str | None:
    """A text cell as CSV may carry it to a spreadsheet: control characters other
    than tab and line breaks dropped, and a cell that would start a formula prefixed
    with a single quote, as OWASP recommends ('=1+1 shows as =1+1, not 2)."""
    if value is None:
        return None
    value = _CONTROLS.sub("", value)
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def csv_row(event: dict[str, Any]) -> list[Any]:
    """An event as returned by the API (a dumped EventSchema) as one CSV row, in
    CSV_COLUMNS order, its text cells as they are (csv_line escapes them); None for an
    empty cell."""
    location, source, casualties = event["location"], event["source"], event["casualties"]
    row: list[Any] = [
        event["id"],
        event["event_type"],
        event["acled"]["event_type"],
        event["acled"]["sub_event_type"],
        event["date"],
        event["date_precision"],
        location["id"],
        location["name"],
        location["admin1"],
        location["country"],
        location["country_code"],
        location["latitude"],
        location["longitude"],
        location["precision"],
    ]
    # One pass over actors and munitions each: this runs once per exported event.
    names: dict[str, list[str]] = {role: [] for role in _ROLE_COLUMNS.values()}
    for actor in event["actors"]:
        names[actor["role"]].append(actor["name"])
    row.extend("; ".join(names[role]) or None for role in _ROLE_COLUMNS.values())
    sums: dict[tuple[str, str], int | None] = {}
    for munition in event["munitions"]:
        for count in ("launched", "intercepted"):
            key, value = (munition["category"], count), munition[count]
            if value is None or (key in sums and sums[key] is None):
                sums[key] = None  # an entry without the count makes the sum unknown
            else:
                sums[key] = (sums.get(key) or 0) + value
    row.extend(sums.get(key) for key in _MUNITION_KEYS)
    for kind in ("killed", "injured"):
        estimate = casualties[kind] or {}
        row.extend(estimate.get(part) for part in ("best", "low", "high", "qualifier"))
    row.append("; ".join(r["name"] for r in event["reported_by"]) or None)
    row.extend((source["id"], source["title"], source["published"], event["notes"]))
    return row


class _Echo:
    """A file that hands back what is written to it: writerow returns what the
    file's write returns, so one writer renders every line with no buffer for threads
    to share (a writer and a buffer built per line cost 1.5 us of the 8.7 a line took).
    The writer joins a row into its line in C, holding the GIL, before it calls write."""

    def write(self, line: str) -> str:
        return line


_LINE_WRITER = csv.writer(_Echo(), lineterminator="\r\n")


def line_of(row: list[Any]) -> str:
    """A row as one CSV line, with its CRLF."""
    line: str = _LINE_WRITER.writerow(row)
    return line


def csv_line(event: dict[str, Any]) -> str:
    """The CSV line (with its CRLF) of an event as returned by the API, its text cells
    escaped (text_cell). Most events' lines need no escaping: the line is
    joined first and searched once, rather than each text cell searched (a bulk load
    renders every event's line: 22 -> 14 us an event, 10,000 ACLED rows)."""
    return escaped_line(line_of(csv_row(event)))


# A line that may hold a cell text_cell would change: a cell starting like a formula
# (after a comma, inside quotes or not; the first cell is the event's id, a slug), or
# a control character. It also finds negative numbers and already escaped lines; they
# come out unchanged. Two searches, each led by a fast scan: one alternation with
# `^` measured 7 times slower.
_FORMULA_CELL = re.compile(r',"?[=+\-@\t\r]')


def escaped_line(line: str) -> str:
    """A CSV line with its text cells escaped (text_cell).

    csv_line renders every line through this, and the export passes every stored line
    through it too, as databases written before cells were escaped hold lines as they
    were sent: a line that needs nothing costs two regular expression searches."""
    if _FORMULA_CELL.search(line) is None and _CONTROLS.search(line) is None:
        return line
    (cells,) = csv.reader(io.StringIO(line, newline=""))
    return line_of(
        [cell if i in _NUMBER_INDEXES else text_cell(cell) for i, cell in enumerate(cells)]
    )


def csv_header() -> str:
    """The CSV header line."""
    return ",".join(CSV_COLUMNS) + "\r\n"
