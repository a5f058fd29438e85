"""Behind a load balancer (api/proxies.py): X-Forwarded-For names the client only on a
request from a trusted proxy (SALVO_TRUSTED_PROXIES), read from the right past every
trusted proxy; the rate limits, the 429's message and the audit trail then name the
client. A client's own header is never believed. The limits run on SQLite (the
address is decided before any query); the audit entry on both engines. Through
HAProxy, with real processes: tests/test_cluster.py."""

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from api import create_app
from api.proxies import client_address, trusted_proxies
from tests.test_audit import entries
from tests.test_writes import KHARKIV, Partner

PROXIES = trusted_proxies("10.0.0.0/8, 192.0.2.1, ::1")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # From a trusted proxy: the address it appended.
        ("10.0.0.1", "203.0.113.5", "203.0.113.5"),
        # A client's own entries further left are not believed.
        ("10.0.0.1", "198.51.100.1, 203.0.113.5", "203.0.113.5"),
        # Proxies in a chain are walked past, to the first address that is none.
        ("10.0.0.1", "198.51.100.1, 203.0.113.5, 10.0.0.7, 192.0.2.1", "203.0.113.5"),
        ("::1", "2001:db8::5", "2001:db8::5"),
        # Every hop trusted: the first of them.
        ("10.0.0.1", "10.0.0.9", "10.0.0.9"),
        # Not an address: the last that a trusted proxy vouched for.
        ("10.0.0.1", "unknown", "10.0.0.1"),
        ("10.0.0.1", "203.0.113.5, garbage, 10.0.0.7", "10.0.0.7"),
        ("10.0.0.1", "", "10.0.0.1"),
        # From anyone else the header is the client's own: ignored.
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),
        ("10.0.0.1", None, "10.0.0.1"),
    ],
)
def test_the_client_is_read_from_the_right_past_trusted_proxies(
    peer: str, forwarded_for: str | None, client: str
) -> None:
    assert client_address(peer, forwarded_for, PROXIES) == client


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("10.0.0.1", "203.0.113.5", ()) == "10.0.0.1"


def test_a_setting_that_names_no_address_is_refused_at_start(
    seeded_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALVO_TRUSTED_PROXIES", "127.0.0.1, balancer.local")
    with pytest.raises(ValueError, match=r"SALVO_TRUSTED_PROXIES: 'balancer\.local' is not an IP"):
        create_app({"DATABASE": str(seeded_db)})


def limited(seeded_db: Path, proxies: str) -> Flask:
    return create_app(
        {
            "DATABASE": str(seeded_db),
            "RATE_LIMIT_ANONYMOUS": "2/minute",
            "TRUSTED_PROXIES": trusted_proxies(proxies),
        }
    )


def test_each_client_behind_a_trusted_proxy_has_its_own_limit(seeded_db: Path) -> None:
    client = limited(seeded_db, "10.0.0.1").test_client()

    def get(forwarded_for: str, peer: str = "10.0.0.1") -> tuple[int, str]:
        answer = client.get(
            "/api/v1/event-types",
            headers={"X-Forwarded-For": forwarded_for},
            environ_base={"REMOTE_ADDR": peer},
        )
        return answer.status_code, (answer.get_json() or {}).get("detail", "")

    assert [get("203.0.113.5")[0] for _ in range(2)] == [200, 200]
    status, detail = get("203.0.113.5")
    assert status == 429 and "203.0.113.5 has used them all" in detail
    assert get("198.51.100.1")[0] == 200
    # The client cannot pick another budget by naming another address itself.
    assert get("192.0.2.77, 203.0.113.5")[0] == 429
    # Nor can one reaching the instance directly.
    assert [get("192.0.2.99", peer="203.0.113.5")[0] for _ in range(1)] == [429]


def test_an_untrusted_peers_header_changes_nothing(seeded_db: Path) -> None:
    client = limited(seeded_db, "").test_client()
    statuses = [
        client.get(
            "/api/v1/event-types",
            headers={"X-Forwarded-For": f"203.0.113.{number}"},
            environ_base={"REMOTE_ADDR": "10.0.0.1"},
        ).status_code
        for number in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_a_write_through_a_trusted_proxy_is_audited_with_the_clients_address(
    fresh_database: str, open_app: Callable[..., Flask]
) -> None:
    partner = Partner(
        fresh_database, open_app(fresh_database, TRUSTED_PROXIES=trusted_proxies("10.0.0.1"))
    )
    _, etag = partner.event()
    response = partner.client.patch(
        f"/api/v1/events/{KHARKIV}",
        json={"notes": "Corrected behind the balancer."},
        headers=partner.headers(**{"If-Match": etag, "X-Forwarded-For": "203.0.113.7"}),
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )
    assert response.status_code == 200, response.get_json()
    (entry,) = entries(partner.database, "key_id IS NOT NULL")
    assert entry["client_address"] == "203.0.113.7"
