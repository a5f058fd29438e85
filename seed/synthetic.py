"""Deterministic synthetic events at scale, for benchmarks and load tests.

Events are generated in numbered batches, each from its own random stream, so
the same --seed gives the same events whatever the number of worker processes.

A generated record is not passed through EventSchema.load, the validation the
curated data gets: `loaded` builds what load would return, at a tenth of its cost
(load was 150-190 us of about 300 us an event). tests/test_synthetic.py proves, over
generated streams (hypothesis), that load accepts every record the generator makes and
returns exactly what `loaded` builds; a change to the generator or to the schema that
breaks either fails there.
"""

import datetime
import random
from typing import Any

from api.store import BulkWrites
from api.store.sqlite.writes import BATCH_SIZE, EventRows, event_rows
from schemas.event import EstimateSchema
from seed.places import OBLASTS, UKRAINE_PLACE, Oblast, region_place, slug
from seed.workers import in_order

FIRST_DAY = datetime.date(2022, 2, 24)

EVENT_TYPE_WEIGHTS = {
    "drone_strike": 24,
    "missile_strike": 18,
    "air_defense_interception": 14,
    "armed_clash": 18,
    "ground_assault": 7,
    "territory_change": 3,
    "troop_movement": 5,
    "strategic_development": 11,
}
MISSILE_MODELS = ["Kh-101", "Kalibr", "Iskander-M", "Kh-22", "Kinzhal", "S-300", "KN-23", None]
DRONE_MODELS = ["Shahed-136", "Geran-2", "Lancet", None]
GOVERNMENTS = ["United States", "United Kingdom", "Germany", "France", "Poland", "Netherlands"]

RUSSIA = {"name": "Military Forces of Russia", "role": "initiator", "kind": "state_forces"}
UKRAINE = {"name": "Military Forces of Ukraine", "role": "target", "kind": "state_forces"}
INTERCEPTOR = {"name": "Air Force of Ukraine", "role": "interceptor", "kind": "state_forces"}
AIR_FORCE: dict[str, Any] = {"name": "Air Force of Ukraine", "kind": "military", "title": None}
GENERAL_STAFF: dict[str, Any] = {
    "name": "General Staff of Ukraine",
    "kind": "military",
    "title": None,
}


def _town(oblast: Oblast, town: tuple[str, float, float], precision: str) -> dict[str, Any]:
    name, lat, lon = town
    suffix = "-vicinity" if precision == "near" else ""
    return {
        "id": f"ua-{slug(name)}{suffix}",
        "name": name,
        "admin1": oblast.name,
        "country": "Ukraine",
        "country_code": "UA",
        "latitude": lat,
        "longitude": lon,
        "precision": precision,
    }


def generate_batch(start: int, size: int, seed: int, until: datetime.date) -> list[dict[str, Any]]:
    """Events start .. start+size-1 of the stream for seed, as EventSchema.load returns
    them (see the module's docstring)."""
    return [loaded(record) for record in generate_records(start, size, seed, until)]


def generate_records(
    start: int, size: int, seed: int, until: datetime.date
) -> list[dict[str, Any]]:
    """Records start .. start+size-1 of the stream for seed, as a partner would send
    them (the input EventSchema.load takes)."""
    rng = random.Random(f"{seed}:{start}")
    span = (until - FIRST_DAY).days
    types, weights = list(EVENT_TYPE_WEIGHTS), list(EVENT_TYPE_WEIGHTS.values())
    oblast_weights = [oblast.weight for oblast in OBLASTS]
    records = []
    for index in range(start, start + size):
        event_type = rng.choices(types, weights)[0]
        oblast = rng.choices(OBLASTS, oblast_weights)[0]
        day = FIRST_DAY + datetime.timedelta(days=rng.randrange(span + 1))
        records.append(_record(rng, f"syn-{seed}-{index:07d}", event_type, oblast, day, until))
    return records


def loaded(record: dict[str, Any]) -> dict[str, Any]:
    """What EventSchema.load returns for a generated record: its dates parsed, the
    munition counts it leaves out null, and casualty bounds filled from the qualifier
    (by the schema's own rule). Only for the generator's records: the schema's other
    rules are proven to hold for them, not checked here."""
    casualties = record["casualties"]
    return {
        **record,
        "date": datetime.date.fromisoformat(record["date"]),
        "munitions": [
            {**munition, "not_reached": None, "hit": None} for munition in record["munitions"]
        ],
        "casualties": {
            kind: None if estimate is None else EstimateSchema.with_default_bounds(estimate)
            for kind, estimate in casualties.items()
        },
        "source": {
            **record["source"],
            "published": datetime.date.fromisoformat(record["source"]["published"]),
        },
    }


def _record(
    rng: random.Random,
    event_id: str,
    event_type: str,
    oblast: Oblast,
    day: datetime.date,
    until: datetime.date,
) -> dict[str, Any]:
    roll = rng.random()
    date_precision = "day" if roll < 0.92 else "month" if roll < 0.99 else "year"
    date = {"day": day, "month": day.replace(day=1), "year": day.replace(month=1, day=1)}[
        date_precision
    ]
    regional: dict[str, Any] = {
        "name": f"{oblast.name} Military Administration",
        "kind": "official",
        "title": None,
    }
    town = rng.choice(oblast.towns)
    # One synthetic source a week, published on the Sunday that ends it (or on the
    # last day generated, for the current week).
    week = min(day + datetime.timedelta(days=6 - day.weekday()), until)
    record: dict[str, Any] = {
        "id": event_id,
        "event_type": event_type,
        "date": date.isoformat(),
        "date_precision": date_precision,
        "actors": [RUSSIA, UKRAINE],
        "munitions": [],
        "casualties": {"killed": None, "injured": None},
        "reported_by": [regional],
        "source": {
            "id": f"syn-report-{week.isoformat()}",
            "title": f"Synthetic weekly report for the week of {week.isoformat()}",
            "publisher": "Salvo synthetic data",
            "url": None,
            "published": week.isoformat(),
            "reference": None,
        },
    }
    place = town[0]
    if event_type == "air_defense_interception":
        location = UKRAINE_PLACE if rng.random() < 0.6 else region_place(oblast)
        place = location["name"]
        drones = rng.randint(5, 150)
        missiles = rng.randint(0, 40)
        record["munitions"] = [
            _munition(rng, "drone", rng.choice(DRONE_MODELS), drones, 0.7, AIR_FORCE["name"]),
        ]
        if missiles:
            record["munitions"].append(
                _munition(
                    rng, "missile", rng.choice(MISSILE_MODELS), missiles, 0.5, AIR_FORCE["name"]
                )
            )
        record["actors"] = [RUSSIA, INTERCEPTOR]
        record["reported_by"] = [AIR_FORCE]
        notes = (
            f"Russia launched {drones} drones and {missiles} missiles; air defence engaged them."
        )
    elif event_type in ("missile_strike", "drone_strike"):
        precision = rng.choices(["city", "near", "region"], [70, 20, 10])[0]
        location = region_place(oblast) if precision == "region" else _town(oblast, town, precision)
        category = "missile" if event_type == "missile_strike" else "drone"
        models = MISSILE_MODELS if category == "missile" else DRONE_MODELS
        launched = rng.randint(1, 12 if category == "missile" else 30)
        record["munitions"] = [
            _munition(rng, category, rng.choice(models), launched, 0.3, regional["name"])
        ]
        record["actors"] = [
            RUSSIA,
            {"name": "Civilians (Ukraine)", "role": "target", "kind": "civilians"},
        ]
        record["casualties"] = {
            "killed": _estimate(rng, 0.35, 12, regional["name"]),
            "injured": _estimate(rng, 0.6, 40, regional["name"]),
        }
        notes = f"A {category} attack on {location['name']} damaged homes and infrastructure."
    elif event_type == "strategic_development":
        location = UKRAINE_PLACE
        place = location["name"]
        government = rng.choice(GOVERNMENTS)
        record["actors"] = [
            {"name": f"Government of {government}", "role": "initiator", "kind": "government"},
            {"name": "Military Forces of Ukraine", "role": "associated", "kind": "state_forces"},
        ]
        record["reported_by"] = []
        notes = f"{government} announced further military aid and training for Ukraine."
    else:
        precision = "near" if event_type == "troop_movement" else rng.choice(["city", "near"])
        location = _town(oblast, town, precision)
        if event_type != "troop_movement":
            record["casualties"]["killed"] = _estimate(rng, 0.2, 30, GENERAL_STAFF["name"])
            record["reported_by"] = [GENERAL_STAFF]
        else:
            record["actors"] = [RUSSIA]
        notes = {
            "armed_clash": f"Fighting between Russian and Ukrainian forces at {place}.",
            "ground_assault": f"Russian forces assaulted Ukrainian positions near {place}.",
            "territory_change": f"Russian forces took control of {place}.",
            "troop_movement": f"Russian forces massed near {place}.",
        }[event_type]
    record["location"] = location
    record["notes"] = notes
    return record


def _munition(
    rng: random.Random,
    category: str,
    model: str | None,
    launched: int,
    intercept_share: float,
    reporter: str,
) -> dict[str, Any]:
    intercepted = (
        round(launched * rng.uniform(intercept_share, 1.0)) if rng.random() < 0.8 else None
    )
    return {
        "category": category,
        "model": model,
        "launched": launched if rng.random() < 0.95 else None,
        "intercepted": intercepted,
        "reported_by": reporter,
    }


def _estimate(
    rng: random.Random, share: float, ceiling: int, reporter: str
) -> dict[str, Any] | None:
    if rng.random() >= share:
        return None
    best = rng.randint(0, ceiling)
    qualifier = rng.choices(["exact", "at_least", "approximately"], [55, 35, 10])[0]
    return {"best": best, "qualifier": qualifier, "reported_by": reporter}


def batch_rows(start: int, count: int, seed: int, until: datetime.date) -> EventRows:
    """The table rows of one batch of the stream: generated and rendered.
    Their updated_at is midnight UTC starting `until`, so that the database is
    deterministic too."""
    changed_at = datetime.datetime.combine(until, datetime.time(), tzinfo=datetime.UTC)
    return event_rows(
        generate_batch(start, min(BATCH_SIZE, count - start), seed, until), changed_at
    )


def load(bulk: BulkWrites, count: int, seed: int, until: datetime.date, workers: int) -> int:
    """Generate and write count events into a bulk load (a store writer's bulk_load,
    on either engine), keeping at most a few batches in memory. Worker processes do
    the generating and rendering; this process does all the writing, in the caller's
    transaction."""
    batches = ((start, count, seed, until) for start in range(0, count, BATCH_SIZE))
    for rows in in_order(batch_rows, batches, workers):
        bulk.add(rows)
    return count
