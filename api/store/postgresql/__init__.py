"""The PostgreSQL + PostGIS store (issue 22): so far its foundation, on which the
PostgresStore's readers and writers are to be built; nothing serves requests from it
yet, and `SALVO_DATABASE` does not select it.

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
