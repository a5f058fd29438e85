"""Field types shared by several schemas."""

import datetime
import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from schemas.vocabulary import describe

SLUG = validate.Regexp(
    r"^[a-z0-9][a-z0-9._-]{0,127}$",
    error="Must be 1-128 lower-case letters, digits, '.', '_' or '-', starting with a letter "
    "or digit.",
)


# Timestamps are UTC with a fixed width, so that their text sorts as they do.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class Timestamp(fields.String):
    """A UTC instant written as fixed-width text (TIMESTAMP_FORMAT), so that stored
    timestamps compare and sort as text. Reads any ISO 8601 instant with an offset."""

    def __init__(self, description: str, **kwargs: Any) -> None:
        pattern = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"
        metadata = {"description": description, "format": "date-time"}
        if kwargs.get("dump_only"):
            metadata["pattern"] = pattern
        super().__init__(metadata=metadata, **kwargs)

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return value.astimezone(datetime.UTC).strftime(TIMESTAMP_FORMAT)

    # A String in the spec (the text a client sends), loaded as another type; marshmallow
    # types String as Field[str], hence the override.
    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> datetime.datetime:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            instant = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError("Must be an ISO 8601 date-time.") from None
        if instant.tzinfo is None:
            raise ValidationError("Must say its offset from UTC, e.g. 2024-05-30T12:00:00Z.")
        try:
            return instant.astimezone(datetime.UTC)
        except OverflowError:
            # 0001-01-01T00:00:00+00:01 is a valid ISO instant before year 1 in UTC.
            raise ValidationError(
                "Must be an instant between the years 1 and 9999 in UTC."
            ) from None


# Larger than any count a source gives; keeps every count inside SQLite's INTEGER.
MAX_COUNT = 10_000_000


class Count(fields.Integer):
    """A non-negative whole number of things; null where the source does not say."""

    def __init__(self, description: str, **kwargs: Any) -> None:
        if not kwargs.get("required"):
            kwargs.setdefault("allow_none", True)
            kwargs.setdefault("load_default", None)
        super().__init__(
            strict=True,
            validate=validate.Range(min=0, max=MAX_COUNT),
            metadata={"description": description},
            **kwargs,
        )

    def _validated(self, value: Any) -> int:
        # bool is an int subclass in Python; JSON true must not count as 1.
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


def vocabulary_field(vocabulary: dict[str, Any], description: str, **kwargs: Any) -> fields.String:
    """A string field restricted to a vocabulary, its values documented in the spec."""
    return fields.String(
        validate=validate.OneOf(list(vocabulary)),
        metadata={"description": f"{description}\n\n{describe(vocabulary)}"},
        **kwargs,
    )


def flatten_messages(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Turn marshmallow's nested error messages into (dotted.field.path, message) pairs."""
    if isinstance(messages, dict):
        pairs = []
        for key, value in messages.items():
            path = str(key) if not prefix else f"{prefix}.{key}"
            if key == "_schema":
                path = prefix
            pairs.extend(flatten_messages(value, path))
        return pairs
    if isinstance(messages, list):
        if all(isinstance(item, str) for item in messages):
            return [(prefix, item) for item in messages]
        pairs = []
        for item in messages:
            pairs.extend(flatten_messages(item, prefix))
        return pairs
    return [(prefix, str(messages))]


class SharedNested(fields.Nested):
    """A Nested field for shapes that repeat across many records (places, sources,
    actors, reporters): the loaded form of each distinct flat input is remembered,
    so a bulk load validates a place once rather than once per event.

    Loading these schemas is a pure function of the input, and a failed load is
    never remembered, so the result is the same as without the memory. The key
    includes each value's type, so that 1, 1.0 and True stay different inputs.
    """

    def _load(self, value: Any, partial: Any = None) -> Any:
        if (
            partial is None
            and isinstance(value, dict)
            and all(isinstance(v, _FLAT) for v in value.values())
        ):
            key = tuple((k, type(v), v) for k, v in value.items())
            return dict(_load_shared(type(self.schema), key))
        return super()._load(value, partial=partial)


_FLAT = (str, int, float, bool, type(None))


@functools.lru_cache(maxsize=16_384)
def _load_shared(schema: type[Schema], key: tuple[tuple[str, type, Any], ...]) -> Mapping[str, Any]:
    return MappingProxyType(_schema(schema).load({k: v for k, _, v in key}))


@functools.cache
def _schema(schema: type[Schema]) -> Schema:
    return schema()
