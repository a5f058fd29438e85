"""What SQL differs between engines, behind one small object: the filter registry
(api/store/filters.py) and the writers build every statement from standard SQL and
ask their engine's dialect for the rest, so that a filter stays one declaration
whatever the engine. SQLite's is api/store/sqlite/dialect.py.

Parameters are positional (`?` in the statements built here; an engine whose driver
takes another style translates them once, when a statement is prepared): no request
text is ever spliced into SQL, so a placeholder is never inside a literal.
"""

import abc
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from api.store.filters import Scope
    from api.store.search import Search

# A condition (or a SELECT of ids) and its parameters.
Clause = tuple[str, list[Any]]


class Executes(Protocol):
    """A connection whose `execute` takes the shared SQL, `?` parameters and all:
    SQLite's own, or another engine's adapter (PostgreSQL's dialect.Reading)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


class Dialect(abc.ABC):
    """The SQL of one engine for what standard SQL does not say the same way."""

    # SQL of a value that changes with every write to the events, read in the
    # statement of each page so that a total kept at that value (KeptTotals) is
    # known to be the page's own; None where the engine tells it another way
    # (SQLite: PRAGMA data_version, per connection).
    events_version: str | None = None
    # Whether GROUP BY takes GROUPING SETS (and GROUPING()), so that one pass over
    # the munitions sums each category and all of them (rollups.Source.statement).
    grouping_sets = False

    def placeholders(self, values: Collection[Any]) -> str:
        """One parameter per value, for an IN list."""
        return ", ".join(["?"] * len(values))

    @abc.abstractmethod
    def text_equal(self, column: str) -> str:
        """The column equals one parameter, ignoring case."""

    @abc.abstractmethod
    def text_in(self, column: str, count: int) -> str:
        """The column is one of `count` parameters, ignoring case."""

    @abc.abstractmethod
    def text_like(self, column: str) -> str:
        """The column matches one LIKE pattern parameter (escaped with a backslash),
        ignoring case."""

    @abc.abstractmethod
    def places_in_box(self, bbox: tuple[float, float, float, float]) -> Clause:
        """A SELECT of the ids of places inside a box (west, south, east, north; a
        west edge east of the east edge crosses the antimeridian)."""

    @abc.abstractmethod
    def places_near(self, lat: float, lon: float, radius_km: float) -> Clause:
        """A SELECT of the ids of places within radius_km of a point, great-circle."""

    @abc.abstractmethod
    def search(self, scope: "Scope", q: "Search") -> Clause:
        """The condition on events `e` that keeps those a search finds (for a total,
        `scope.paged` false: at most the search's SEARCH_TOTALS_CAP most recent)."""

    @abc.abstractmethod
    def search_capped(self, conn: Any, q: "Search") -> bool:
        """Whether a search finds more events than a total sums (SEARCH_TOTALS_CAP)."""

    @abc.abstractmethod
    def period_start(self, interval: str, date: str) -> str:
        """The SQL of the first day (an ISO date) of the period of `interval` (day,
        week: the Monday of its ISO week, month, year) that the ISO date `date` (SQL
        of a date column) falls in: /stats' period keys and the rollups' dates."""

    @abc.abstractmethod
    def count_true(self, condition: str) -> str:
        """An aggregate of how many rows of a group the condition is true for (a
        NULL condition counts as false), 0 for none."""

    @abc.abstractmethod
    def integer_sum(self, expression: str) -> str:
        """The sum of an integer expression over a group, as an integer: what a
        caller adds up in Python and renders as JSON (NULL over no rows)."""

    @abc.abstractmethod
    def document_bytes(self, column: str) -> str:
        """A stored JSON document (text) as its UTF-8 bytes, which responses embed as
        they are: handed over by the engine, never encoded again in Python."""

    @abc.abstractmethod
    def tuples(self, conn: Any, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """The rows of a statement with `?` parameters as plain tuples, on a connection
        of this engine (a page of events reads its columns by position)."""

    def upsert(
        self, table: str, columns: tuple[str, ...], key: str, keep: tuple[str, ...] = ()
    ) -> str:
        """An INSERT of one row that updates the row with the same `key` instead,
        except for the columns in `keep` (ON CONFLICT ... DO UPDATE: SQL both
        SQLite and PostgreSQL speak)."""
        updates = ", ".join(
            f"{column} = excluded.{column}" for column in columns if column not in (key, *keep)
        )
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({self.placeholders(columns)}) "
            f"ON CONFLICT({key}) DO UPDATE SET {updates}"
        )
