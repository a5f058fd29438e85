"""The SQLite store: the layout, and every statement that writes into it.

Events are normalised into tables that the query layer filters on (munitions,
actors, reporters, places, sources, a full-text index, an R*Tree of places) and
also kept whole in `event_documents`: the JSON document the API returns and its
CSV line, rendered when the event is written. Reads then join stored documents
instead of serialising every row (see docs/design.md). The totals /stats reads are
kept in rollups (api/store/sqlite/rollups.py, the part of the store that owns their tables),
which every write here keeps current in the same transaction.

The layout is created by the seed and by `python -m api init` (open_for_writing,
init_database), and upgraded from an earlier release's by `python -m api migrate` and
the seed (migrations.py: the steps between schema versions, which every file records
in `schema_version`). The API never creates a file or a table: open_existing_for_writing
opens an existing database and checks its schema version and layout once per process,
so that a write request runs only its own statements. Functions that only read take a
sqlite3 connection; writers take the sqlite_utils.Database the seed also writes
through, and leave the transaction to their caller.

The single writer's contract, which the change feed rests on and which any other
engine's store must keep (layout.next_seq has it in full; docs/design.md, "The single
writer"; tests/test_single_writer.py):

- one writer at a time: every write is one transaction taken with BEGIN IMMEDIATE,
  and takes its change numbers once it holds the lock;
- seq = the highest seq of events and tombstones + 1, the next for each change;
- values unique (UNIQUE indexes events_seq and event_tombstones_seq) and committed in
  seq order, so that a mirror keeping the highest seq it applied never misses a
  change. An engine with concurrent writers serialises them on a counter taken at the
  start of the transaction and held until its commit.
"""
