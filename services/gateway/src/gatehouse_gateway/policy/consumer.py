"""The consumer a request counts against: one string per request and key.

The value is what shared state in Redis is keyed on and what the operator
sees as "top consumers", so it is bounded and never a secret: API keys are
always hashed, and any value that is long or not printable ASCII is shown by
its hash. A request without the value is the shared consumer ``-``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from gatehouse_common.jwt import VerifiedToken
from gatehouse_gateway.config.consumer import ConsumerKey
from gatehouse_gateway.edge.head import RequestHead

MISSING = "-"
# longer values (or any byte outside printable ASCII) are kept as their hash
_MAX_PLAIN = 128


class ConsumerSource(Protocol):
    """What a request offers to tell its consumer (``ProxyRequest`` has all three)."""

    @property
    def identity(self) -> VerifiedToken | None: ...

    @property
    def head(self) -> RequestHead: ...

    @property
    def client(self) -> bytes: ...


def _hashed(value: bytes) -> str:
    return "sha256:" + hashlib.sha256(value).hexdigest()[:32]


def _bounded(value: bytes) -> str:
    if not value:
        return MISSING
    if len(value) > _MAX_PLAIN or not value.isascii() or not value.decode("ascii").isprintable():
        return _hashed(value)
    return value.decode("ascii")


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _claim(identity: VerifiedToken, name: str) -> bytes:
    value = identity.claims.get(name)
    if value is None:
        return b""
    if isinstance(value, list | tuple):
        value = ",".join(str(part) for part in value)
    return str(value).encode("utf-8")


def consumer_of(key: ConsumerKey, request: ConsumerSource) -> str:
    """The consumer ``request`` counts against under ``key``."""
    by = key.by
    if by == "route":
        return "route"
    if by == "subject":
        identity = request.identity
        return _bounded(identity.subject.encode("utf-8")) if identity is not None else MISSING
    if by == "client_address":
        return _bounded(request.client)
    if by == "claim":
        identity = request.identity
        return _bounded(_claim(identity, key.name or "")) if identity is not None else MISSING
    name = key.header
    value = _header(request.head.headers, name) if name is not None else None
    if not value:
        return MISSING
    return _hashed(value) if by == "api_key" else _bounded(value)
