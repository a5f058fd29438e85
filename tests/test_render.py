"""The fast renderer writes exactly what EventSchema dumps, byte for byte, and the
stored rows hold exactly what it renders."""

import datetime
import hashlib

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from api.store.sqlite.writes import event_rows
from schemas.csv import csv_line
from schemas.event import EventSchema, event_document
from schemas.vocabulary import (
    ACLED_DISORDER_TYPES,
    ACLED_SUB_EVENT_TYPES,
    ACTOR_KINDS,
    ACTOR_ROLES,
    EVENT_TYPES,
    IMPORT_DATASETS,
    LOCATION_PRECISIONS,
    MUNITION_CATEGORIES,
    REPORTER_KINDS,
)

# Text as the schema takes it: no control characters (schemas.event.ONE_LINE).
text = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=40)
slug = st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,30}\Z")
count = st.none() | st.integers(min_value=0, max_value=1000)
reporter_names = ["Air Force of Ukraine", "Mayor", "Governor"]


@st.composite
def munitions(draw: st.DrawFn) -> dict:
    launched = draw(count)
    intercepted = draw(count)
    if launched is not None and intercepted is not None and intercepted > launched:
        launched, intercepted = intercepted, launched
    return {
        "category": draw(st.sampled_from(list(MUNITION_CATEGORIES))),
        "model": draw(st.none() | text),
        "launched": launched,
        "intercepted": intercepted,
        "reported_by": draw(st.none() | st.sampled_from(reporter_names)),
    }


@st.composite
def estimates(draw: st.DrawFn) -> dict | None:
    if draw(st.booleans()):
        return None
    best = draw(st.integers(min_value=0, max_value=10_000))
    qualifier = draw(st.sampled_from(["exact", "at_least", "at_most", "approximately"]))
    estimate = {"best": best, "qualifier": qualifier}
    if qualifier == "approximately" and draw(st.booleans()):
        estimate["low"] = draw(st.integers(min_value=0, max_value=best))
        estimate["high"] = draw(st.integers(min_value=best, max_value=best + 1000))
    return estimate


@st.composite
def events(draw: st.DrawFn) -> dict:
    precision = draw(st.sampled_from(["day", "week", "month", "year"]))
    date = draw(
        st.dates(min_value=datetime.date(1990, 1, 1), max_value=datetime.date(2030, 12, 31))
    )
    date = {
        "day": date,
        "week": date,
        "month": date.replace(day=1),
        "year": date.replace(month=1, day=1),
    }[precision]
    location_precision = draw(st.sampled_from(list(LOCATION_PRECISIONS)))
    event_type = draw(st.sampled_from(list(EVENT_TYPES)))
    # Imported events carry a provenance, ACLED ones with ACLED's own coding.
    optional: dict = {}
    if draw(st.booleans()):
        optional["date_end"] = (
            date + datetime.timedelta(days=draw(st.integers(1, 30)))
        ).isoformat()
    if draw(st.booleans()):
        codings = [pair for pair, kind in ACLED_SUB_EVENT_TYPES.items() if kind == event_type]
        coding = draw(st.none() | st.sampled_from(codings)) if codings else None
        optional["provenance"] = {
            "dataset": draw(st.sampled_from(list(IMPORT_DATASETS))),
            "record_id": draw(st.none() | st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,30}\Z")),
            "record_updated": draw(st.none() | st.just("2024-06-04T10:00:00+02:00")),
            "source_date": draw(st.none() | st.just("2024-05-17")),
            "acled": None
            if coding is None
            else {
                "disorder_type": draw(st.sampled_from(ACLED_DISORDER_TYPES)),
                "event_type": coding[0],
                "sub_event_type": coding[1],
            },
            "sources": draw(st.none() | text),
            "deaths_civilians": draw(count),
            "carrier": draw(st.none() | text),
        }
    return optional | {
        "id": draw(slug),
        "event_type": event_type,
        "date": date.isoformat(),
        "date_precision": precision,
        "location": {
            "id": draw(slug),
            "name": draw(text),
            "admin1": draw(text) if location_precision == "region" else draw(st.none() | text),
            "country": draw(text),
            "country_code": draw(st.from_regex(r"\A[A-Z]{2}\Z")),
            "latitude": draw(st.floats(min_value=-90, max_value=90)),
            "longitude": draw(st.floats(min_value=-180, max_value=180)),
            "precision": location_precision,
        },
        "actors": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "name": text,
                        "role": st.sampled_from(list(ACTOR_ROLES)),
                        "kind": st.sampled_from(list(ACTOR_KINDS)),
                    }
                ),
                max_size=3,
            )
        ),
        "munitions": draw(st.lists(munitions(), max_size=4)),
        "casualties": {"killed": draw(estimates()), "injured": draw(estimates())},
        "reported_by": [
            {
                "name": name,
                "kind": draw(st.sampled_from(list(REPORTER_KINDS))),
                "title": draw(st.none() | text),
            }
            for name in reporter_names
        ],
        "source": {
            "id": draw(slug),
            "title": draw(text),
            "publisher": draw(st.none() | text),
            "url": draw(st.none() | st.just("https://example.org/a?b=c")),
            "published": draw(st.dates()).isoformat(),
            "reference": draw(st.none() | text),
        },
        "notes": draw(
            st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=300)
        ),
    }


@settings(max_examples=300, deadline=None)
@given(events(), st.datetimes(timezones=st.just(datetime.UTC)))
def test_event_document_equals_the_schema_dump(raw: dict, updated_at: datetime.datetime) -> None:
    event = EventSchema().load(raw)
    assert orjson.dumps(event_document(event, updated_at)) == orjson.dumps(
        EventSchema().dump({**event, "updated_at": updated_at})
    )


@settings(max_examples=100, deadline=None)
@given(events(), st.datetimes(timezones=st.just(datetime.UTC)))
def test_stored_rows_hold_the_document(raw: dict, updated_at: datetime.datetime) -> None:
    # event_rows dumps the document once and splices updated_at in: the bytes must be
    # the document's own, and the content digest that of the document without it.
    event = EventSchema().load(raw)
    document = event_document(event, updated_at)
    (row,) = event_rows([event], updated_at).documents
    assert row.body == orjson.dumps(document).decode()
    assert row.digest == hashlib.sha1(orjson.dumps(document)).digest()
    content = {key: value for key, value in document.items() if key != "updated_at"}
    assert row.content_digest == hashlib.sha1(orjson.dumps(content)).digest()
    assert row.csv == csv_line(document)
