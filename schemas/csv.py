"""The flat CSV shape of an event: its columns, documented, and how an event fills them."""

from typing import Any

from schemas.vocabulary import MUNITION_CATEGORIES

_ROLE_COLUMNS = {
    "initiators": "initiator",
    "targets": "target",
    "interceptors": "interceptor",
    "associated": "associated",
}

CSV_COLUMNS: dict[str, str] = {
    "id": "Stable event id.",
    "event_type": "Salvo event type.",
    "acled_event_type": "ACLED event_type.",
    "acled_sub_event_type": "ACLED sub_event_type.",
    "date": "ISO date (first day of the period when not day-precise).",
    "date_precision": "day, month or year.",
    "location_id": "Stable place id.",
    "location_name": "Place name.",
    "admin1": "First-level region.",
    "country": "Country name.",
    "country_code": "ISO 3166-1 alpha-2.",
    "latitude": "WGS84 latitude.",
    "longitude": "WGS84 longitude.",
    "location_precision": "exact, near, city, region or country.",
    **{
        column: f"Names of the actors whose role is {role}, separated by '; '."
        for column, role in _ROLE_COLUMNS.items()
    },
    **{
        f"{category}_{count}": f"{count.capitalize()} {category} munitions: the sum over the "
        f"event's {category} entries, empty when any of them does not give it."
        for category in MUNITION_CATEGORIES
        for count in ("launched", "intercepted")
    },
    **{
        f"{kind}_{part}": f"People {kind}: the estimate's {part}."
        for kind in ("killed", "injured")
        for part in ("best", "low", "high", "qualifier")
    },
    "reported_by": "Names of who gave the figures, separated by '; '.",
    "source_id": "Stable id of the source document.",
    "source_title": "Title of the source document.",
    "source_published": "Publication date of the source document.",
    "notes": "Short description of the event.",
}


def csv_row(event: dict[str, Any]) -> list[Any]:
    """An event as returned by the API (a dumped EventSchema) as one CSV row, in
    CSV_COLUMNS order; None for an empty cell."""
    location, source, casualties = event["location"], event["source"], event["casualties"]
    row: list[Any] = [
        event["id"],
        event["event_type"],
        event["acled"]["event_type"],
        event["acled"]["sub_event_type"],
        event["date"],
        event["date_precision"],
        location["id"],
        location["name"],
        location["admin1"],
        location["country"],
        location["country_code"],
        location["latitude"],
        location["longitude"],
        location["precision"],
    ]
    for role in _ROLE_COLUMNS.values():
        row.append("; ".join(a["name"] for a in event["actors"] if a["role"] == role) or None)
    for category in MUNITION_CATEGORIES:
        entries = [m for m in event["munitions"] if m["category"] == category]
        for count in ("launched", "intercepted"):
            values = [m[count] for m in entries]
            row.append(sum(values) if values and None not in values else None)
    for kind in ("killed", "injured"):
        estimate = casualties[kind] or {}
        row.extend(estimate.get(part) for part in ("best", "low", "high", "qualifier"))
    row.append("; ".join(r["name"] for r in event["reported_by"]) or None)
    row.extend((source["id"], source["title"], source["published"], event["notes"]))
    return row
