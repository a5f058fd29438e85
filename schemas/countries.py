"""Countries the importers recognise: ISO 3166-1 alpha-2 and numeric codes, the
Gleditsch-Ward number UCDP uses, and the names ACLED and UCDP write.

A code or name not listed here is refused with a message pointing to this table,
rather than guessed; add a row to import another country. The ACLED-shaped export
reads it back (alpha-2 to numeric)."""

from typing import NamedTuple


class Country(NamedTuple):
    alpha2: str
    numeric: int  # ISO 3166-1 numeric: ACLED's `iso`
    gleditsch_ward: int | None  # UCDP's `country_id`; None where the list has no state
    name: str  # the English name events are stored with
    aliases: tuple[str, ...] = ()  # other names ACLED or UCDP write


COUNTRIES: tuple[Country, ...] = (
    Country("UA", 804, 369, "Ukraine"),
    Country("RU", 643, 365, "Russia", ("Russia (Soviet Union)", "Russian Federation")),
    Country("BY", 112, 370, "Belarus"),
    Country("MD", 498, 359, "Moldova"),
    Country("PL", 616, 290, "Poland"),
    Country("RO", 642, 360, "Romania"),
    Country("HU", 348, 310, "Hungary"),
    Country("SK", 703, 317, "Slovakia"),
    Country("LT", 440, 368, "Lithuania"),
    Country("LV", 428, 367, "Latvia"),
    Country("EE", 233, 366, "Estonia"),
    Country("FI", 246, 375, "Finland"),
    Country("GE", 268, 372, "Georgia"),
    Country("AM", 51, 371, "Armenia"),
    Country("AZ", 31, 373, "Azerbaijan"),
    Country("KZ", 398, 705, "Kazakhstan"),
    Country("TR", 792, 640, "Turkey", ("Turkiye", "Türkiye")),
    Country("DE", 276, 260, "Germany"),
    Country("FR", 250, 220, "France"),
    Country("GB", 826, 200, "United Kingdom"),
    Country("US", 840, 2, "United States", ("United States of America",)),
    Country("SY", 760, 652, "Syria"),
    Country("LB", 422, 660, "Lebanon"),
    Country("IL", 376, 666, "Israel"),
    Country("PS", 275, None, "Palestine"),
    Country("IQ", 368, 645, "Iraq"),
    Country("IR", 364, 630, "Iran"),
    Country("YE", 887, 678, "Yemen", ("Yemen (North Yemen)",)),
    Country("SA", 682, 670, "Saudi Arabia"),
    Country("EG", 818, 651, "Egypt"),
    Country("LY", 434, 620, "Libya"),
    Country("SD", 729, 625, "Sudan"),
    Country("SS", 728, 626, "South Sudan"),
    Country("ET", 231, 530, "Ethiopia"),
    Country("SO", 706, 520, "Somalia"),
    Country("KE", 404, 501, "Kenya"),
    Country("CD", 180, 490, "Democratic Republic of Congo", ("DR Congo (Zaire)",)),
    Country("CF", 140, 482, "Central African Republic"),
    Country("TD", 148, 483, "Chad"),
    Country("CM", 120, 471, "Cameroon"),
    Country("NG", 566, 475, "Nigeria"),
    Country("NE", 562, 436, "Niger"),
    Country("ML", 466, 432, "Mali"),
    Country("BF", 854, 439, "Burkina Faso"),
    Country("MZ", 508, 541, "Mozambique"),
    Country("AF", 4, 700, "Afghanistan"),
    Country("PK", 586, 770, "Pakistan"),
    Country("IN", 356, 750, "India"),
    Country("MM", 104, 775, "Myanmar", ("Myanmar (Burma)",)),
    Country("PH", 608, 840, "Philippines"),
    Country("CO", 170, 100, "Colombia"),
    Country("MX", 484, 70, "Mexico"),
    Country("HT", 332, 41, "Haiti"),
)

BY_NUMERIC = {country.numeric: country for country in COUNTRIES}
BY_GLEDITSCH_WARD = {
    country.gleditsch_ward: country for country in COUNTRIES if country.gleditsch_ward is not None
}
BY_ALPHA2 = {country.alpha2: country for country in COUNTRIES}
BY_NAME = {
    name.casefold(): country for country in COUNTRIES for name in (country.name, *country.aliases)
}
