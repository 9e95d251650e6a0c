"""Who is calling: the client's address, believing ``X-Forwarded-For`` only from proxies
named in ``TRUSTED_PROXIES``.

Per-address rate limits and the audit log key on this. Behind a load balancer the TCP
peer is the balancer, so without the setting the whole city would share one address;
with it, a header sent by anyone else is ignored (anyone can write one). The header is
read from the right: each hop appends the address it received from, so the rightmost
entry not belonging to a trusted proxy is the client as far as we can know.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from litestar.connection import ASGIConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "unknown"


@lru_cache(maxsize=8)
def trusted_networks(setting: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 192.0.2.1"`` -> networks; a bad entry fails at the first request."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False)
        for part in setting.split(",")
        if part.strip()
    )


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "198.51.100.7:5000"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)


def client_address(peer: str | None, forwarded_for: list[str], trusted: str) -> str:
    """The client's address from the TCP peer and the X-Forwarded-For header values."""
    peer_address = _address(peer) if peer else None
    if peer_address is None:
        return UNKNOWN
    networks = trusted_networks(trusted)
    if not networks or not _trusted(peer_address, networks):
        return str(peer_address)
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    client = peer_address
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:  # garbage from before the first trusted proxy: stop there
            break
        client = address
        if not _trusted(address, networks):
            break
    return str(client)


def forwarded_https(peer: str | None, forwarded_proto: list[str], trusted: str) -> bool:
    """Did the client reach us over HTTPS at a trusted proxy that terminated TLS? Read
    from ``X-Forwarded-Proto`` (its last value: the proxy next to us) only when the TCP
    peer is trusted, like ``X-Forwarded-For``."""
    peer_address = _address(peer) if peer else None
    networks = trusted_networks(trusted)
    if peer_address is None or not networks or not _trusted(peer_address, networks):
        return False
    protos = [p.strip().lower() for value in forwarded_proto for p in value.split(",")]
    return bool(protos) and protos[-1] == "https"


def client_ip(connection: ASGIConnection) -> str:
    """The calling client's address (see the module docstring), for limits and audit."""
    return client_address(
        connection.client.host if connection.client else None,
        connection.headers.getall("x-forwarded-for", []),
        connection.app.state.settings.trusted_proxies,
    )
