"""Who a request comes from, behind a load balancer: the address the rate limits, the
export slots, the audit trail and the access log name.

Without trusted proxies (the default) it is the peer, the address the connection
comes from, and `X-Forwarded-For` is ignored: any client can send one. With
`SALVO_TRUSTED_PROXIES` (addresses or networks, comma-separated: the balancers in
front, e.g. `make cluster`'s HAProxy on 127.0.0.1), a request from one of them is
taken to come from the address that proxy appended to `X-Forwarded-For`; that
header is read from the right, past every trusted proxy, to the first address that
is not one. Entries further left were written by the client and are never believed.

Why not werkzeug's ProxyFix: it trusts a fixed number of hops whoever the peer is,
so a client reaching an instance directly (past the balancer) would choose its own
address, and its own rate-limit budget, with one header.
"""

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# The environ key where the peer's own address is kept once REMOTE_ADDR names the client.
PEER = "salvo.peer"


def trusted_proxies(value: str) -> tuple[Network, ...]:
    """The networks of a SALVO_TRUSTED_PROXIES value (`127.0.0.1`, `10.0.0.0/8`,
    `::1`, comma-separated); ValueError naming the entry that is none."""
    networks = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"SALVO_TRUSTED_PROXIES: {entry!r} is not an IP address or network "
                "(e.g. 127.0.0.1, 10.0.0.0/8, ::1)"
            ) from None
    return tuple(networks)


def client_address(peer: str, forwarded_for: str | None, trusted: Iterable[Network]) -> str:
    """The address a request comes from (see the module)."""
    networks = tuple(trusted)
    if not networks or not forwarded_for or not _trusted(peer, networks):
        return peer
    client = peer
    for entry in reversed(forwarded_for.split(",")):
        address = _address(entry.strip())
        if address is None:
            # Not an address (a client's own text, or a proxy's "unknown"): what is
            # known ends with the last proxy that vouched for it.
            return client
        client = str(address)
        if not _trusted(client, networks):
            return client
    # Every hop a trusted proxy: the first of them is the client.
    return client


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    parsed = _address(address)
    return parsed is not None and any(parsed in network for network in networks)


class ForwardedFor:
    """WSGI middleware: REMOTE_ADDR becomes the client's address (client_address),
    the peer's kept at PEER, before Flask sees the request."""

    def __init__(self, app: Callable[..., Any], trusted: tuple[Network, ...]) -> None:
        self.app, self.trusted = app, trusted

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        peer = environ.get("REMOTE_ADDR", "")
        environ[PEER] = peer
        environ["REMOTE_ADDR"] = client_address(
            peer, environ.get("HTTP_X_FORWARDED_FOR"), self.trusted
        )
        return self.app(environ, start_response)
