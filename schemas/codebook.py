"""The codebook (data dictionary): every field of an event, what it holds, how it is
coded, its unit and precision, and every code of every vocabulary, rendered from the
schemas (schemas/event.py) and the vocabularies (schemas/vocabulary.py) so that it
cannot drift from them.

`python -m schemas.codebook docs/codebook.md` (`make codebook`) writes it;
tests/test_docs_pages.py checks that the committed file is what this renders.
"""

import sys
from pathlib import Path
from typing import Any, NamedTuple

from marshmallow import Schema, fields, validate

from schemas.event import EventSchema
from schemas.fields import MAX_COUNT, Count, Timestamp
from schemas.vocabulary import (
    ACTOR_KINDS,
    ACTOR_ROLES,
    DATE_PRECISIONS,
    ESTIMATE_QUALIFIERS,
    EVENT_TYPES,
    IMPORT_DATASETS,
    LOCATION_PRECISIONS,
    MUNITION_CATEGORIES,
    REPORTER_KINDS,
)


class Vocabulary(NamedTuple):
    title: str
    values: dict[str, Any]

    @property
    def anchor(self) -> str:
        """The id GitHub and the served page (api/pages.py) give its heading."""
        return self.title.lower().replace(" ", "-")


VOCABULARIES = (
    Vocabulary("Event types", EVENT_TYPES),
    Vocabulary("Date precisions", DATE_PRECISIONS),
    Vocabulary("Location precisions", LOCATION_PRECISIONS),
    Vocabulary("Actor roles", ACTOR_ROLES),
    Vocabulary("Actor kinds", ACTOR_KINDS),
    Vocabulary("Munition categories", MUNITION_CATEGORIES),
    Vocabulary("Estimate qualifiers", ESTIMATE_QUALIFIERS),
    Vocabulary("Reporter kinds", REPORTER_KINDS),
    Vocabulary("Import datasets", IMPORT_DATASETS),
)

_PREAMBLE = """# Codebook

Every field of a Salvo event, as `GET /api/v1/events/{{id}}` returns it and `POST
/api/v1/events` takes it, and every code of its vocabularies. Written by `make codebook`
from `schemas/event.py` and `schemas/vocabulary.py`; do not edit it by hand.

How values are coded, everywhere:

- **null is unknown**, never zero: a count or casualty figure the source does not give
  is null, and 0 means the source said none. Totals over null figures stay null.
- **Counts** are whole numbers from 0 to {max_count:,}.
- **Casualty figures** are estimates with their uncertainty, after UCDP's low / best /
  high: `best` is the figure to use, `low` and `high` bracket it (`high` null when the
  source gives only a lower bound), and `qualifier` says how the source put it.
- **Dates** are ISO 8601 days (`2024-05-30`); `date_precision` says how exactly the
  source knows it, and a month- or year-precise `date` is the period's first day.
- **Places** are WGS84 points in decimal degrees (`latitude`, `longitude`, as the
  source or the gazetteer gives them, to about 4 decimals: ~11 m); `precision` says
  what the point stands for. A region- or country-precise point is a centroid: never
  draw it as the place of the event.
- **Instants** Salvo stamps (`updated_at`) are UTC, to the microsecond, always as
  `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
- **Text** is UTF-8 without control characters (`notes` may hold tabs and line breaks).
"""


def render() -> str:
    """The codebook as Markdown."""
    parts = [_PREAMBLE.format(max_count=MAX_COUNT), "## Fields\n"]
    parts.append(
        "A dotted name is a field of an object inside the event (`location.latitude`); "
        "`[]` marks the items of a list. *Required* is for `POST`; *read-only* fields "
        "are Salvo's own and refused in a body.\n"
    )
    parts.append("| field | type, unit and precision | required | meaning |")
    parts.append("|---|---|---|---|")
    parts.extend(_rows(EventSchema(), ""))
    parts.append("\n## Vocabularies\n")
    for vocabulary in VOCABULARIES:
        parts.append(_vocabulary(vocabulary))
    return "\n".join(parts).rstrip() + "\n"


def _rows(schema: Schema, prefix: str, read_only: bool = False) -> list[str]:
    rows = []
    for name, field in schema.fields.items():
        path = f"{prefix}{name}"
        nested, many = _nested(field)
        own = read_only or field.dump_only
        required = "read-only" if own else "yes" if field.required else "no"
        meaning = _meaning(field, nested, own)
        rows.append(f"| `{path}` | {_type(field)} | {required} | {meaning} |")
        if nested is not None:
            rows.extend(_rows(nested, f"{path}{'[]' if many else ''}.", own))
    return rows


def _nested(field: fields.Field) -> tuple[Schema | None, bool]:
    if isinstance(field, fields.List):
        inner, _ = _nested(field.inner)
        return inner, True
    if isinstance(field, fields.Nested):
        schema = field.schema
        return (schema if isinstance(schema, Schema) else None), False
    return None, False


def _meaning(field: fields.Field, nested: Schema | None, read_only: bool) -> str:
    description = field.metadata.get("description") or (nested.__doc__ if nested else "") or ""
    # A vocabulary field's description lists its values; the codebook links to them.
    text = " ".join(description.split("\n\n")[0].split())
    said = "null" in text.lower() or "absent" in text.lower()
    if field.allow_none and not read_only and not said:
        text += " Null when unknown."
    return text.replace("|", "\\|")


def _type(field: fields.Field) -> str:
    if isinstance(field, fields.List):
        length = _validator(field, validate.Length)
        most = f", at most {length.max}" if length and length.max is not None else ""
        return f"list of {_type(field.inner)}{most}"
    if isinstance(field, fields.Nested):
        return "object"
    if isinstance(field, Timestamp):
        return "instant, UTC, microseconds (`YYYY-MM-DDTHH:MM:SS.ffffffZ`)"
    if isinstance(field, fields.Date):
        return "date (`YYYY-MM-DD`), to the day"
    if isinstance(field, Count):
        return "count: a whole number ≥ 0"
    if isinstance(field, fields.Float):
        bounds = _validator(field, validate.Range)
        span = f" from {bounds.min:g} to {bounds.max:g}" if bounds else ""
        return f"decimal degrees{span}"
    choices = _validator(field, validate.OneOf)
    if choices is not None:
        vocabulary = _vocabulary_of(list(choices.choices))
        if vocabulary is not None:
            return f"code: one of the [{vocabulary.title.lower()}](#{vocabulary.anchor})"
        return "code: " + ", ".join(f"`{c}`" for c in choices.choices)
    pattern = _validator(field, validate.Regexp)
    if pattern is not None and pattern.error.startswith("Must be "):
        # The pattern's own error message says what it takes, in words.
        return "text: " + pattern.error.removeprefix("Must be ").rstrip(".")
    length = _validator(field, validate.Length)
    if length is not None and length.max is not None:
        return f"text, {length.min or 0} to {length.max:,} characters"
    return "text"


def _validator(field: fields.Field, kind: type) -> Any:
    return next((v for v in field.validators if isinstance(v, kind)), None)


def _vocabulary_of(choices: list[str]) -> Vocabulary | None:
    return next((v for v in VOCABULARIES if list(v.values) == choices), None)


def _vocabulary(vocabulary: Vocabulary) -> str:
    values = vocabulary.values
    lines = [f"### {vocabulary.title}\n"]
    if values is EVENT_TYPES:
        lines.append(
            "| code | meaning | ACLED disorder type | ACLED event type | ACLED sub-event type |"
        )
        lines.append("|---|---|---|---|---|")
        for code, kind in EVENT_TYPES.items():
            acled = kind.acled
            lines.append(
                f"| `{code}` | {_cell(kind.description)} | {acled.disorder_type} | "
                f"{acled.event_type} | {acled.sub_event_type} |"
            )
    elif values is LOCATION_PRECISIONS:
        lines.append("| code | meaning | ACLED geo_precision | UCDP where_prec |")
        lines.append("|---|---|---|---|")
        for code, precision in LOCATION_PRECISIONS.items():
            lines.append(
                f"| `{code}` | {_cell(precision.description)} | "
                f"{precision.acled_geo_precision} | {precision.ucdp_where_prec} |"
            )
    else:
        lines.append("| code | meaning |")
        lines.append("|---|---|")
        lines.extend(f"| `{code}` | {_cell(meaning)} |" for code, meaning in values.items())
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m schemas.codebook OUTPUT.md", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
