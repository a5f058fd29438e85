"""The ACLED-shaped CSV of events (`/api/v1/events?format=acled-csv`): ACLED's export
columns in ACLED's order, so that partners can append Salvo's events to ACLED-based
pipelines. docs/imports.md says how each column is filled."""

import datetime
from typing import Any

from schemas.countries import BY_ALPHA2
from schemas.csv import line_of, text_cell
from schemas.fields import TIMESTAMP_FORMAT
from schemas.vocabulary import LOCATION_PRECISIONS

ACLED_COLUMNS = (
    "event_id_cnty", "event_date", "year", "time_precision", "disorder_type", "event_type",
    "sub_event_type", "actor1", "assoc_actor_1", "inter1", "actor2", "assoc_actor_2", "inter2",
    "interaction", "civilian_targeting", "iso", "region", "country", "admin1", "admin2",
    "admin3", "location", "latitude", "longitude", "geo_precision", "source", "source_scale",
    "notes", "fatalities", "tags", "timestamp",
)  # fmt: skip

# Salvo's actor kinds that are ACLED's actor types: (inter code, its name in newer
# exports). The importer reads either; the export writes the name, as ACLED now does.
INTER_KINDS: dict[str, tuple[int, str]] = {
    "state_forces": (1, "State forces"),
    "rebel_group": (2, "Rebel group"),
    "political_militia": (3, "Political militia"),
    "identity_militia": (4, "Identity militia"),
    "rioters": (5, "Rioters"),
    "protesters": (6, "Protesters"),
    "civilians": (7, "Civilians"),
    "external_forces": (8, "External/Other forces"),
}
# Kinds ACLED has no type of its own for: a government or alliance acting abroad,
# and anyone else, are ACLED's external or other forces.
_OTHER = INTER_KINDS["external_forces"]

_TIME_PRECISIONS = {"day": 1, "week": 2, "month": 3, "year": 3}


def _inter(actor: dict[str, Any] | None) -> str:
    if actor is None:
        return ""
    return INTER_KINDS.get(actor["kind"], _OTHER)[1]


def _civilian_targeting(event: dict[str, Any], targets: list[dict[str, Any]]) -> str | None:
    """ACLED's own value for an imported ACLED event (none where its export had none:
    never invented); for any other event, 'Civilian targeting' when civilians were a
    target, as ACLED codes it."""
    provenance = event.get("provenance") or {}
    if provenance.get("dataset") == "acled":
        value: str | None = provenance.get("civilian_targeting")
        return value
    return "Civilian targeting" if any(a["kind"] == "civilians" for a in targets) else None


def _epoch(timestamp: str) -> int:
    instant = datetime.datetime.strptime(timestamp, TIMESTAMP_FORMAT).replace(tzinfo=datetime.UTC)
    return int(instant.timestamp())


def acled_row(event: dict[str, Any]) -> list[Any]:
    """An event as the API returns it, as one row of ACLED_COLUMNS; None for an
    empty cell."""
    provenance = event.get("provenance") or {}
    from_acled = provenance.get("dataset") == "acled"
    location, acled = event["location"], event["acled"]
    sides: dict[str, list[dict[str, Any]]] = {
        "initiator": [], "associated": [], "target": [], "interceptor": [],
    }  # fmt: skip
    for actor in event["actors"]:
        sides[actor["role"]].append(actor)
    first = sides["initiator"][:1]
    # The second side is who was targeted, else (an interception) who intercepted.
    opposite = sides["target"] + sides["interceptor"]
    second = opposite[:1]
    assoc_1 = sides["initiator"][1:] + sides["associated"]
    assoc_2 = opposite[1:]
    inter1, inter2 = _inter(first[0] if first else None), _inter(second[0] if second else None)
    interaction = f"{inter1}-{inter2}" if inter1 and inter2 else f"{inter1 or inter2} only"
    date = provenance.get("source_date") or event["date"]
    country = BY_ALPHA2.get(location["country_code"])
    killed = event["casualties"]["killed"]
    reporters = "; ".join(reporter["name"] for reporter in event["reported_by"])
    return [
        provenance["record_id"] if from_acled else event["id"],
        date,
        int(date[:4]),
        _TIME_PRECISIONS[event["date_precision"]],
        acled["disorder_type"],
        acled["event_type"],
        acled["sub_event_type"],
        first[0]["name"] if first else None,
        "; ".join(actor["name"] for actor in assoc_1) or None,
        inter1 or None,
        second[0]["name"] if second else None,
        "; ".join(actor["name"] for actor in assoc_2) or None,
        inter2 or None,
        interaction if inter1 or inter2 else None,
        _civilian_targeting(event, sides["target"]),
        None if country is None else country.numeric,
        None,  # ACLED's world region: Salvo does not keep one
        location["country"],
        location["admin1"],
        None,
        None,
        location["name"],
        location["latitude"],
        location["longitude"],
        LOCATION_PRECISIONS[location["precision"]].acled_geo_precision,
        provenance.get("sources") or reporters or event["source"]["title"],
        provenance.get("source_scale"),
        event["notes"],
        None if killed is None else killed["best"],
        provenance.get("tags"),
        _epoch(provenance.get("record_updated") or event["updated_at"]),
    ]


def acled_line(event: dict[str, Any]) -> str:
    """The CSV line (with its CRLF) of an event as the API returns it, its text cells
    escaped (schemas.csv.text_cell); the numbers are Python numbers, left as they are."""
    return line_of([text_cell(c) if isinstance(c, str) else c for c in acled_row(event)])


def acled_header() -> str:
    return ",".join(ACLED_COLUMNS) + "\r\n"
