"""The JWKS fetched with the gateway's own upstream client instead of httpx.

The gateway already speaks HTTP/1.1 (and TLS) to backends; fetching the key
set the same way keeps httpx, httpcore, h11, h2, anyio's backend and certifi
out of every worker: about 5 MB of RSS each (loadtest/README.md, "Memory").
Like the httpx client it replaces, it follows no redirect, verifies an
``https://`` issuer against the system's trust store, and bounds the whole
exchange by the fetch's timeout. The document is read up to one byte past
:data:`MAX_JWKS_BYTES`, so an endless answer cannot grow the worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import urlsplit

from gatehouse_common.jwt.jwks import MAX_JWKS_BYTES, Fetch, JWKSFetchError
from gatehouse_gateway.upstream.h1 import UpstreamClient
from gatehouse_gateway.upstream.h1.errors import UpstreamError

_ACCEPT = [(b"accept", b"application/json")]


def upstream_fetch(upstream: Callable[[], UpstreamClient]) -> Fetch:
    """A :data:`~gatehouse_common.jwt.jwks.Fetch` over ``upstream()`` (asked at each
    fetch: the client exists once the gateway has started)."""

    async def fetch(url: str, timeout: float) -> tuple[int, bytes]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise JWKSFetchError(f"not an http(s) URL: {url}")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            async with asyncio.timeout(timeout):
                response = await upstream().request(
                    f"{parts.scheme}://{parts.netloc}",
                    "GET",
                    target.encode("ascii"),
                    _ACCEPT,
                    None,
                    connect_timeout=timeout,
                    read_timeout=timeout,
                )
                try:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_JWKS_BYTES:
                            break
                finally:
                    response.release()
        except (UpstreamError, OSError, TimeoutError, UnicodeEncodeError) as exc:
            raise JWKSFetchError(f"{type(exc).__name__}: {exc}") from exc
        return response.status, bytes(body)

    return fetch
