"""The rollups kept current by PostgreSQL's writers: the statements of
api/store/sqlite/rollups.py (the same tables, keys and contributions, whose
definitions live there) written as PostgreSQL takes them.

What differs from SQLite's:
- sums of booleans (`sum(x IS NULL)`) are `count(*) FILTER (WHERE ...)`, which counts
  the rows where the condition is true, as SQLite's sum of 1s and 0s does (a NULL
  condition counts neither way);
- a week's or month's date key is PostgreSQL's period_start (dialect.py);
- the events written are `e.id = ANY(?)` (an array parameter) where SQLite has
  json_each;
- the fold's ON CONFLICT names its target (the rollup's primary key), and reads the
  changes in key order: every writer updates a rollup's rows in the same order, so
  two writers could never deadlock on them, even if they were not already queued
  on the change counter (layout.lock_changes), which every write locks first.
"""

from api.store.postgresql.dialect import POSTGRESQL
from api.store.sqlite.rollups import (
    CHANGES,
    DIMENSIONS,
    DRAWN,
    MONTH,
    MUNITION_SUMS,
    ROLLUPS,
    SUMS,
    WEEK,
    Rollup,
    event_sums,
)
from schemas.vocabulary import ALL_CATEGORIES

# SQLite's event totals with every sum of a boolean as a filtered count.
EVENT_SUMS = event_sums(POSTGRESQL)

_MUNITIONS = "munitions m JOIN events e ON e.id = m.event_id"
_IDS = "e.id = ANY(?)"


def _dated(grain: int, date: str) -> str:
    if grain == MONTH:
        return POSTGRESQL.period_start("month", date)
    if grain == WEEK:
        return POSTGRESQL.period_start("week", date)
    return date


def _kept(rollup: Rollup) -> str:
    if not rollup.series:
        return "true"
    return f"date_precision IN ({', '.join(repr(p) for p in DRAWN[rollup.grain])})"


def _record(sign: int) -> str:
    """The statement recording into stats_changes, per finest key, what the events
    with the ids of its parameter (an array, given three times) contribute (sign 1)
    or the removal of it (-1)."""
    keys = list(DIMENSIONS.values())
    groups = ", ".join(str(i + 1) for i in range(len(keys) + 1))

    def select(sums: dict[str, str], category: str, source: str) -> str:
        values = [*keys, category] + [
            f"{sign} * {sums[name]}" if name in sums else "0" for name in SUMS
        ]
        return f"SELECT {', '.join(values)} FROM {source} WHERE {_IDS} GROUP BY {groups}"

    events = select(EVENT_SUMS, "''", "events e")
    munitions = select(MUNITION_SUMS, "m.category", _MUNITIONS)
    every = select(MUNITION_SUMS, f"'{ALL_CATEGORIES}'", _MUNITIONS)
    return f"INSERT INTO {CHANGES} {events} UNION ALL {munitions} UNION ALL {every}"


SUBTRACT, ADD = _record(-1), _record(1)


def fold(rollup: Rollup) -> str:
    """The statement adding the recorded changes to one rollup, in key order."""
    keys = [_dated(rollup.grain, key) if key == "date" else key for key in rollup.keys]
    sums = ", ".join(f"sum({name})" for name in SUMS)
    updates = ", ".join(f"{name} = {rollup.table}.{name} + excluded.{name}" for name in SUMS)
    groups = ", ".join(str(i + 1) for i in range(len(keys)))
    return (
        f"INSERT INTO {rollup.table} ({', '.join([*rollup.keys, *SUMS])}) "
        f"SELECT {', '.join(keys)}, {sums} FROM {CHANGES} WHERE {_kept(rollup)} "
        f"GROUP BY {groups} ORDER BY {groups} "
        f"ON CONFLICT ({', '.join(rollup.keys)}) DO UPDATE SET {updates}"
    )


# Every rollup's fold, in one fixed order (ROLLUPS').
FOLDS = tuple((rollup.table, fold(rollup)) for rollup in ROLLUPS)
