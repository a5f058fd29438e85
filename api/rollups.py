"""Maintained aggregates of the events (rollups), which /stats reads instead of
scanning the events table.

An event's *contribution* is what it adds to the totals: one event, its casualty
figures, and per munition category its launch and interception counts. The
contribution is defined once, as SQL over `events` and `munitions`
(`contributions`), and used three ways:

- summed over the filtered events, it is the raw aggregate (`RAW`);
- grouped by a rollup's key and written with a sign, it keeps that rollup
  current: a write subtracts the old contributions of the events it touches and
  adds the new ones, in the writer's transaction (`subtract`, `add`);
- grouped over every event, it rebuilds a rollup (`rebuild`, after a bulk load).

So a rollup row always holds the sum of the contributions of the events with its
key, and summing rollup rows answers what summing events would, for any filter on
key columns. tests/test_rollups.py proves it over random writes, edits and
deletions (hypothesis).

Each rollup keeps a date at some grain, the event's date precision and type, its
country and weapons (the bitmask the weapon filter tests), and optionally its
first-level region and place; per key, one row of event totals (category '') and
one row per munition category. Several rollups trade size for detail, and
api/stats.py reads the smallest that holds what a request filters and groups on
(cardinalities at 1,000,000 synthetic events in docs/design.md). The columns are
named as in `events`, so the filter registry's clauses apply to a rollup as they
do to the events table.
"""

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Place detail, coarsest first: a rollup of one level answers filters and groupings
# that need that level or a coarser one.
COUNTRY, ADMIN1, PLACE = 0, 1, 2

# The day of a month grain: the first of the month, as month-precise events are dated.
_MONTH_OF = "substr(e.date, 1, 8) || '01'"

_CASUALTIES = ("killed", "injured")


def _casualty_sums(kind: str) -> dict[str, str]:
    return {
        f"{kind}_best": f"coalesce(sum(e.{kind}_best), 0)",
        f"{kind}_low": f"coalesce(sum(e.{kind}_low), 0)",
        f"{kind}_high": f"coalesce(sum(e.{kind}_high), 0)",
        # Events giving a figure; a total no event gives is unknown, not 0.
        f"{kind}_reporting": f"count(e.{kind}_best)",
        # Figures without a high make the total's high unknown too.
        f"{kind}_no_high": f"coalesce(sum(e.{kind}_best IS NOT NULL AND e.{kind}_high IS NULL), 0)",
        f"{kind}_lower_bounds": f"coalesce(sum(e.{kind}_qualifier = 'at_least'), 0)",
        f"{kind}_inexact": f"coalesce(sum(e.{kind}_qualifier != 'exact'), 0)",
    }


# Column -> SQL over the events `e` of one key: the event totals.
EVENT_SUMS: dict[str, str] = {
    "events": "count(*)",
    **{name: sql for kind in _CASUALTIES for name, sql in _casualty_sums(kind).items()},
}


def _counted(column: str) -> dict[str, str]:
    return {column: f"coalesce(sum(m.{column}), 0)", f"{column}_reporting": f"count(m.{column})"}


# Column -> SQL over the munition entries `m` of one key and category. `events`
# counts the events with an entry of the category, once however many entries.
MUNITION_SUMS: dict[str, str] = {
    "events": "count(DISTINCT m.event_id)",
    **_counted("launched"),
    **_counted("intercepted"),
    **_counted("not_reached"),
    **_counted("hit"),
    # The interception rate's numerator and denominator: entries giving both counts.
    "launched_with_outcome": (
        "coalesce(sum(CASE WHEN m.intercepted IS NOT NULL THEN m.launched END), 0)"
    ),
    "intercepted_with_outcome": (
        "coalesce(sum(CASE WHEN m.launched IS NOT NULL THEN m.intercepted END), 0)"
    ),
    "with_outcome": "count(CASE WHEN m.launched IS NOT NULL AND m.intercepted IS NOT NULL THEN 1 END)",
}

SUMS = tuple(dict.fromkeys([*EVENT_SUMS, *MUNITION_SUMS]))

# Munition entries with their event's columns, which the keys and filters read.
_MUNITIONS = "munitions m JOIN events e ON e.id = m.event_id"


@dataclass(frozen=True)
class Rollup:
    """One maintained aggregate: its table, whether it keeps days or months, and
    the place detail it keeps."""

    table: str
    monthly: bool
    place: int

    @property
    def keys(self) -> dict[str, str]:
        """Key column -> its SQL over the event `e`."""
        keys = {
            "date": _MONTH_OF if self.monthly else "e.date",
            "date_precision": "e.date_precision",
            "event_type": "e.event_type",
            "country_code": "e.country_code",
        }
        if self.place >= ADMIN1:
            # '' for a place with no region: a key column cannot be NULL.
            keys["admin1"] = "coalesce(e.admin1, '')"
        if self.place >= PLACE:
            keys["location_id"] = "e.location_id"
        return {**keys, "weapons": "e.weapons"}

    def create(self, conn: sqlite3.Connection) -> None:
        key_columns = [
            f"{name} {'INTEGER' if name == 'weapons' else 'TEXT'} NOT NULL" for name in self.keys
        ]
        sums = [f"{name} INTEGER NOT NULL DEFAULT 0" for name in SUMS]
        keys = ", ".join([*self.keys, "category"])
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} ({', '.join(key_columns)}, "
            f"category TEXT NOT NULL, {', '.join(sums)}, PRIMARY KEY ({keys})) WITHOUT ROWID"
        )
        # Rows whose events all went: found without a scan, and deleted.
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS {self.table}_emptied ON {self.table} (events) "
            "WHERE events = 0"
        )
        if self.place == ADMIN1:
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {self.table}_admin1 "
                f"ON {self.table} (admin1 COLLATE NOCASE, date)"
            )
        if self.place == PLACE:
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {self.table}_place ON {self.table} (location_id, date)"
            )

    def upsert(self, sign: int, selection: str) -> str:
        """One statement adding (sign 1) or subtracting (-1) the contributions of the
        events `selection` picks, events and munitions alike."""
        keys = self.keys
        names = [*keys, "category", *SUMS]

        def select(sums: dict[str, str], category: str, source: str) -> str:
            values = [*keys.values(), category] + [
                f"{sign} * {sums[name]}" if name in sums else "0" for name in SUMS
            ]
            return (
                f"SELECT {', '.join(values)} FROM {source} WHERE {selection} "
                f"GROUP BY {', '.join(str(i + 1) for i in range(len(keys) + 1))}"
            )

        updates = ", ".join(f"{name} = {name} + excluded.{name}" for name in SUMS)
        events = select(EVENT_SUMS, "''", "events e")
        munitions = select(MUNITION_SUMS, "m.category", _MUNITIONS)
        return (
            f"INSERT INTO {self.table} ({', '.join(names)}) {events} UNION ALL {munitions} "
            f"ON CONFLICT DO UPDATE SET {updates}"
        )


# Sizes at 1,000,000 synthetic events (8 types, 143 places in 25 regions, 4 years),
# event rows + munition rows: days 16k + 9k; days_admin1 187k + ~100k; months_admin1
# 17k + ~10k; months_places 71k + 35k. The events table itself is 1M rows.
ROLLUPS = (
    Rollup("stats_days", monthly=False, place=COUNTRY),
    Rollup("stats_days_admin1", monthly=False, place=ADMIN1),
    Rollup("stats_months_admin1", monthly=True, place=ADMIN1),
    Rollup("stats_months_places", monthly=True, place=PLACE),
)
TABLES = tuple(rollup.table for rollup in ROLLUPS)


def create(conn: sqlite3.Connection) -> None:
    for rollup in ROLLUPS:
        rollup.create(conn)


_IDS = "e.id IN (SELECT value FROM json_each(?))"


def subtract(conn: sqlite3.Connection, ids: str) -> None:
    """Take the contributions of the events with these ids (a JSON array) out of
    every rollup, as they are before a write changes or deletes them."""
    for rollup in ROLLUPS:
        conn.execute(rollup.upsert(-1, _IDS), [ids, ids])
        conn.execute(f"DELETE FROM {rollup.table} WHERE events = 0")


def add(conn: sqlite3.Connection, ids: str) -> None:
    """Add the contributions of the events with these ids (a JSON array), as a
    write left them."""
    for rollup in ROLLUPS:
        conn.execute(rollup.upsert(1, _IDS), [ids, ids])


def rebuild(conn: sqlite3.Connection) -> None:
    """Every rollup from every event: after a bulk load, or for a database whose
    rollups were just created."""
    for rollup in ROLLUPS:
        conn.execute(f"DELETE FROM {rollup.table}")
        conn.execute(rollup.upsert(1, "true"))


@dataclass(frozen=True)
class Source:
    """Where totals are read from: a rollup, or the events themselves."""

    rollup: Rollup | None

    def statement(
        self, keys: Iterable[str], condition: str, params: list[Any]
    ) -> tuple[str, list[Any]]:
        """Totals (`SUMS`, in order) per `keys` (expressions over the alias `e`) and
        category, over the rows `condition` keeps: SQL and its parameters."""
        keys = list(keys)
        groups = ", ".join(str(i + 1) for i in range(len(keys) + 1))
        where = f"WHERE {condition}" if condition else ""
        if self.rollup is not None:
            sums = ", ".join(f"sum({name})" for name in SUMS)
            return (
                f"SELECT {', '.join([*keys, 'category'])}, {sums} FROM {self.rollup.table} e "
                f"{where} GROUP BY {groups}"
            ), params

        def select(sums: dict[str, str], category: str, source: str) -> str:
            values = [*keys, category] + [sums.get(name, "0") for name in SUMS]
            return f"SELECT {', '.join(values)} FROM {source} {where} GROUP BY {groups}"

        events = select(EVENT_SUMS, "''", "events e")
        munitions = select(MUNITION_SUMS, "m.category", _MUNITIONS)
        return f"{events} UNION ALL {munitions}", [*params, *params]


RAW = Source(None)


def table_rows(conn: sqlite3.Connection, table: str) -> list[tuple[Any, ...]]:
    """A rollup's rows in key order (for tests comparing a maintained rollup with a
    rebuilt one)."""
    return conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4, 5, 6, 7").fetchall()
