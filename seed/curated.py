"""Reading and validating the curated event files in seed/data/."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError

from schemas.event import EventSchema
from schemas.fields import flatten_messages

DATA_DIR = Path(__file__).parent / "data"

_SCHEMA = EventSchema()
# Top-level keys of a data file: `source` and `places` only hold YAML anchors that
# the records under `events` refer to.
_FILE_KEYS = {"source", "places", "events"}


class InvalidRecord(Exception):
    """A curated record that does not validate; the message names file, record and field."""

    def __init__(self, path: Path, record_id: str, problems: list[tuple[str, str]]) -> None:
        # All three go to Exception so that the error pickles across processes.
        super().__init__(path, record_id, problems)
        self.path, self.record_id, self.problems = path, record_id, problems

    def __str__(self) -> str:
        details = "; ".join(f"{field or '(record)'}: {message}" for field, message in self.problems)
        return f"{self.path.name}: record {self.record_id!r}: {details}"


def load_events(data_dir: Path = DATA_DIR) -> list[dict[str, Any]]:
    """Every event of every data file, validated through EventSchema and checked for
    consistency across records. Raises InvalidRecord on the first bad record."""
    events: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    shared = _SharedDefinitions()
    for path, index, record in _records(data_dir):
        record_id = str(record.get("id", f"#{index}")) if isinstance(record, dict) else f"#{index}"
        try:
            event = _SCHEMA.load(record)
        except ValidationError as error:
            raise InvalidRecord(path, record_id, flatten_messages(error.messages)) from None
        if event["id"] in seen:
            raise InvalidRecord(
                path, record_id, [("id", f"duplicates a record in {seen[event['id']].name}")]
            )
        seen[event["id"]] = path
        shared.check(path, event)
        events.append(event)
    return events


def _records(data_dir: Path) -> Iterator[tuple[Path, int, Any]]:
    paths = sorted(data_dir.glob("*.yaml"))
    if not paths:
        raise FileNotFoundError(f"no *.yaml data files in {data_dir}")
    for path in paths:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise InvalidRecord(path, "(file)", [("", f"not valid YAML: {error}")]) from None
        if not isinstance(document, dict) or not isinstance(document.get("events"), list):
            raise InvalidRecord(path, "(file)", [("events", "the file needs a list of events")])
        unknown = set(document) - _FILE_KEYS
        if unknown:
            raise InvalidRecord(
                path, "(file)", [(key, "unknown top-level key") for key in sorted(unknown)]
            )
        for index, record in enumerate(document["events"]):
            yield path, index, record


class _SharedDefinitions:
    """Places, sources and actors are stored once; every record naming one must agree."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], tuple[Any, str]] = {}

    def check(self, path: Path, event: dict[str, Any]) -> None:
        definitions = [
            ("location", event["location"]["id"], event["location"]),
            ("source", event["source"]["id"], event["source"]),
        ]
        definitions += [
            (f"actors.{i}.kind", actor["name"], actor["kind"])
            for i, actor in enumerate(event["actors"])
        ]
        for field, key, value in definitions:
            kind = field.split(".")[0]
            first = self._seen.setdefault((kind, key), (value, event["id"]))
            if first[0] != value:
                raise InvalidRecord(
                    path,
                    event["id"],
                    [(field, f"{kind} {key!r} differs from its definition in record {first[1]!r}")],
                )
