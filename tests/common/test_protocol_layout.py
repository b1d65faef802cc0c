"""The edge protocol keeps CPython's fast attribute access.

CPython 3.11 keeps an instance's attributes in a shared-key dict of at most 30
keys; an instance with more is given an ordinary dict, and every ``self.x`` of
the protocol (uvicorn's parser callbacks included) then costs about four times
as much: about 4% of the gateway's instructions per request. The edge's own
state is therefore in slots. A served connection's protocol is inspected here,
over a real socket, after a real request.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.server import ServerState

from gatehouse_common.edge_limits import EdgeLimits
from gatehouse_common.edge_protocol import (
    CoalescingEdgeHttpToolsProtocol,
    EdgeHttpToolsProtocol,
)
from gatehouse_common.server import EdgeConfig

SHARED_KEYS_MAX = 30  # CPython 3.11's SHARED_KEYS_MAX_SIZE


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def _served_protocol(protocol_class: type[EdgeHttpToolsProtocol]) -> EdgeHttpToolsProtocol:
    config = EdgeConfig(
        _app, edge_limits=EdgeLimits(), http=protocol_class, lifespan="off", log_config=None
    )
    config.load()
    loop = asyncio.get_running_loop()
    state = ServerState()
    made: list[EdgeHttpToolsProtocol] = []

    def factory() -> EdgeHttpToolsProtocol:
        made.append(protocol_class(config, state, {}, loop))
        return made[-1]

    server = await loop.create_server(factory, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        answer = await asyncio.wait_for(reader.readuntil(b"ok"), 30)
        assert answer.startswith(b"HTTP/1.1 200")
        writer.close()
    finally:
        server.close()
    return made[0]


async def test_a_served_protocol_stays_within_the_shared_key_dict() -> None:
    for protocol_class in (EdgeHttpToolsProtocol, CoalescingEdgeHttpToolsProtocol):
        protocol = await _served_protocol(protocol_class)
        assert len(protocol.__dict__) <= SHARED_KEYS_MAX, sorted(protocol.__dict__)
        # the edge's state is there, in its slots
        assert protocol.limits == EdgeLimits()
        assert protocol._kept_alive
