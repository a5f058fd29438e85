"""python -m seed [--db PATH]: validate the curated events, then load them in one transaction."""

import argparse
import sqlite3
import sys
from pathlib import Path

from api.config import database_path
from api.storage import open_for_writing, write_events
from seed.curated import DATA_DIR, InvalidRecord, load_events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seed", description=__doc__)
    parser.add_argument(
        "--db",
        help="SQLite file to write (default: $SALVO_DATABASE, else var/salvo.db)",
    )
    parser.add_argument(
        "--data", type=Path, default=DATA_DIR, help="folder of curated *.yaml files"
    )
    args = parser.parse_args(argv)
    path = args.db or database_path()

    try:
        # Everything is validated before the database is opened: a bad record
        # leaves the file exactly as it was.
        events = load_events(args.data)
    except InvalidRecord as error:
        print(f"seed: invalid record, nothing written: {error}", file=sys.stderr)
        return 1

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = open_for_writing(path)
    try:
        with db.atomic():
            count = write_events(db, events)
    except sqlite3.DatabaseError as error:
        print(f"seed: writing failed, the database is unchanged: {error}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(f"seed: {count} events from {args.data} loaded into {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
