"""WebSocket clients for the tests: through a gateway by Host, with a token where asked.

The URI names the Host header the gateway routes on; ``host``/``port`` name the
socket, so no name has to resolve. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Response
from websockets.typing import Subprotocol

WAIT = 10.0


def ws_connect(
    base_url: str,
    path: str = "/ws",
    *,
    host: str,
    headers: list[tuple[str, str]] | None = None,
    subprotocols: list[str] | None = None,
    **options: Any,
) -> connect:
    """A ``websockets`` connect to ``base_url`` (http://127.0.0.1:port) naming ``host``."""
    url = urlsplit(base_url)
    scheme = "wss" if url.scheme == "https" else "ws"
    return connect(
        f"{scheme}://{host}{path}",
        host=url.hostname,
        port=url.port,
        additional_headers=headers or [],
        subprotocols=[Subprotocol(s) for s in subprotocols] if subprotocols else None,
        proxy=None,
        **{"open_timeout": WAIT, **options},
    )


def with_token(path: str, token: str) -> str:
    joiner = "&" if "?" in path else "?"
    return f"{path}{joiner}access_token={quote(token)}"


async def greeting(socket: ClientConnection) -> dict[str, Any]:
    """The fake backend's first message: the handshake it received."""
    hello: dict[str, Any] = json.loads(await recv(socket))
    assert hello["event"] == "connected", hello
    return hello


def header_map(hello: dict[str, Any]) -> dict[str, str]:
    return dict(hello["headers"])


async def recv(socket: ClientConnection, timeout: float = WAIT) -> str | bytes:

    return await asyncio.wait_for(socket.recv(), timeout)


async def closed(socket: ClientConnection, timeout: float = WAIT) -> tuple[int | None, str]:
    """Read until the socket closes; its close code and reason as this side received them."""

    try:
        async with asyncio.timeout(timeout):
            while True:
                await socket.recv()
    except ConnectionClosed as exc:
        received = exc.rcvd
        return (received.code, received.reason) if received is not None else (None, "")
    raise AssertionError("unreachable")


async def refused(connecting: connect) -> Response:
    """The HTTP answer a refused handshake got (fails if it was accepted)."""
    try:
        async with connecting:
            pass
    except InvalidStatus as exc:
        return exc.response
    raise AssertionError("the handshake was accepted")


async def refused_status(connecting: connect) -> int:
    """The HTTP status a refused handshake got (fails if it was accepted)."""
    return (await refused(connecting)).status_code
