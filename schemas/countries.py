"""Every country the importers and the API know: ISO 3166-1 alpha-2, alpha-3 and
numeric codes and names from pycountry, and the Gleditsch-Ward number UCDP uses from
schemas/data/gleditsch_ward.csv.

That file is Gleditsch & Ward's list of independent states (K. S. Gleditsch and M. D.
Ward, "A revised list of independent states since the Congress of Vienna",
International Interactions 25, 1999; ksgleditsch.com/data-4.html), the states since
1946, as UCDP codes `country_id`, each with the ISO code Salvo stores. States ISO
lacks take the code ISO withdrew (265 German Democratic Republic `DD`, 315
Czechoslovakia `CS`, 680 Yemen PDR `YD`) or the one in common use (347 Kosovo `XK`);
a state UCDP continues under its number is its successor (260 German Federal
Republic `DE`, 345 Yugoslavia `RS`, 678 Yemen Arab Republic `YE`, 365 `RU`).

A country is stored with the English name of `NAMES` where it has one (the names
Salvo's events already carry), else pycountry's common name. The ACLED-shaped export
reads the table back (alpha-2 to numeric)."""

import csv
from importlib.resources import files
from typing import NamedTuple

import pycountry


class Country(NamedTuple):
    alpha2: str
    alpha3: str
    numeric: int | None  # ISO 3166-1 numeric: ACLED's `iso`; None for Kosovo
    name: str  # the English name events are stored with
    aliases: tuple[str, ...] = ()  # other names ACLED, UCDP or ISO write


# Names Salvo stored before the table came from pycountry, kept so that events keep
# their country names; and the names ACLED and UCDP write where ISO's differ.
NAMES = {
    "RU": ("Russia", "Russia (Soviet Union)", "Russian Federation"),
    "TR": ("Turkey", "Turkiye", "Türkiye", "Turkey (Ottoman Empire)"),
    "US": ("United States", "United States of America"),
    "SY": ("Syria",),
    "PS": ("Palestine",),
    "IR": ("Iran", "Iran (Persia)"),
    "YE": ("Yemen", "Yemen (North Yemen)", "Yemen (Arab Republic of Yemen)"),
    "CD": ("Democratic Republic of Congo", "DR Congo (Zaire)", "Congo, DR"),
    "CG": ("Republic of Congo", "Congo"),
    "MM": ("Myanmar", "Myanmar (Burma)"),
    "MD": ("Moldova",),
    "GB": ("United Kingdom",),
    "RS": ("Serbia", "Serbia (Yugoslavia)", "Yugoslavia"),
    "CZ": ("Czech Republic", "Czechia"),
    "BY": ("Belarus", "Belarus (Byelorussia)"),
    "XK": ("Kosovo",),
    "DD": ("German Democratic Republic", "East Germany"),
    "CS": ("Czechoslovakia",),
    "YD": ("South Yemen", "Yemen, People's Republic of", "Yemen (South Yemen)"),
    "KH": ("Cambodia", "Cambodia (Kampuchea)"),
    "CI": ("Ivory Coast", "Cote d'Ivoire", "Côte d'Ivoire"),
    "MK": ("North Macedonia", "Macedonia, FYR"),
    "SZ": ("Eswatini", "Swaziland", "Kingdom of eSwatini (Swaziland)"),
    "TL": ("East Timor", "Timor-Leste"),
}

# Codes ISO withdrew, for the states of the Gleditsch-Ward list that ISO lacks now
# (pycountry's historic countries reuse some current codes: only these are taken).
_HISTORIC = ("DDDE", "CSHH", "YDYE")


def _countries() -> tuple[Country, ...]:
    found = []
    for entry in pycountry.countries:
        common = getattr(entry, "common_name", None)
        iso_names = (entry.name, common, getattr(entry, "official_name", None))
        names = NAMES.get(entry.alpha_2) or (common or entry.name,)
        aliases = tuple(dict.fromkeys(n for n in (*names[1:], *iso_names) if n and n != names[0]))
        found.append(Country(entry.alpha_2, entry.alpha_3, int(entry.numeric), names[0], aliases))
    for alpha4 in _HISTORIC:
        state = pycountry.historic_countries.get(alpha_4=alpha4)
        assert state is not None, alpha4
        names = NAMES[state.alpha_2]
        aliases = tuple(dict.fromkeys((*names[1:], state.name)))
        found.append(Country(state.alpha_2, state.alpha_3, int(state.numeric), names[0], aliases))
    # Kosovo: not in ISO 3166; XK and XKX are the codes in common use (EU, IMF).
    found.append(Country("XK", "XKX", None, "Kosovo"))
    return tuple(found)


COUNTRIES = _countries()
BY_ALPHA2 = {country.alpha2: country for country in COUNTRIES}
BY_ALPHA3 = {country.alpha3: country for country in COUNTRIES}
BY_NUMERIC = {country.numeric: country for country in COUNTRIES if country.numeric is not None}
BY_NAME = {
    name.casefold(): country for country in COUNTRIES for name in (country.name, *country.aliases)
}


def _gleditsch_ward() -> dict[int, Country]:
    table = files("schemas").joinpath("data/gleditsch_ward.csv").read_text(encoding="utf-8")
    codes = {}
    for row in csv.DictReader(table.splitlines()):
        country = BY_ALPHA2[row["alpha2"]]
        codes[int(row["gw_code"])] = country
        BY_NAME.setdefault(row["name"].casefold(), country)  # UCDP writes G&W's names
    return codes


BY_GLEDITSCH_WARD = _gleditsch_ward()
