"""The address a request comes from, for per-address limits and login throttling.

The peer address of the connection is the client, unless that peer is one of the operator's
trusted reverse proxies (``TRANQUILLITE_TRUSTED_PROXIES``, addresses or networks): then the
client is the right-most address of ``X-Forwarded-For`` that is not itself a trusted proxy (the
left part of the header is written by the client and proves nothing). Nothing is trusted by
default, and the gateway is started with uvicorn's own proxy-header handling off
(``--no-proxy-headers``), so a client can never choose its address by sending the header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "unknown"


class ProxyConfigError(ValueError):
    """TRANQUILLITE_TRUSTED_PROXIES holds something that is not an address or a network."""


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    networks: list[Network] = []
    for raw in values:
        value = raw.strip()
        if not value:
            continue
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError as exc:
            raise ProxyConfigError(f"not an IP address or network: {value!r}") from exc
    return tuple(networks)


def _address(value: str) -> Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [2001:db8::1]:443
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # 203.0.113.7:51234
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class ClientResolver:
    trusted_proxies: tuple[Network, ...] = ()

    def _trusted(self, address: Address) -> bool:
        return any(address in network for network in self.trusted_proxies)

    def resolve(self, peer: str | None, forwarded_for: Sequence[str] = ()) -> str:
        """The client's address as text (``unknown`` when the peer is unknown)."""
        peer_address = _address(peer) if peer else None
        if peer_address is None:
            return UNKNOWN
        if not self.trusted_proxies or not self._trusted(peer_address):
            return str(peer_address)
        hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                # garbage in the chain: the last trusted proxy's peer is the best we know
                return str(peer_address)
            if not self._trusted(address):
                return str(address)
            peer_address = address
        return str(peer_address)

    def client(self, connection: HTTPConnection) -> str:
        peer = connection.client.host if connection.client else None
        return self.resolve(peer, connection.headers.getlist("x-forwarded-for"))


def address_key(address: str) -> str:
    """The bucket of an address for per-address limits: the address itself for IPv4, the /64
    for IPv6 (one subscriber usually holds a whole /64)."""
    parsed = _address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed) if parsed is not None else UNKNOWN
