# ruff: noqa: RUF001  (the spellings are Cyrillic on purpose; so are the dashes and apostrophes key() drops)
"""One gazetteer of the places Salvo's datasets name: Ukraine's oblasts, Kyiv and
Sevastopol cities, Crimea, and the Russian regions on Ukraine's border, each with
the spelling Salvo stores (`admin1`) and the spellings ACLED, UCDP, the missile-attacks
dataset and people write; and the towns the missile-attacks dataset names as targets.

The importers store `admin1` as `admin1_named` gives it, and the API's `admin1` and
`location` filters read a query through it, so that every spelling finds the place.
Lookups are dict lookups on a normalised key (`key`): case, apostrophes, hyphens and
an "oblast"/"region"/"область" suffix do not count.

Region centres are to about 0.1 degree (WGS84), town coordinates to about 0.01."""

import re
from typing import NamedTuple


class Region(NamedTuple):
    name: str  # the admin1 Salvo stores
    country_code: str  # ISO 3166-1 alpha-2
    latitude: float
    longitude: float
    spellings: tuple[str, ...]  # as key() reads them: no suffix, lower case


class Town(NamedTuple):
    name: str
    region: str  # the Region's name
    latitude: float
    longitude: float
    spellings: tuple[str, ...]


def _oblast(name: str, lat: float, lon: float, *spellings: str, country: str = "UA") -> Region:
    return Region(name, country, lat, lon, spellings)


REGIONS: tuple[Region, ...] = (
    _oblast(
        "Kharkiv Oblast",
        49.58,
        36.63,
        "kharkiv",
        "kharkov",
        "kharkivska",
        "kharkivshchyna",
        "харківська",
        "харків",
        "харьковская",
        "харьков",
    ),
    _oblast(
        "Donetsk Oblast",
        48.02,
        37.80,
        "donetsk",
        "donetska",
        "donechchyna",
        "донецька",
        "донецьк",
        "донецкая",
        "донецк",
    ),
    _oblast(
        "Zaporizhzhia Oblast",
        47.50,
        35.80,
        "zaporizhzhia",
        "zaporizhzhya",
        "zaporizhia",
        "zaporozhye",
        "zaporozhe",
        "zaporizka",
        "zaporizhzhe",
        "запорізька",
        "запоріжжя",
        "запорожская",
        "запорожье",
    ),
    _oblast(
        "Kherson Oblast",
        46.64,
        33.38,
        "kherson",
        "khersonska",
        "khersonshchyna",
        "херсонська",
        "херсон",
        "херсонская",
    ),
    _oblast(
        "Sumy Oblast",
        50.91,
        34.80,
        "sumy",
        "sumskaya",
        "sumska",
        "sumshchyna",
        "сумська",
        "суми",
        "сумская",
        "сумы",
    ),
    _oblast(
        "Dnipropetrovsk Oblast",
        48.46,
        35.04,
        "dnipropetrovsk",
        "dnepropetrovsk",
        "dnipropetrovska",
        "dnipro",
        "dnepr",
        "dnipropetrovshchyna",
        "дніпропетровська",
        "дніпро",
        "днепропетровская",
        "днепр",
    ),
    _oblast(
        "Odesa Oblast",
        46.48,
        30.73,
        "odesa",
        "odessa",
        "odeska",
        "odeshchyna",
        "одеська",
        "одеса",
        "одесская",
        "одесса",
    ),
    _oblast(
        "Mykolaiv Oblast",
        46.97,
        31.99,
        "mykolaiv",
        "mykolayiv",
        "nikolaev",
        "nikolayev",
        "mykolaivska",
        "mykolaivshchyna",
        "миколаївська",
        "миколаїв",
        "николаевская",
        "николаев",
    ),
    _oblast(
        "Kyiv Oblast",
        50.05,
        30.77,
        "kyiv",
        "kiev",
        "kyivska",
        "kyivshchyna",
        "kievskaya",
        "київська",
        "киевская",
    ),
    _oblast(
        "Kyiv City",
        50.4501,
        30.5234,
        "kyiv city",
        "kiev city",
        "city of kyiv",
        "kyiv special republican city",
        "kiev special republican city",
        "київ",
        "м київ",
        "місто київ",
        "киев",
        "г киев",
        "город киев",
    ),
    _oblast(
        "Chernihiv Oblast",
        51.49,
        31.29,
        "chernihiv",
        "chernigov",
        "chernihivska",
        "chernihivshchyna",
        "чернігівська",
        "чернігів",
        "черниговская",
        "чернигов",
    ),
    _oblast(
        "Luhansk Oblast",
        48.57,
        39.31,
        "luhansk",
        "lugansk",
        "luhanska",
        "luhanshchyna",
        "луганська",
        "луганськ",
        "луганская",
        "луганск",
    ),
    _oblast(
        "Poltava Oblast",
        49.59,
        34.55,
        "poltava",
        "poltavska",
        "poltavshchyna",
        "полтавська",
        "полтава",
        "полтавская",
    ),
    _oblast(
        "Lviv Oblast",
        49.84,
        24.03,
        "lviv",
        "lvov",
        "lwow",
        "lvivska",
        "lvivshchyna",
        "львівська",
        "львів",
        "львовская",
        "львов",
    ),
    _oblast(
        "Khmelnytskyi Oblast",
        49.42,
        26.99,
        "khmelnytskyi",
        "khmelnytskyy",
        "khmelnytskiy",
        "khmelnitskiy",
        "khmelnitsky",
        "khmelnytsky",
        "khmelnytska",
        "khmelnychchyna",
        "хмельницька",
        "хмельницький",
        "хмельницкая",
        "хмельницкий",
    ),
    _oblast(
        "Vinnytsia Oblast",
        49.23,
        28.47,
        "vinnytsia",
        "vinnytsya",
        "vinnitsa",
        "vinnytska",
        "vinnychchyna",
        "вінницька",
        "вінниця",
        "винницкая",
        "винница",
    ),
    _oblast(
        "Cherkasy Oblast",
        49.44,
        32.06,
        "cherkasy",
        "cherkassy",
        "cherkaska",
        "cherkashchyna",
        "черкаська",
        "черкаси",
        "черкасская",
        "черкассы",
    ),
    _oblast(
        "Zhytomyr Oblast",
        50.25,
        28.66,
        "zhytomyr",
        "zhitomir",
        "zhytomyrska",
        "zhytomyrshchyna",
        "житомирська",
        "житомир",
        "житомирская",
    ),
    _oblast(
        "Rivne Oblast",
        50.62,
        26.25,
        "rivne",
        "rovno",
        "rivnenska",
        "rivnenshchyna",
        "рівненська",
        "рівне",
        "ровенская",
        "ровно",
    ),
    _oblast(
        "Ivano-Frankivsk Oblast",
        48.92,
        24.71,
        "ivano frankivsk",
        "ivano frankovsk",
        "ivano frankivska",
        "prykarpattia",
        "івано франківська",
        "івано франківськ",
        "ивано франковская",
        "ивано франковск",
    ),
    _oblast(
        "Volyn Oblast",
        50.75,
        25.33,
        "volyn",
        "volhynia",
        "volynska",
        "lutsk",
        "волинська",
        "волинь",
        "волынская",
        "луцьк",
        "луцк",
    ),
    _oblast(
        "Ternopil Oblast",
        49.55,
        25.59,
        "ternopil",
        "ternopol",
        "ternopilska",
        "ternopilshchyna",
        "тернопільська",
        "тернопіль",
        "тернопольская",
        "тернополь",
    ),
    _oblast(
        "Chernivtsi Oblast",
        48.29,
        25.94,
        "chernivtsi",
        "chernovtsy",
        "chernivetska",
        "bukovyna",
        "чернівецька",
        "чернівці",
        "черновицкая",
        "черновцы",
    ),
    _oblast(
        "Zakarpattia Oblast",
        48.62,
        22.29,
        "zakarpattia",
        "zakarpattya",
        "zakarpatska",
        "transcarpathia",
        "uzhhorod",
        "uzhgorod",
        "закарпатська",
        "закарпаття",
        "закарпатская",
        "ужгород",
    ),
    _oblast(
        "Kirovohrad Oblast",
        48.51,
        32.26,
        "kirovohrad",
        "kirovograd",
        "kropyvnytskyi",
        "kropyvnytskyy",
        "kirovohradska",
        "kirovohradshchyna",
        "кіровоградська",
        "кропивницький",
        "кировоградская",
        "кропивницкий",
    ),
    _oblast(
        "Autonomous Republic of Crimea",
        44.95,
        34.10,
        "crimea",
        "autonomous republic of crimea",
        "ar crimea",
        "republic of crimea",
        "krym",
        "крим",
        "автономна республіка крим",
        "арк",
        "крым",
        "республика крым",
    ),
    _oblast(
        "Sevastopol",
        44.62,
        33.53,
        "sevastopol",
        "sebastopol",
        "sevastopol city",
        "sevastopol city state administration",
        "city of sevastopol",
        "севастополь",
        "м севастополь",
    ),
    _oblast(
        "Belgorod Oblast",
        50.71,
        37.39,
        "belgorod",
        "bilhorod",
        "belgorodskaya",
        "белгородская",
        "белгород",
        "бєлгородська",
        country="RU",
    ),
    _oblast(
        "Kursk Oblast",
        51.53,
        36.20,
        "kursk",
        "kurskaya",
        "курская",
        "курск",
        "курська",
        country="RU",
    ),
    _oblast(
        "Bryansk Oblast",
        52.89,
        33.42,
        "bryansk",
        "briansk",
        "bryanskaya",
        "брянская",
        "брянск",
        "брянська",
        country="RU",
    ),
    _oblast(
        "Voronezh Oblast",
        50.86,
        40.16,
        "voronezh",
        "voronezhskaya",
        "воронежская",
        "воронеж",
        "воронезька",
        country="RU",
    ),
    _oblast(
        "Rostov Oblast",
        47.69,
        41.26,
        "rostov",
        "rostovskaya",
        "ростовская",
        "ростов",
        "ростовська",
        country="RU",
    ),
    _oblast(
        "Oryol Oblast",
        52.78,
        36.48,
        "oryol",
        "orel",
        "orlovskaya",
        "орловская",
        "орёл",
        "орел",
        "орловська",
        country="RU",
    ),
)

# Towns the missile-attacks dataset names as a target, in their regions: a single town
# target places a wave at the town; Kyiv, a region of its own, at Kyiv City.
TOWNS: tuple[Town, ...] = (
    Town("Kyiv", "Kyiv City", 50.4501, 30.5234, ("kyiv", "kiev", "київ", "киев")),
    Town(
        "Kharkiv", "Kharkiv Oblast", 49.9935, 36.2304, ("kharkiv", "kharkov", "харків", "харьков")
    ),
    Town(
        "Dnipro", "Dnipropetrovsk Oblast", 48.4647, 35.0462, ("dnipro", "dnepr", "дніпро", "днепр")
    ),
    Town(
        "Kryvyi Rih",
        "Dnipropetrovsk Oblast",
        47.9105,
        33.3918,
        ("kryvyi rih", "krivoy rog", "kryvyy rih", "кривий ріг", "кривой рог"),
    ),
    Town(
        "Zaporizhzhia",
        "Zaporizhzhia Oblast",
        47.8388,
        35.1396,
        ("zaporizhzhia", "zaporizhzhya", "zaporizhia", "zaporozhye", "запоріжжя", "запорожье"),
    ),
    Town("Odesa", "Odesa Oblast", 46.4825, 30.7233, ("odesa", "odessa", "одеса", "одесса")),
    Town(
        "Mykolaiv",
        "Mykolaiv Oblast",
        46.9750,
        31.9946,
        ("mykolaiv", "mykolayiv", "nikolaev", "миколаїв", "николаев"),
    ),
    Town("Kherson", "Kherson Oblast", 46.6354, 32.6169, ("kherson", "херсон")),
    Town("Sumy", "Sumy Oblast", 50.9077, 34.7981, ("sumy", "суми", "сумы")),
    Town(
        "Kramatorsk",
        "Donetsk Oblast",
        48.7389,
        37.5844,
        ("kramatorsk", "краматорськ", "краматорск"),
    ),
    Town(
        "Starokostiantyniv",
        "Khmelnytskyi Oblast",
        49.7567,
        27.2039,
        ("starokostiantyniv", "starokonstantinov", "старокостянтинів", "староконстантинов"),
    ),
    Town(
        "Kolomyia",
        "Ivano-Frankivsk Oblast",
        48.5312,
        25.0403,
        ("kolomyia", "kolomyya", "коломия", "коломыя"),
    ),
    Town(
        "Ochakiv", "Mykolaiv Oblast", 46.6128, 31.5489, ("ochakiv", "ochakov", "очаків", "очаков")
    ),
    Town(
        "Kremenchuk",
        "Poltava Oblast",
        49.0659,
        33.4100,
        ("kremenchuk", "kremenchug", "кременчук", "кременчуг"),
    ),
    Town("Lutsk", "Volyn Oblast", 50.7472, 25.3254, ("lutsk", "луцьк", "луцк")),
    Town(
        "Snake Island",
        "Odesa Oblast",
        45.2550,
        30.2040,
        ("snake island", "zmiinyi island", "зміїний"),
    ),
)

# Suffixes that do not change the place named, as key() sees them (lower case).
_SUFFIXES = (
    " oblast",
    " oblasti",
    " region",
    " province",
    " obl.",
    " obl",
    " область",
    " обл.",
    " обл",
)
_PUNCTUATION = re.compile(r"['’ʼ`.]")
_SPACES = re.compile(r"[\s\-‐–]+")
_QUALIFIER = re.compile(r"\s*\([^)]*\)$")  # 'Kyiv oblast (south)'


def _plain(text: str) -> str:
    """Lower case, hyphens as spaces, without a trailing '(...)'."""
    return _SPACES.sub(" ", _QUALIFIER.sub("", text.strip().casefold())).strip()


def key(text: str) -> str:
    """A name as the gazetteer compares it: lower case, without apostrophes or dots,
    hyphens as spaces, without a trailing '(...)' or an oblast/region suffix."""
    text = _plain(text)
    for suffix in _SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
            break
    return _PUNCTUATION.sub("", text).strip()


BY_NAME = {region.name: region for region in REGIONS}
_REGION_BY_KEY = {key(s): r for r in REGIONS for s in (r.name, *r.spellings)}
_TOWN_BY_KEY = {key(s): t for t in TOWNS for s in (t.name, *t.spellings)}
assert len(_REGION_BY_KEY) == sum(1 + len(r.spellings) for r in REGIONS) - len(REGIONS), (
    "a spelling names two regions, or repeats a region's name"
)


def admin1_named(text: str) -> Region | None:
    """The region an admin1 text names ('Zaporizhzhya oblast', 'Kiev City', 'Одеська
    область'), or None. At this level a bare 'Kyiv' is Kyiv Oblast, as ACLED writes
    it beside 'Kyiv City'; 'Dnipro' and 'Lutsk' are their oblasts."""
    return _REGION_BY_KEY.get(key(text))


def place_named(text: str) -> Region | Town | None:
    """The place a free text names as a target: a town first ('Dnipro' the city,
    'Kyiv' Kyiv City), else a region ('Kursk oblast'); None when neither knows it."""
    stem = key(text)
    if (
        _PUNCTUATION.sub("", _plain(text)) != stem
    ):  # 'Odesa oblast', 'Kursk region': the region, not its centre
        return _REGION_BY_KEY.get(stem)
    found = _TOWN_BY_KEY.get(stem)
    if found is not None:
        return BY_NAME["Kyiv City"] if found.name == "Kyiv" else found
    return _REGION_BY_KEY.get(stem)


def spellings_of_place(text: str) -> tuple[str, ...]:
    """Every spelling of the town or region a place name names, with the name itself:
    what the `location` filter matches (place names are stored as their source wrote
    them). Just the name when the gazetteer does not know it."""
    found: Region | Town | None = _TOWN_BY_KEY.get(key(text)) or _REGION_BY_KEY.get(key(text))
    if found is None:
        return (text,)
    names = [text, found.name, *found.spellings]
    if isinstance(found, Region):
        names += [f"{spelling} oblast" for spelling in found.spellings]
    return tuple(dict.fromkeys(names))
