"""Field types shared by several schemas."""

import datetime
import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from schemas.vocabulary import describe


class WholeMatch(validate.Regexp):
    """A pattern the whole value must match. marshmallow's Regexp uses `re.match`,
    where `$` also matches before a trailing newline: "x\\n" passed as an id, and
    failed only later, as a Location header, after its write had committed. The
    pattern keeps `^...$` for the OpenAPI spec (ECMA-262's `$` has no such exception)."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


SLUG = WholeMatch(
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
    actors, reporters, casualty figures): the loaded form of each distinct input is
    remembered, so a bulk load validates a place once rather than once per event.

    Loading these schemas is a pure function of the input, and a failed load is
    never remembered, so the result is the same as without the memory. The key
    includes each value's type, so that 1, 1.0 and True stay different inputs; an
    input holding a list (or anything else unhashable) is loaded without the memory.
    """

    def _load(self, value: Any, partial: Any = None) -> Any:
        if partial is None and type(value) is dict:
            try:
                key = (type(self.schema), _key(value))
            except TypeError:  # a list, or a value of a type not kept apart
                return super()._load(value, partial=partial)
            loaded = _remembered.get(key)
            if loaded is None:
                loaded = _frozen(_schema(type(self.schema)).load(value))
                if len(_remembered) >= _REMEMBERED_MAX:
                    _remembered.clear()
                _remembered[key] = loaded
            return _copy(loaded)
        return super()._load(value, partial=partial)


# Distinct inputs remembered, across the SharedNested schemas: more than a bulk load's
# places and sources in a batch, and a few MB at most.
_REMEMBERED_MAX = 16_384
_remembered: dict[tuple[Any, ...], Mapping[str, Any]] = {}


def _key(value: dict[str, Any]) -> tuple[Any, ...]:
    """A hashable key of a dict of scalars and of such dicts: its names, and each
    value with its type. Raises TypeError for anything else."""
    return (tuple(value), tuple(map(_value_key, value.values())))


def _value_key(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return (kind, value)
    if kind is dict:
        return _key(value)
    raise TypeError(kind)


_SCALARS = frozenset((str, int, float, bool, type(None)))


def _frozen(loaded: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType({k: _frozen(v) if type(v) is dict else v for k, v in loaded.items()})


def _copy(loaded: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a remembered load that its caller may change, nested dicts included."""
    return {k: _copy(v) if type(v) is MappingProxyType else v for k, v in loaded.items()}


@functools.cache
def _schema(schema: type[Schema]) -> Schema:
    return schema()
