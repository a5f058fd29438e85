"""The controlled vocabularies of the event model, each value with its meaning.

Every enum that crosses the API boundary is defined here once; the schemas
validate against these keys and the OpenAPI descriptions are built from the
texts, so a value cannot exist without its documentation.
"""

from typing import NamedTuple


class AcledType(NamedTuple):
    """Where a Salvo event type falls in ACLED's taxonomy."""

    disorder_type: str
    event_type: str
    sub_event_type: str


class EventType(NamedTuple):
    description: str
    acled: AcledType


_BATTLES = ("Political violence", "Battles")
_REMOTE = ("Political violence", "Explosions/Remote violence")
_STRATEGIC = ("Strategic developments", "Strategic developments")

EVENT_TYPES: dict[str, EventType] = {
    "missile_strike": EventType(
        "Missiles (ballistic or cruise) or rockets fired at a place.",
        AcledType(*_REMOTE, "Shelling/artillery/missile attack"),
    ),
    "drone_strike": EventType(
        "Armed or loitering drones sent against a place.",
        AcledType(*_REMOTE, "Air/drone strike"),
    ),
    "air_defense_interception": EventType(
        "Air defence destroyed or diverted incoming missiles or drones; the counts say how "
        "many were launched and intercepted.",
        AcledType(*_STRATEGIC, "Disrupted weapons use"),
    ),
    "ground_assault": EventType(
        "An offensive by ground forces across a front line or a border.",
        AcledType(*_BATTLES, "Armed clash"),
    ),
    "armed_clash": EventType(
        "Armed forces fighting each other at a place, such as street fighting in a town.",
        AcledType(*_BATTLES, "Armed clash"),
    ),
    "territory_change": EventType(
        "A place changes hands by force. ACLED codes a capture by an invading state's forces "
        "as 'Non-state actor overtakes territory' (its term for any actor other than the "
        "country's own government).",
        AcledType(*_BATTLES, "Non-state actor overtakes territory"),
    ),
    "troop_movement": EventType(
        "Forces moved, massed or reinforced without fighting being reported.",
        AcledType(*_STRATEGIC, "Other"),
    ),
    "strategic_development": EventType(
        "A decision, permission, aid package, training mission or statement that shapes the "
        "conflict without being violence itself.",
        AcledType(*_STRATEGIC, "Other"),
    ),
}

DATE_PRECISIONS: dict[str, str] = {
    "day": "The event happened on `date` (ACLED time_precision 1).",
    "month": "The source gives only the month; `date` is its first day (ACLED time_precision 3).",
    "year": "The source gives only the year; `date` is 1 January (ACLED time_precision 3).",
}


class LocationPrecision(NamedTuple):
    description: str
    acled_geo_precision: int
    ucdp_where_prec: int


LOCATION_PRECISIONS: dict[str, LocationPrecision] = {
    "exact": LocationPrecision("The point is where the event happened.", 1, 1),
    "near": LocationPrecision(
        "Within about 25 km of the point: near a named place, or between two named places.",
        2,
        2,
    ),
    "city": LocationPrecision(
        "Somewhere in the named town or city; the point is its centre.", 1, 2
    ),
    "region": LocationPrecision(
        "Somewhere in the first-level region (`admin1`); the point is its centre. Never draw "
        "it as a place.",
        3,
        4,
    ),
    "country": LocationPrecision(
        "Only the country is known, or the event concerns the whole country; the point is its "
        "centre. Never draw it as a place.",
        3,
        6,
    ),
}

MUNITION_CATEGORIES: dict[str, str] = {
    "missile": "Ballistic, cruise or guided air-to-surface missiles.",
    "drone": "Unmanned aerial vehicles, including loitering munitions such as the Shahed.",
    "rocket": "Unguided or guided artillery rockets (MLRS).",
    "artillery": "Tube artillery and mortar shells.",
    "aerial_bomb": "Bombs dropped from aircraft, including guided glide bombs.",
    "mixed": "A figure the source gives for several categories together without splitting it "
    "(for example '51 missiles and drones'). Counts in a `mixed` entry are never also counted "
    "in another entry of the same event.",
}

ACTOR_ROLES: dict[str, str] = {
    "initiator": "Carried out the action (ACLED actor1).",
    "target": "Was attacked or acted upon (ACLED actor2).",
    "interceptor": "Shot down or diverted the weapons of an attack.",
    "associated": "Took part alongside, or benefits from, the initiator (ACLED assoc_actor).",
}

ACTOR_KINDS: dict[str, str] = {
    "state_forces": "The military or police of a state (ACLED inter code 1).",
    "government": "A government, ministry or head of state acting politically.",
    "civilians": "Unarmed non-combatants (ACLED inter code 7).",
    "international_organization": "An alliance or organisation of states, such as NATO.",
    "other": "Any other actor.",
}

REPORTER_KINDS: dict[str, str] = {
    "official": "A named civilian official, such as a mayor or governor.",
    "military": "A military command or officer.",
    "government": "A government or ministry speaking as an institution.",
    "international_organization": "An alliance or organisation of states, or its officials.",
    "anonymous_sources": "Unnamed sources, such as diplomats speaking on condition of anonymity.",
    "media": "A news outlet or agency reporting in its own voice.",
}

ESTIMATE_QUALIFIERS: dict[str, str] = {
    "exact": "The source gives an exact figure: `low` = `best` = `high`.",
    "at_least": "A lower bound ('at least four'): `low` = `best`, `high` is null (unbounded).",
    "at_most": "An upper bound ('up to ten'): `best` = `high`; `low` is 0 unless the source "
    "says more.",
    "approximately": "An approximate figure ('about 20'), with `low` and `high` bracketing "
    "`best` where the source gives a range.",
}


def describe(
    vocabulary: dict[str, str] | dict[str, EventType] | dict[str, LocationPrecision],
) -> str:
    """A Markdown list of a vocabulary's values and their meanings, for field descriptions."""
    lines = []
    for value, meaning in vocabulary.items():
        text = meaning if isinstance(meaning, str) else meaning.description
        lines.append(f"- `{value}`: {text}")
    return "\n".join(lines)
