"""The SQLite store: the layout, and every statement that writes into it.

Events are normalised into tables that the query layer filters on (munitions,
actors, reporters, places, sources, a full-text index, an R*Tree of places) and
also kept whole in `event_documents`: the JSON document the API returns and its
CSV line, rendered when the event is written. Reads then join stored documents
instead of serialising every row (see docs/design.md). The totals /stats reads are
kept in rollups (api/store/sqlite/rollups.py, the part of the store that owns their tables),
which every write here keeps current in the same transaction.

The layout is created by the seed and by `python -m api init` (open_for_writing,
init_database). The API never creates a file or a table: open_existing_for_writing
opens an existing database and checks its layout once per process, so that a write
request runs only its own statements. Functions that only read take a sqlite3 connection;
writers take the sqlite_utils.Database the seed also writes through, and leave the
transaction to their caller.
"""
