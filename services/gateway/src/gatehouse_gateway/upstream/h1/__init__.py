"""A lean HTTP/1.1 client for the proxy's hot path: pooled keep-alive connections, httptools.

aiohttp's client is general (cookies, redirects, auth, tracing, multipart,
header normalisation) and every request pays for that generality: measured
under wrk on this machine, its request setup and response object cost more
CPU than the rest of the proxy together (loadtest/README.md). The proxy needs
far less: write a request head, stream a body, parse a response with the C
parser uvicorn already uses (httptools), and hand the connection back to a
pool. This module does only that, with the same failure classes the proxy
distinguishes (no pool slot, cannot connect, read timeout, broken connection).
"""

from gatehouse_gateway.upstream.h1.client import BackendPool, UpstreamClient
from gatehouse_gateway.upstream.h1.connection import H1Connection
from gatehouse_gateway.upstream.h1.errors import (
    UpstreamBroken,
    UpstreamConnectError,
    UpstreamError,
    UpstreamPoolTimeout,
    UpstreamTimeout,
    UpstreamTLSError,
)
from gatehouse_gateway.upstream.h1.response import UpstreamResponse

__all__ = [
    "BackendPool",
    "H1Connection",
    "UpstreamBroken",
    "UpstreamClient",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamPoolTimeout",
    "UpstreamResponse",
    "UpstreamTLSError",
    "UpstreamTimeout",
]
