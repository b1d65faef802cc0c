"""A bare "return 200" app, for measuring the servers themselves.

The same answer (``200``, ``ok\\n``, two headers) three ways: an ASGI app for
uvicorn and granian's ASGI interface, and an RSGI app for granian's own
interface, whose protocol object writes a whole response in one call. With no
application work in the way, the difference between the three is the cost of
the server and its interface per request.

``python -m gatehouse_loadtest.bare_app --port N`` serves the ASGI app the way
every Gatehouse service is served (:func:`gatehouse_common.server.serve` with
``fast=True``: uvloop, the edge limits, one write per small response), so the
uvicorn figure is the gatehouse edge protocol's, not stock uvicorn's. The
module imports nothing of the harness: it runs in the gateway's venv.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Protocol

BODY = b"ok\n"
_ASGI_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"3")]
_RSGI_HEADERS = [("content-type", "text/plain"), ("content-length", "3")]

Message = MutableMapping[str, Any]


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """The ASGI app: 200 to every request; lifespan messages acknowledged."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": _ASGI_HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def create_app() -> Callable[..., Awaitable[None]]:
    """The factory :func:`gatehouse_common.server.serve` imports by name."""
    return app


class RsgiProtocol(Protocol):
    """The one method of granian's RSGI HTTP protocol object this app uses."""

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Write the whole response."""


async def rsgi_app(scope: object, protocol: RsgiProtocol) -> None:
    """The RSGI app (granian ``--interface rsgi``): one call writes the answer."""
    protocol.response_bytes(200, _RSGI_HEADERS, BODY)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve :func:`app` under uvicorn with the Gatehouse edge protocol."""
    from gatehouse_common.server import serve
    from gatehouse_common.settings import ServiceSettings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    settings = ServiceSettings(
        service_name="bench-bare", host=args.host, port=args.port, log_level="warning"
    )
    serve("gatehouse_loadtest.bare_app:create_app", settings, fast=True)


if __name__ == "__main__":
    main()
