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
_CIVILIANS = ("Political violence", "Violence against civilians")
_PROTESTS = ("Demonstrations", "Protests")
_RIOTS = ("Demonstrations", "Riots")

# The types after strategic_development were added so that every one of ACLED's 25
# sub-event types imports (docs/imports.md): each is one ACLED sub-event type whose
# meaning no type above covers.

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
    "shelling": EventType(
        "Artillery, mortars, rockets or missiles fired at a place, the source not saying "
        "which: ACLED's 'Shelling/artillery/missile attack' as imported. Salvo's own coding "
        "uses missile_strike when the weapons are known to be missiles.",
        AcledType(*_REMOTE, "Shelling/artillery/missile attack"),
    ),
    "air_strike": EventType(
        "A strike from the air by aircraft or drones, the source not saying which: ACLED's "
        "'Air/drone strike' as imported. Salvo's own coding uses drone_strike when the "
        "weapons are known to be drones.",
        AcledType(*_REMOTE, "Air/drone strike"),
    ),
    "chemical_attack": EventType(
        "Chemical weapons used against a place or people.",
        AcledType(*_REMOTE, "Chemical weapon"),
    ),
    "suicide_bombing": EventType(
        "An attacker detonates explosives they carry or drive.",
        AcledType(*_REMOTE, "Suicide bomb"),
    ),
    "remote_explosive": EventType(
        "A landmine, improvised explosive device or other explosive set off remotely or by "
        "its victim.",
        AcledType(*_REMOTE, "Remote explosive/landmine/IED"),
    ),
    "grenade_attack": EventType(
        "A grenade thrown at people or a place.",
        AcledType(*_REMOTE, "Grenade"),
    ),
    "attack_on_civilians": EventType(
        "Armed violence by an organised group against unarmed civilians.",
        AcledType(*_CIVILIANS, "Attack"),
    ),
    "sexual_violence": EventType(
        "Sexual violence by an armed or organised group.",
        AcledType(*_CIVILIANS, "Sexual violence"),
    ),
    "abduction": EventType(
        "People abducted or made to disappear by an armed or organised group.",
        AcledType(*_CIVILIANS, "Abduction/forced disappearance"),
    ),
    "peaceful_protest": EventType(
        "A demonstration without violence and without intervention against it.",
        AcledType(*_PROTESTS, "Peaceful protest"),
    ),
    "protest_with_intervention": EventType(
        "A peaceful demonstration that the authorities tried to disperse or suppress "
        "without serious violence.",
        AcledType(*_PROTESTS, "Protest with intervention"),
    ),
    "excessive_force_against_protesters": EventType(
        "Lethal or serious force used against peaceful demonstrators.",
        AcledType(*_PROTESTS, "Excessive force against protesters"),
    ),
    "violent_demonstration": EventType(
        "A demonstration whose participants turn to violence or destroy property.",
        AcledType(*_RIOTS, "Violent demonstration"),
    ),
    "mob_violence": EventType(
        "Violence by a disorganised crowd, without a demonstration's aim.",
        AcledType(*_RIOTS, "Mob violence"),
    ),
    "agreement": EventType(
        "An agreement between parties: a ceasefire, prisoner exchange or peace deal.",
        AcledType(*_STRATEGIC, "Agreement"),
    ),
    "arrests": EventType(
        "People detained by state forces or an armed group, outside fighting.",
        AcledType(*_STRATEGIC, "Arrests"),
    ),
    "change_to_group_activity": EventType(
        "An armed group changes: a merger, split, new leadership, or a change of its "
        "activity such as a mobilisation.",
        AcledType(*_STRATEGIC, "Change to group/activity"),
    ),
    "base_established": EventType(
        "An armed group sets up a headquarters or base.",
        AcledType(*_STRATEGIC, "Headquarters or base established"),
    ),
    "looting_property_destruction": EventType(
        "Property looted or destroyed without an attack on people.",
        AcledType(*_STRATEGIC, "Looting/property destruction"),
    ),
    "non_violent_territory_transfer": EventType(
        "Territory changes hands without fighting, such as a withdrawal or a handover.",
        AcledType(*_STRATEGIC, "Non-violent transfer of territory"),
    ),
}

# ACLED's disorder types: what an imported event's `acled` block may say.
ACLED_DISORDER_TYPES = (
    "Political violence",
    "Demonstrations",
    "Political violence; Demonstrations",
    "Strategic developments",
)

# ACLED's 25 (event type, sub-event type) pairs and the Salvo event type each imports
# as. Several pairs import as one Salvo type (both territory sub-event types as
# territory_change); an imported event keeps ACLED's own triple in its `acled` block.
ACLED_SUB_EVENT_TYPES: dict[tuple[str, str], str] = {
    ("Battles", "Armed clash"): "armed_clash",
    ("Battles", "Government regains territory"): "territory_change",
    ("Battles", "Non-state actor overtakes territory"): "territory_change",
    ("Explosions/Remote violence", "Chemical weapon"): "chemical_attack",
    ("Explosions/Remote violence", "Air/drone strike"): "air_strike",
    ("Explosions/Remote violence", "Suicide bomb"): "suicide_bombing",
    ("Explosions/Remote violence", "Shelling/artillery/missile attack"): "shelling",
    ("Explosions/Remote violence", "Remote explosive/landmine/IED"): "remote_explosive",
    ("Explosions/Remote violence", "Grenade"): "grenade_attack",
    ("Violence against civilians", "Sexual violence"): "sexual_violence",
    ("Violence against civilians", "Attack"): "attack_on_civilians",
    ("Violence against civilians", "Abduction/forced disappearance"): "abduction",
    ("Protests", "Peaceful protest"): "peaceful_protest",
    ("Protests", "Protest with intervention"): "protest_with_intervention",
    ("Protests", "Excessive force against protesters"): "excessive_force_against_protesters",
    ("Riots", "Violent demonstration"): "violent_demonstration",
    ("Riots", "Mob violence"): "mob_violence",
    ("Strategic developments", "Agreement"): "agreement",
    ("Strategic developments", "Arrests"): "arrests",
    ("Strategic developments", "Change to group/activity"): "change_to_group_activity",
    ("Strategic developments", "Disrupted weapons use"): "air_defense_interception",
    ("Strategic developments", "Headquarters or base established"): "base_established",
    ("Strategic developments", "Looting/property destruction"): "looting_property_destruction",
    ("Strategic developments", "Non-violent transfer of territory"): (
        "non_violent_territory_transfer"
    ),
    ("Strategic developments", "Other"): "strategic_development",
}

DATE_PRECISIONS: dict[str, str] = {
    "day": "The event happened on `date` (ACLED time_precision 1).",
    "week": "The source places the event within a week (ACLED time_precision 2; UCDP "
    "date_prec 2 or 3): `date` is the day the source gives, any weekday, and the event "
    "happened within a few days of it (between `date` and `date_end` when that is given).",
    "month": "The source gives only the month; `date` is its first day (ACLED time_precision 3; "
    "UCDP date_prec 4).",
    "year": "The source gives only the year; `date` is 1 January (exported as ACLED "
    "time_precision 3; UCDP date_prec 5).",
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

# The category of /stats' totals of every munition entry whatever its category: an
# event with entries of two categories counts once in its `events`, which no sum of
# the categories' figures can.
ALL_CATEGORIES = "all"

# Bit i of an event's weapons set is set when the event has a munition entry of
# the i-th category, so the weapon filter is a cheap test on the row being scanned.
WEAPON_BITS = {category: 1 << i for i, category in enumerate(MUNITION_CATEGORIES)}

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
    "rebel_group": "An armed group fighting to change or replace a government (ACLED inter "
    "code 2).",
    "political_militia": "An armed group serving a political aim or elite (ACLED inter code 3).",
    "identity_militia": "An armed group of an ethnic, religious or local community (ACLED "
    "inter code 4).",
    "rioters": "People taking part in a violent demonstration or mob (ACLED inter code 5).",
    "protesters": "People demonstrating without violence (ACLED inter code 6).",
    "external_forces": "Foreign or other forces ACLED codes as 'External/Other forces' "
    "(ACLED inter code 8).",
}

# Where an imported event comes from (`provenance.dataset`; docs/imports.md).
IMPORT_DATASETS: dict[str, str] = {
    "acled": "An ACLED export (Armed Conflict Location & Event Data), one row per event.",
    "ucdp-ged": "UCDP's Georeferenced Event Dataset (Uppsala), one row per event.",
    "missile-attacks": "The daily dataset of missile and drone attacks on Ukraine compiled "
    "from Ukrainian Air Force reports, one row per attack wave and weapon model.",
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
