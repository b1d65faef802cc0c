"""Where the forwarding headers a backend reads come from.

A client can write any ``X-Forwarded-For`` it likes, and a backend that logs,
rate-limits or authorises by it would believe it. So the gateway trusts what
a peer says about earlier hops only when the peer is a proxy the operator
named (``edge.trusted_proxies``, none by default): from such a peer it appends
to the chain, from anyone else it replaces ``X-Forwarded-For/-Proto/-Host``,
``Forwarded`` (RFC 7239) and ``X-Real-IP`` with what it saw itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "::1"]`` as networks; a bad entry raises ValueError naming it."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{cidr!r} is not an IP address or CIDR network") from None
    return tuple(networks)


class TrustedProxies:
    """Answers "is this peer a proxy we trust?" in a dictionary lookup after the first time."""

    __slots__ = ("_known", "networks")

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks = parse_networks(cidrs)
        self._known: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, peer: str) -> bool:
        known = self._known.get(peer)
        if known is not None:
            return known
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            trusted = False
        else:
            trusted = any(address in network for network in self.networks)
        if len(self._known) >= 4096:  # peers are many at an edge; keep it bounded
            self._known.clear()
        self._known[peer] = trusted
        return trusted


_COLON = ord(":")


def forwarded_element(client: bytes, proto: bytes, host: bytes) -> bytes:
    """One RFC 7239 ``Forwarded`` element: ``for=...;proto=...;host="..."``.

    An IPv6 address is bracketed and quoted, the host always quoted (it may
    carry a port); the host reaches here only after the gateway checked it
    holds no quote or control character.
    """
    # an int needle: a bytes one costs CPython 3.11 a TypeError made and dropped
    node = b'"[' + client + b']"' if _COLON in client else client or b"unknown"
    return b"for=" + node + b";proto=" + proto + b';host="' + host + b'"'
