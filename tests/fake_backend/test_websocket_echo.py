"""The fake backend's WebSocket echo at ``/ws``, straight to the process."""

from __future__ import annotations

import json

import httpx
from support.processes import ServiceProcess
from support.websocket import closed, greeting, recv, ws_connect


async def test_echo_greets_with_its_name_echoes_and_closes_on_request(
    backends: list[ServiceProcess],
) -> None:
    backend = backends[0]
    async with ws_connect(backend.url, "/ws", host="127.0.0.1", subprotocols=["a", "b"]) as ws:
        hello = await greeting(ws)
        assert hello["instance"] == "backend-1"
        assert hello["subprotocol"] == "a" == ws.subprotocol
        await ws.send("text")
        assert await recv(ws) == "text"
        await ws.send(b"\x00bin")
        assert await recv(ws) == b"\x00bin"
        await ws.send("big 10")
        assert await recv(ws) == b"x" * 10
        await ws.send("close 4000 bye now")
        assert await closed(ws) == (4000, "bye now")
    async with ws_connect(backend.url, "/ws", host="127.0.0.1") as ws:
        await greeting(ws)
        await ws.close(4002, "client leaves")
    async with ws_connect(backend.url, "/ws", host="127.0.0.1") as ws:
        await greeting(ws)
        await ws.send("last-close")
        assert json.loads(await recv(ws)) == {"code": 4002, "reason": "client leaves"}


def test_plain_http_to_ws_is_still_an_echo(backends: list[ServiceProcess]) -> None:
    response = httpx.get(backends[0].url + "/ws", timeout=10)
    assert response.status_code == 200
    assert response.json()["path"] == "/ws"
