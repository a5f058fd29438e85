"""Real places for synthetic events: Ukrainian oblasts with their towns (WGS84, to
about 0.01 degree), weighted towards the front and the border. An oblast's name and
centre are the gazetteer's (schemas/gazetteer.py), shared with the importers."""

import re
from typing import Any, NamedTuple

from schemas.countries import BY_ALPHA2
from schemas.gazetteer import BY_NAME, Region


class Oblast(NamedTuple):
    name: str
    latitude: float
    longitude: float
    weight: int  # relative share of synthetic events
    towns: tuple[tuple[str, float, float], ...]


OBLASTS: tuple[Oblast, ...] = (
    Oblast(
        "Kharkiv Oblast",
        49.58,
        36.63,
        14,
        (
            ("Kharkiv", 49.9935, 36.2304),
            ("Vovchansk", 50.2906, 36.9414),
            ("Kupiansk", 49.7106, 37.6156),
            ("Izium", 49.2117, 37.2569),
            ("Chuhuiv", 49.8356, 36.6881),
            ("Lyptsi", 50.1833, 36.4167),
            ("Balakliia", 49.4627, 36.8586),
            ("Zolochiv", 50.2803, 35.9808),
        ),
    ),
    Oblast(
        "Donetsk Oblast",
        48.02,
        37.80,
        18,
        (
            ("Avdiivka", 48.1394, 37.7497),
            ("Bakhmut", 48.5947, 38.0003),
            ("Pokrovsk", 48.2822, 37.1761),
            ("Kramatorsk", 48.7389, 37.5844),
            ("Sloviansk", 48.8533, 37.6050),
            ("Kostiantynivka", 48.5333, 37.7064),
            ("Chasiv Yar", 48.5870, 37.8350),
            ("Vuhledar", 47.7797, 37.2486),
            ("Toretsk", 48.3978, 37.8472),
            ("Myrnohrad", 48.3033, 37.2633),
        ),
    ),
    Oblast(
        "Zaporizhzhia Oblast",
        47.50,
        35.80,
        9,
        (
            ("Zaporizhzhia", 47.8388, 35.1396),
            ("Orikhiv", 47.5675, 35.7858),
            ("Huliaipole", 47.6631, 36.2561),
            ("Robotyne", 47.4450, 35.8383),
            ("Stepnohirsk", 47.5750, 35.2800),
        ),
    ),
    Oblast(
        "Kherson Oblast",
        46.64,
        33.38,
        7,
        (
            ("Kherson", 46.6354, 32.6169),
            ("Beryslav", 46.8411, 33.4264),
            ("Bilozerka", 46.6381, 32.4383),
            ("Antonivka", 46.6786, 32.7161),
        ),
    ),
    Oblast(
        "Sumy Oblast",
        50.91,
        34.80,
        6,
        (
            ("Sumy", 50.9077, 34.7981),
            ("Shostka", 51.8659, 33.4797),
            ("Okhtyrka", 50.3103, 34.8988),
            ("Bilopillia", 51.1500, 34.3167),
        ),
    ),
    Oblast(
        "Dnipropetrovsk Oblast",
        48.46,
        35.04,
        6,
        (
            ("Dnipro", 48.4647, 35.0462),
            ("Nikopol", 47.5667, 34.4000),
            ("Kryvyi Rih", 47.9105, 33.3918),
            ("Pavlohrad", 48.5350, 35.8700),
        ),
    ),
    Oblast(
        "Odesa Oblast",
        46.48,
        30.73,
        5,
        (
            ("Odesa", 46.4825, 30.7233),
            ("Izmail", 45.3500, 28.8500),
            ("Chornomorsk", 46.3019, 30.6547),
        ),
    ),
    Oblast(
        "Mykolaiv Oblast",
        46.97,
        31.99,
        4,
        (
            ("Mykolaiv", 46.9750, 31.9946),
            ("Ochakiv", 46.6128, 31.5489),
        ),
    ),
    Oblast(
        "Kyiv Oblast",
        50.05,
        30.77,
        3,
        (
            ("Bila Tserkva", 49.7968, 30.1311),
            ("Bucha", 50.5436, 30.2122),
            ("Brovary", 50.5114, 30.7906),
        ),
    ),
    Oblast("Kyiv City", 50.4501, 30.5234, 5, (("Kyiv", 50.4501, 30.5234),)),
    Oblast(
        "Chernihiv Oblast",
        51.49,
        31.29,
        3,
        (
            ("Chernihiv", 51.4982, 31.2893),
            ("Novhorod-Siverskyi", 52.0050, 33.2625),
        ),
    ),
    Oblast(
        "Luhansk Oblast",
        48.57,
        39.31,
        4,
        (
            ("Sievierodonetsk", 48.9481, 38.4911),
            ("Lysychansk", 48.9042, 38.4417),
            ("Kreminna", 49.0483, 38.2153),
        ),
    ),
    Oblast(
        "Poltava Oblast",
        49.59,
        34.55,
        2,
        (
            ("Poltava", 49.5883, 34.5514),
            ("Kremenchuk", 49.0659, 33.4100),
            ("Myrhorod", 49.9680, 33.6080),
        ),
    ),
    Oblast(
        "Lviv Oblast", 49.84, 24.03, 2, (("Lviv", 49.8397, 24.0297), ("Stryi", 49.2600, 23.8500))
    ),
    Oblast(
        "Khmelnytskyi Oblast",
        49.42,
        26.99,
        1,
        (
            ("Khmelnytskyi", 49.4229, 26.9871),
            ("Starokostiantyniv", 49.7567, 27.2039),
        ),
    ),
    Oblast("Vinnytsia Oblast", 49.23, 28.47, 1, (("Vinnytsia", 49.2331, 28.4682),)),
    Oblast("Cherkasy Oblast", 49.44, 32.06, 1, (("Cherkasy", 49.4444, 32.0598),)),
    Oblast("Zhytomyr Oblast", 50.25, 28.66, 1, (("Zhytomyr", 50.2547, 28.6587),)),
    Oblast("Rivne Oblast", 50.62, 26.25, 1, (("Rivne", 50.6199, 26.2516),)),
    Oblast("Ivano-Frankivsk Oblast", 48.92, 24.71, 1, (("Ivano-Frankivsk", 48.9226, 24.7111),)),
    # Weight 0: never drawn for synthetic events (appended last, so the random stream of
    # the others is unchanged); here so that the import gazetteer has every oblast.
    Oblast("Volyn Oblast", 50.75, 25.33, 0, (("Lutsk", 50.7472, 25.3254),)),
    Oblast("Ternopil Oblast", 49.55, 25.59, 0, (("Ternopil", 49.5535, 25.5948),)),
    Oblast("Chernivtsi Oblast", 48.29, 25.94, 0, (("Chernivtsi", 48.2917, 25.9352),)),
    Oblast("Zakarpattia Oblast", 48.62, 22.29, 0, (("Uzhhorod", 48.6208, 22.2879),)),
    Oblast("Kirovohrad Oblast", 48.51, 32.26, 0, (("Kropyvnytskyi", 48.5079, 32.2623),)),
    Oblast("Autonomous Republic of Crimea", 44.95, 34.10, 0, (("Simferopol", 44.9521, 34.1024),)),
    Oblast("Sevastopol", 44.62, 33.53, 0, (("Sevastopol", 44.6166, 33.5254),)),
)

# One gazetteer: an oblast here is one of its regions, at the same centre.
assert all((o.latitude, o.longitude) == BY_NAME[o.name][2:4] for o in OBLASTS), (
    "seed/places.py and schemas/gazetteer.py disagree on an oblast's centre"
)

UKRAINE_CENTRE = (48.3794, 31.1656)


def slug(text: str) -> str:
    """The part of a place id made from a name: lower case, dashes between words."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def region_place(oblast: Oblast | Region) -> dict[str, Any]:
    """A gazetteer region (an oblast) as a region-precise place at its centre, with the
    id the curated seed, the synthetic data and the importers share ('ua-kharkiv-oblast',
    'ru-kursk-oblast')."""
    region = BY_NAME[oblast.name]
    country = BY_ALPHA2[region.country_code]
    return {
        "id": f"{country.alpha2.lower()}-{slug(region.name)}",
        "name": region.name,
        "admin1": region.name,
        "country": country.name,
        "country_code": country.alpha2,
        "latitude": region.latitude,
        "longitude": region.longitude,
        "precision": "region",
    }


UKRAINE_PLACE: dict[str, Any] = {
    "id": "ua",
    "name": "Ukraine",
    "admin1": None,
    "country": "Ukraine",
    "country_code": "UA",
    "latitude": UKRAINE_CENTRE[0],
    "longitude": UKRAINE_CENTRE[1],
    "precision": "country",
}
