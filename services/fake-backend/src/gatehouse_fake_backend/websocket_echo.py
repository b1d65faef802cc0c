"""A WebSocket echo at ``/ws`` (and ``<any prefix>/ws``), to prove proxying end to end.

On connect the backend sends one JSON text message describing the handshake
it received (instance name, path, query, headers, the subprotocol it chose),
so a caller sees which instance answered and what the gateway forwarded. After
that every text or binary message comes back unchanged, except these text
commands:

- ``close <code> [reason]``: the backend closes with that code and reason;
- ``flood <count> <size>``: it sends ``count`` binary messages of ``size`` bytes
  as fast as the socket takes them (a slow reader's backpressure);
- ``big <size>``: one binary message of ``size`` bytes;
- ``last-close``: a JSON text message with the close code and reason of the
  last socket a client closed on this instance (so a test can see what a
  gateway passed on).

It selects the first subprotocol offered, if any, and a ``?note=<text>`` in the
query puts ``X-Backend-Note: <text>`` on its 101 (what a gateway's response
rules may remove).
"""

from __future__ import annotations

import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

MAX_COMMAND_BYTES = 64 * 1024 * 1024


def _describe(websocket: WebSocket, instance: str, subprotocol: str | None) -> str:
    return json.dumps(
        {
            "event": "connected",
            "instance": instance,
            "path": websocket.url.path,
            "query": websocket.url.query,
            "headers": [
                [k.decode("latin-1"), v.decode("latin-1")] for k, v in websocket.scope["headers"]
            ],
            "subprotocol": subprotocol,
        }
    )


class CloseLog:
    """The close code and reason of the last socket its client closed."""

    def __init__(self) -> None:
        self.last: dict[str, object] = {"code": None, "reason": None}


async def _command(websocket: WebSocket, text: str, log: CloseLog) -> bool:
    """Run ``text`` if it is a command; True when the socket is closed by it."""
    verb, _, rest = text.partition(" ")
    args = rest.split(" ", 1)
    if verb == "close" and args[0].isdigit():
        await websocket.close(int(args[0]), args[1] if len(args) > 1 else "")
        return True
    if verb == "flood" and len(args) == 2 and args[0].isdigit() and args[1].isdigit():
        payload = b"x" * min(int(args[1]), MAX_COMMAND_BYTES)
        for _ in range(int(args[0])):
            await websocket.send_bytes(payload)
        return False
    if verb == "big" and args[0].isdigit():
        await websocket.send_bytes(b"x" * min(int(args[0]), MAX_COMMAND_BYTES))
        return False
    if verb == "last-close":
        await websocket.send_text(json.dumps(log.last))
        return False
    await websocket.send_text(text)
    return False


def websocket_router(instance: str) -> APIRouter:
    router = APIRouter()
    log = CloseLog()

    # ``/ws`` and ``.../ws`` under any prefix, for routes with a path prefix
    @router.websocket("/ws")
    @router.websocket("/{prefix:path}/ws")
    async def echo(websocket: WebSocket) -> None:
        offered = websocket.scope.get("subprotocols") or []
        subprotocol = offered[0] if offered else None
        note = websocket.query_params.get("note")
        headers = [(b"x-backend-note", note.encode())] if note else None
        await websocket.accept(subprotocol=subprotocol, headers=headers)
        await websocket.send_text(_describe(websocket, instance, subprotocol))
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    log.last = {"code": message.get("code"), "reason": message.get("reason")}
                    return
                text = message.get("text")
                if text is not None:
                    if await _command(websocket, text, log):
                        return
                else:
                    await websocket.send_bytes(message.get("bytes") or b"")
        except WebSocketDisconnect as exc:
            log.last = {"code": exc.code, "reason": exc.reason}

    return router
