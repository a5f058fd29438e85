"""python -m api keys create|list|revoke: manage the API keys partners send as
`Authorization: Bearer <key>`."""

import argparse
import sys

from api.config import database_path
from api.keys import SCOPES, create_key, revoke_key
from api.storage import OutdatedLayout, open_for_writing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    parser.add_argument("--db", help="SQLite file (default: $SALVO_DATABASE, else var/salvo.db)")
    commands = parser.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create a key and print it (only this once)")
    create.add_argument("--name", required=True, help="who the key is for")
    create.add_argument("--scope", required=True, choices=SCOPES)
    keys.add_parser("list", help="list the keys (never the keys themselves)")
    revoke = keys.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id", help="the id shown by `keys list`")
    args = parser.parse_args(argv)

    try:
        db = open_for_writing(args.db or database_path())
    except OutdatedLayout as error:
        print(f"api: {error}", file=sys.stderr)
        return 1
    try:
        if args.action == "create":
            print(create_key(db, args.name, args.scope))
        elif args.action == "list":
            for row in db.execute(
                "SELECT id, name, scope, created_at, coalesce(revoked_at, '') FROM api_keys "
                "ORDER BY created_at"
            ):
                print("\t".join(row))
        elif not revoke_key(db, args.key_id):
            print(f"api: no live key has id {args.key_id!r}", file=sys.stderr)
            return 1
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
