"""The PostgreSQL + PostGIS store (issue 22), selected by a `postgresql://`
`SALVO_DATABASE` (api/store/__init__.py, open_store). /stats, bulk loads, the seed,
backups and restores are not on it yet (docs/design.md, "PostgreSQL").

- store.py: PostgresStore, the Store interface on a psycopg_pool pool: reads in
  autocommit under `statement_timeout`, writes in one transaction that locks the
  change counter first, every SQLSTATE mapped to the store's errors; with a replica,
  a second pool reading from the hot standby (docs/design.md, "Reads from a replica").
- writes.py: the statements of a write transaction (events, documents, search rows,
  rollups, tombstones, audit, owners, idempotent answers), from SQLite's
  engine-neutral rendering (api/store/sqlite/writes.py, event_rows).
- rollups.py: the rollups' recording and folding statements as PostgreSQL takes them.

- layout.py: the same tables as SQLite's layout (api/store/sqlite/layout.py), as
  PostgreSQL lays them out: places as PostGIS points (`geography(Point, 4326)`, GiST),
  a `tsvector` of each event's notes and place (`event_search`, GIN) where SQLite has
  FTS5, every text column compared as bytes (`COLLATE "C"`, SQLite's BINARY),
  `lower()` indexes where SQLite has NOCASE, and the single writer's counter
  (`change_counter`): the row every write transaction locks first.
- migrations.py: `migrate(conn)`, which creates or upgrades a database to this
  release's schema version in one transaction, as api/store/sqlite/migrations.py does
  for a file.
- dialect.py: PostgreSQL's Dialect (api/store/dialect.py) for the filter registry,
  and `to_pyformat`, which turns the shared SQL's `?` parameters into psycopg's `%s`.

What the store still needs is listed in docs/design.md, "PostgreSQL".
"""
