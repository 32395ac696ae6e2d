"""Outgoing requests to addresses an agency admin chose (webhook delivery): HTTPS only, and
never to a private, loopback, link-local, multicast or otherwise reserved address.

The check runs on the addresses the name resolves to, when the channel is configured and again
at every connection (:class:`GuardedTransport`): the transport resolves the name itself, refuses
the connection if any address is not public, and connects to the address it checked — a DNS
answer that changes between the check and the connection (rebinding) cannot reach an internal
service. TLS still verifies the certificate of the name. No redirects are followed, and no
proxy from the environment is used.

Operators (not agency admins) may allow more: ``TRANQUILLITE_WEBHOOK_ALLOWED_NETWORKS`` (networks
such as a département's intranet) and ``TRANQUILLITE_WEBHOOK_ALLOW_HTTP`` (tests, a receiver on
the same private network).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from webhook.security.clients import Network, parse_networks

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
RESOLVE_TIMEOUT = 5.0


class TargetRefused(ValueError):
    """The target may not be used; ``reason`` is safe to show and to store (no address)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AddressRefused(httpcore.ConnectError):
    """A connection to a name that resolves to a refused address."""


def _is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return _is_public(mapped)
        if address.teredo is not None:
            return False
    return bool(
        address.is_global
        and not (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
        )
    )


@dataclass(frozen=True)
class TargetPolicy:
    allow_http: bool = False
    allowed_networks: tuple[Network, ...] = ()

    @classmethod
    def from_env(cls) -> TargetPolicy:
        raw = os.environ.get("TRANQUILLITE_WEBHOOK_ALLOWED_NETWORKS", "")
        return cls(
            allow_http=os.environ.get("TRANQUILLITE_WEBHOOK_ALLOW_HTTP", "0") in ("1", "true"),
            allowed_networks=parse_networks(raw.split(",")),
        )

    def address_allowed(self, address: Address) -> bool:
        if any(address in network for network in self.allowed_networks):
            return True
        return _is_public(address)

    def check_url(self, url: str) -> tuple[str, int]:
        """(host, port) of an acceptable URL; raises :class:`TargetRefused`."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise TargetRefused("adresse invalide") from None
        if parts.scheme != "https" and not (self.allow_http and parts.scheme == "http"):
            raise TargetRefused("seules les adresses https:// sont acceptées")
        host = parts.hostname
        if not host:
            raise TargetRefused("adresse invalide")
        if parts.username or parts.password:
            raise TargetRefused("pas d'identifiants dans l'adresse")
        if host.rstrip(".").lower() == "localhost" or host.endswith(".localhost"):
            raise TargetRefused("adresse interne refusée")
        try:
            literal: Address | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None and not self.address_allowed(literal):
            raise TargetRefused("adresse interne refusée")
        return host, port or (443 if parts.scheme == "https" else 80)

    def check_addresses(self, addresses: Iterable[Address]) -> None:
        found = list(addresses)
        if not found:
            raise TargetRefused("nom introuvable")
        if not all(self.address_allowed(a) for a in found):
            raise TargetRefused("adresse interne refusée")


async def resolve(host: str, port: int, timeout: float = RESOLVE_TIMEOUT) -> list[Address]:
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=timeout
    )
    addresses: list[Address] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def check_target(policy: TargetPolicy, url: str) -> bool:
    """Check a webhook URL when it is configured. Raises :class:`TargetRefused` when it is
    refused; returns False when the name does not resolve yet (checked again at delivery)."""
    host, port = policy.check_url(url)
    try:
        addresses = await resolve(host, port)
    except (OSError, TimeoutError, UnicodeError):
        return False
    policy.check_addresses(addresses)
    return True


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that resolves, checks, then connects to the checked address."""

    def __init__(self, policy: TargetPolicy) -> None:
        self.policy = policy
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve(host, port, timeout or RESOLVE_TIMEOUT)
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise httpcore.ConnectError("name resolution failed") from exc
        try:
            self.policy.check_addresses(addresses)
        except TargetRefused as exc:
            raise AddressRefused(exc.reason) from None
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise httpcore.ConnectError("connection failed") from last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx transport whose every connection goes through :class:`GuardedBackend`."""

    def __init__(self, policy: TargetPolicy) -> None:
        # not super().__init__(): it builds a pool on the default network backend
        self.policy = policy
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=20,
            max_keepalive_connections=10,
            keepalive_expiry=30.0,
            network_backend=GuardedBackend(policy),
        )


def guarded_client(policy: TargetPolicy, timeout: float) -> httpx.AsyncClient:
    """An httpx client for targets chosen by agencies: guarded transport, no redirects, no
    proxy or certificates from the environment."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
