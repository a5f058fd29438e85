"""Countries and places: every country UCDP and ACLED code, one gazetteer of place
names applied by every importer, and the API's admin1 and location filters reading
any spelling (docs/imports.md, "Countries and places").

The fixtures are hand-written in the shapes of the public files: UCDP Candidate GED's
`adm_1` ('Zaporizhzhya oblast', 'Kiev Special Republican city'), ACLED's older
admin1 ('Kiev City', 'Kiev', 'Odessa', 'Zaporizhia'), the missile-attacks dataset's
`target` and `affected region` ('Dnipropetrovsk oblast, Dnipro Raion',
"['Khmelnytskyi oblast']")."""

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from schemas.countries import BY_ALPHA2, BY_ALPHA3, BY_GLEDITSCH_WARD, BY_NAME, BY_NUMERIC
from schemas.gazetteer import REGIONS, admin1_named, place_named
from seed.places import OBLASTS
from tests.test_imports import FIXTURES, client_of, document, run_import

GED, ACLED = FIXTURES / "places-ged.csv", FIXTURES / "places-acled.csv"
MISSILES = FIXTURES / "places-missiles.csv"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("places") / "salvo.db"
    for layout, path in (("ucdp-ged", GED), ("acled", ACLED), ("missile-attacks", MISSILES)):
        assert run_import(db, layout, path) == 0  # no row refused
    return db


@pytest.fixture
def client(imported: Path) -> FlaskClient:
    return client_of(imported)


def ids(client: FlaskClient, query: str) -> set[str]:
    response = client.get(f"/api/v1/events?{query}&limit=100")
    assert response.status_code == 200, response.get_json()
    return {event["id"] for event in response.get_json()["data"]}


def missile_wave(client: FlaskClient, date: str) -> dict[str, Any]:
    """The one missile-attacks event of a day (its id is another part's business)."""
    (event_id,) = ids(client, f"date_from={date}&date_to={date}&actor=air%20force")
    return document(client, event_id)


def test_gleditsch_ward_codes_include_states_iso_lacks() -> None:
    assert {code: BY_GLEDITSCH_WARD[code].alpha2 for code in (260, 265, 315, 345, 347)} == {
        260: "DE",
        265: "DD",
        315: "CS",
        345: "RS",
        347: "XK",
    }
    assert {code: BY_GLEDITSCH_WARD[code].alpha2 for code in (678, 680, 816, 365, 369)} == {
        678: "YE",
        680: "YD",
        816: "VN",
        365: "RU",
        369: "UA",
    }
    assert BY_GLEDITSCH_WARD[680].name == "South Yemen"
    # Every ISO country, by each code and by its names.
    assert len(BY_ALPHA2) >= 249
    assert BY_NUMERIC[50] is BY_ALPHA3["BGD"] is BY_NAME["bangladesh"] is BY_ALPHA2["BD"]
    assert BY_NAME["russia (soviet union)"].name == "Russia"
    assert BY_NAME["yemen (north yemen)"].alpha2 == "YE"


def test_ged_rows_in_every_country_import(client: FlaskClient) -> None:
    countries = {
        document(client, f"ged-92000{i}")["location"]["country"]: document(client, f"ged-92000{i}")[
            "location"
        ]["country_code"]
        for i in range(1, 6)
    }
    assert countries == {
        "Bangladesh": "BD",
        "Brazil": "BR",
        "Peru": "PE",
        "Benin": "BJ",
        "Papua New Guinea": "PG",
    }
    # An admin1 the gazetteer does not know is kept as given.
    assert document(client, "ged-920003")["location"]["admin1"] == "Junín region"


def test_ged_spellings_are_stored_as_the_gazetteer_names_them(client: FlaskClient) -> None:
    admin1 = {
        event_id: document(client, event_id)["location"]["admin1"]
        for event_id in ("ged-910001", "ged-910003", "ged-910004", "ged-910005", "ged-910006")
    }
    assert admin1 == {
        "ged-910001": "Zaporizhzhia Oblast",
        "ged-910003": "Odesa Oblast",
        "ged-910004": "Mykolaiv Oblast",
        "ged-910005": "Kyiv City",
        "ged-910006": "Kursk Oblast",  # in Russia: the gazetteer's Russian regions too
    }
    # A region-precise place is the oblast's own, as in the curated data.
    assert document(client, "ged-910002")["location"]["id"] == "ua-zaporizhzhia-oblast"


def test_acled_spellings_are_stored_as_the_gazetteer_names_them(client: FlaskClient) -> None:
    admin1 = {i: document(client, f"acled-ukr51000{i}")["location"]["admin1"] for i in range(1, 6)}
    assert admin1 == {
        1: "Kyiv City",
        2: "Kyiv Oblast",  # ACLED's bare 'Kiev' is the oblast, beside 'Kiev City'
        3: "Odesa Oblast",
        4: "Zaporizhzhia Oblast",
        5: "Unheard-of Region",  # kept as given
    }


@pytest.mark.parametrize(
    "spelling",
    [
        "Zaporizhzhia Oblast",
        "Zaporizhzhya oblast",
        "zaporizhia",
        "Zaporizhzhia region",
        "Запорізька область",
        "Запорожская область",
    ],
)
def test_admin1_finds_the_oblast_whatever_the_spelling(client: FlaskClient, spelling: str) -> None:
    assert ids(client, f"admin1={spelling}") == {"ged-910001", "ged-910002", "acled-ukr510004"}


def test_admin1_variants_of_other_regions(client: FlaskClient) -> None:
    assert {"ged-910003", "acled-ukr510003"} <= ids(client, "admin1=Odessa")
    assert ids(client, "admin1=Київська область") == {"acled-ukr510002"}
    assert ids(client, "admin1=Kiev City") == {"ged-910005", "acled-ukr510001"} | {
        missile for missile in ids(client, "admin1=Kyiv City")
    }
    assert "ged-910006" in ids(client, "admin1=Курская область")
    assert ids(client, "admin1=Unheard-of Region") == {"acled-ukr510005"}


def test_stats_by_admin1_show_each_oblast_once(client: FlaskClient) -> None:
    response = client.get("/api/v1/stats?group_by=admin1")
    assert response.status_code == 200
    keys = [row["key"] for row in response.get_json()["data"]]
    assert len(keys) == len(set(keys))
    assert "Zaporizhzhya oblast" not in keys and "Odessa oblast" not in keys
    by_key = {row["key"]: row["events"] for row in response.get_json()["data"]}
    assert by_key["Zaporizhzhia Oblast"] == 3
    assert by_key["Odesa Oblast"] == 3  # GED, ACLED, and the wave at 'Odesa oblast, Black Sea'


def test_location_finds_a_place_by_any_spelling(client: FlaskClient) -> None:
    # ACLED's place 'Kiev' (as written) is found as Kyiv, Київ or Kiev.
    for spelling in ("Kiev", "kyiv", "Київ"):
        assert "acled-ukr510001" in ids(client, f"location={spelling}")
    assert "acled-ukr510003" in ids(client, "location=Одеса")
    assert ids(client, "location=Nowhere") == {"acled-ukr510005"}


def test_a_wave_at_one_target_is_placed_there(client: FlaskClient) -> None:
    dnipro = missile_wave(client, "2025-07-09")["location"]
    assert (dnipro["name"], dnipro["admin1"], dnipro["precision"]) == (
        "Dnipro",
        "Dnipropetrovsk Oblast",
        "city",
    )
    assert (dnipro["latitude"], dnipro["longitude"]) == (48.4647, 35.0462)
    raion = missile_wave(client, "2025-07-10")["location"]
    assert raion["id"] == "ua-dnipropetrovsk-oblast"
    at_sea = missile_wave(client, "2024-08-23")["location"]
    assert at_sea["id"] == "ua-odesa-oblast"


def test_targets_in_russia_belong_to_russia(client: FlaskClient) -> None:
    kursk = missile_wave(client, "2024-08-21")["location"]
    assert (kursk["id"], kursk["country"], kursk["country_code"], kursk["admin1"]) == (
        "ru-kursk-oblast",
        "Russia",
        "RU",
        "Kursk Oblast",
    )


def test_a_nationwide_wave_is_the_countrys_whatever_affected_region_says(
    client: FlaskClient,
) -> None:
    wave = missile_wave(client, "2025-07-05")
    assert wave["munitions"][0]["launched"] == 322
    assert wave["location"]["id"] == "ua"
    assert wave["location"]["precision"] == "country"
    assert wave["id"] not in ids(client, "admin1=Khmelnytskyi Oblast")


def test_a_wave_at_several_targets_is_the_countrys_with_every_target_named(
    client: FlaskClient,
) -> None:
    several = missile_wave(client, "2025-07-11")
    assert several["location"]["id"] == "ua"
    assert several["notes"].endswith("target: Odesa oblast and Mykolaiv oblast.")
    # Found by a search for a target, not by the admin1 or bbox of one.
    assert several["id"] in ids(client, "q=mykolaiv")
    assert several["id"] not in ids(client, "admin1=Mykolaiv Oblast")
    assert missile_wave(client, "2024-08-22")["location"]["id"] == "ua"  # 'south'


def test_the_gazetteer() -> None:
    assert admin1_named("Kharkivs'ka oblast") == admin1_named("Харківська область")
    assert admin1_named("Kyiv oblast (south)") == admin1_named("Kiev")
    assert admin1_named("Kiev Special Republican city") == admin1_named("Kyiv City")
    assert admin1_named("Khmelnitskiy") == admin1_named("Khmelnytskyi Oblast")
    assert admin1_named("Kropyvnytskyi") == admin1_named("Kirovograd")
    assert admin1_named("Uzhgorod") == admin1_named("Zakarpattia")
    assert admin1_named("Sevastopol City State Administration") == admin1_named("Севастополь")
    assert admin1_named("south") is None
    kyiv = place_named("Kyiv")
    assert kyiv is not None and kyiv.name == "Kyiv City"  # as a target, 'Kyiv' is the city
    # One gazetteer: Salvo's synthetic oblasts are its regions, at its centres.
    regions = {region.name: region for region in REGIONS}
    assert all(regions[o.name][2:4] == (o.latitude, o.longitude) for o in OBLASTS)
