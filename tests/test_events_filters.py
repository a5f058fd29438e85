"""Each filter of GET /api/v1/events, with a case that includes and one that excludes,
against the seeded article data."""

import pytest
from flask.testing import FlaskClient

K = "ua-2024-05-30-kharkiv-missile-strike"
KN = "ua-2024-05-30-kharkiv-north-missile-strike"
AIR = "ua-2024-05-30-nationwide-air-attack-interceptions"
ASSAULT = "ua-2024-05-10-kharkiv-oblast-cross-border-assault"
VOV_FIGHT = "ua-2024-05-vovchansk-street-fighting"
SL_BUILDUP = "ua-2024-05-strilecha-lyptsi-troop-buildup"
VOV_BUILDUP = "ua-2024-05-vovchansk-troop-buildup"
AVDIIVKA = "ua-2024-02-avdiivka-captured"
NATO = "ua-2024-05-30-nato-calls-to-ease-weapons-restrictions"
US = "ua-2024-05-30-us-permits-strikes-to-defend-kharkiv"
DE = "ua-2024-05-germany-permits-strikes-to-defend-kharkiv"
NL = "ua-2024-05-netherlands-permits-strikes-to-defend-kharkiv"
UK = "ua-2024-05-uk-weapons-usable-across-ukraine"
STORM_SHADOW = "ua-2024-05-24-uk-allows-storm-shadow-strikes-in-russia"
AID = "ua-2024-04-us-military-aid-package"
SYRSKYI = "ua-2024-05-27-syrskyi-approves-french-instructors"
FRANCE = "ua-2024-05-30-france-plans-training-mission"

ALL = {K, KN, AIR, ASSAULT, VOV_FIGHT, SL_BUILDUP, VOV_BUILDUP, AVDIIVKA, NATO, US, DE, NL, UK,
       STORM_SHADOW, AID, SYRSKYI, FRANCE}  # fmt: skip
KHARKIV_OBLAST = {K, KN, ASSAULT, VOV_FIGHT, SL_BUILDUP, VOV_BUILDUP, US, DE, NL}


def ids(client: FlaskClient, query: str) -> set[str]:
    response = client.get(f"/api/v1/events?limit=1000&{query}")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["links"]["next"] is None
    return {event["id"] for event in body["data"]}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ALL),
        ("event_type=missile_strike", {K, KN}),
        ("event_type=troop_movement,armed_clash", {SL_BUILDUP, VOV_BUILDUP, VOV_FIGHT}),
        ("event_type=territory_change&event_type=ground_assault", {AVDIIVKA, ASSAULT}),
        ("event_type=drone_strike", set()),
        ("date_from=2024-05-27", {K, KN, AIR, NATO, US, FRANCE, SYRSKYI}),
        ("date_to=2024-04-30", {AVDIIVKA, AID}),
        ("date_from=2024-05-10&date_to=2024-05-24", {ASSAULT, STORM_SHADOW}),
        ("date_from=2024-05-24&date_to=2024-05-24", {STORM_SHADOW}),
        ("date_from=2024-05-31", set()),
        ("country=UA", ALL),
        ("country=ua", ALL),
        ("country=RU", set()),
        ("admin1=donetsk%20oblast", {AVDIIVKA}),
        ("admin1=Kharkiv%20Oblast", KHARKIV_OBLAST),
        ("admin1=Kyiv%20Oblast", set()),
        ("location=VOVCHANSK", {VOV_FIGHT, VOV_BUILDUP}),
        ("location=Kharkiv", {K}),
        ("location=Kyiv", set()),
        ("bbox=36.8,50.2,37.0,50.4", {VOV_FIGHT, VOV_BUILDUP}),
        ("bbox=36.1,49.9,36.3,50.1", {K, KN}),
        ("bbox=20,40,25,45", set()),
        # Crosses the antimeridian: from 170E eastwards round to 37E, which leaves out
        # only Avdiivka (37.75E) of the places in the data.
        ("bbox=170,45,37,51", ALL - {AVDIIVKA}),
        ("near=49.9935,36.2304&radius_km=10", {K, KN}),
        ("near=49.9935,36.2304&radius_km=5", {K}),
        ("near=50.4501,30.5234&radius_km=50", set()),
        ("actor=france", {SYRSKYI, FRANCE}),
        ("actor=Air%20Force", {AIR}),
        ("actor=CIVILIANS", {K}),
        ("actor=Hamas", set()),
        ("actor=%25", set()),
        ("weapon=drone", {AIR}),
        ("weapon=missile", {K, KN, AIR}),
        ("weapon=mixed,drone", {AIR}),
        ("weapon=rocket", set()),
        ("min_injured=4", {K}),
        ("min_injured=5", set()),
        ("min_killed=0", set()),
        ("q=gas", {K}),
        ("q=%22storm%20shadow%22", {STORM_SHADOW}),
        ("q=oblast", KHARKIV_OBLAST | {AVDIIVKA}),
        ("q=trainer*", {FRANCE}),
        ("q=tank", set()),
        ("event_type=strategic_development&admin1=kharkiv%20oblast", {US, DE, NL}),
        ("weapon=missile&date_from=2024-05-30&bbox=36,49.5,37,50.5", {K, KN}),
    ],
)
def test_filter(client: FlaskClient, query: str, expected: set[str]) -> None:
    assert ids(client, query) == expected
