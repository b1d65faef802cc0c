"""WebSocket through the gateway, against real processes: echo, tokens, opt-out, closes, failures.

One gateway for the module over one fake backend (its echo at ``/ws``), with a
route per policy: open, token by header only, token from any source (as a
browser must send it), and WebSocket turned off.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from support.gateway import HOST, GatewayProcess, Launcher, gateway_route, metric_value
from support.jwks import AUDIENCE, ISSUER, KeyServer
from support.processes import ServiceProcess, free_port
from support.websocket import (
    WAIT,
    closed,
    greeting,
    header_map,
    recv,
    refused_status,
    with_token,
    ws_connect,
)

SECURE = "secure.gatehouse.test"
BROWSER = "browser.gatehouse.test"
NO_WS = "nows.gatehouse.test"
DEAD = "dead.gatehouse.test"
OWN_HOST = "own-host.gatehouse.test"


@pytest.fixture(scope="module")
def backend(module_launcher: Launcher) -> ServiceProcess:
    return module_launcher.backends(1, prefix="ws")[0]


@pytest.fixture(scope="module")
def gateway(module_launcher: Launcher, keys: KeyServer, backend: ServiceProcess) -> GatewayProcess:
    nobody = f"http://127.0.0.1:{free_port()}"
    document = {
        "auth": {"jwks_url": keys.url, "issuer": ISSUER, "audience": AUDIENCE, "leeway": 5},
        "routes": [
            gateway_route([backend]),
            gateway_route([backend], name="secure", hosts=[SECURE], auth="required"),
            gateway_route(
                [backend],
                name="browser",
                hosts=[BROWSER],
                auth="required",
                websocket_token_sources=["header", "subprotocol", "query"],
            ),
            gateway_route([backend], name="nows", hosts=[NO_WS], websocket=False),
            gateway_route([nobody], name="dead", hosts=[DEAD]),
            gateway_route([backend], name="own-host", hosts=[OWN_HOST], preserve_host=False),
        ],
    }
    return module_launcher.gateway(document)


async def test_text_and_binary_echo_with_the_http_forwarding_rules(
    gateway: GatewayProcess,
) -> None:
    forged = [
        ("X-Auth-Subject", "forged"),
        ("X-Forwarded-For", "203.0.113.9"),
        ("X-Request-ID", "client-chosen-id-1234"),
        ("Origin", "https://app.example"),
    ]
    async with ws_connect(
        gateway.url, "/ws?x=1", host=HOST, headers=forged, subprotocols=["chat.v1"]
    ) as socket:
        hello = await greeting(socket)
        seen = header_map(hello)
        assert hello["query"] == "x=1"
        assert "x-auth-subject" not in seen
        assert seen["x-forwarded-for"] == "127.0.0.1"
        assert seen["x-forwarded-proto"] == "http"
        assert seen["x-forwarded-host"] == HOST
        assert seen["x-request-id"] == "client-chosen-id-1234"
        assert seen["origin"] == "https://app.example"
        assert socket.subprotocol == "chat.v1"
        assert socket.response is not None
        assert socket.response.headers["x-request-id"] == "client-chosen-id-1234"
        await socket.send("hello")
        assert await recv(socket) == "hello"
        await socket.send(b"\x00\xffbinary")
        assert await recv(socket) == b"\x00\xffbinary"


async def test_the_backend_sees_the_host_the_route_says_as_on_http(
    gateway: GatewayProcess, backend: ServiceProcess
) -> None:
    async with ws_connect(gateway.url, host=HOST) as socket:
        sent = [value for name, value in (await greeting(socket))["headers"] if name == "host"]
        assert sent == [HOST]  # preserve_host (the default): the client's, once
    async with ws_connect(gateway.url, host=OWN_HOST) as socket:
        hello = await greeting(socket)
        sent = [value for name, value in hello["headers"] if name == "host"]
        assert sent == [backend.url.removeprefix("http://")]
        assert header_map(hello)["x-forwarded-host"] == OWN_HOST


async def test_headers_the_client_names_in_connection_stop_at_the_gateway(
    gateway: GatewayProcess,
) -> None:
    # hop-by-hop by naming (RFC 9110 section 7.6.1), as on the HTTP path. Written
    # by hand: a WebSocket client sends its own "Connection: Upgrade" line.
    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: %b\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nX-Kept: 2\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % HOST.encode()
        )
        async with asyncio.timeout(WAIT):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 "), head
            # the backend's greeting: one unmasked text frame, 16-bit length if long
            first, second = await reader.readexactly(2)
            assert first == 0x81 and second & 0x7F <= 126
            size = second & 0x7F
            if size == 126:
                size = int.from_bytes(await reader.readexactly(2), "big")
            seen = header_map(json.loads(await reader.readexactly(size)))
    finally:
        writer.close()
    assert "x-secret-hop" not in seen
    assert seen["x-kept"] == "2"


async def test_header_token_is_checked_at_the_handshake(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    assert await refused_status(ws_connect(gateway.url, host=SECURE)) == 401
    bad = [("Authorization", "Bearer not.a.jwt")]
    assert await refused_status(ws_connect(gateway.url, host=SECURE, headers=bad)) == 401
    good = [("Authorization", f"Bearer {keys.token()}")]
    async with ws_connect(gateway.url, host=SECURE, headers=good) as socket:
        seen = header_map(await greeting(socket))
        assert seen["x-auth-subject"] == "42"
        assert seen["x-auth-roles"] == "user"
        await socket.send("through")
        assert await recv(socket) == "through"


async def test_subprotocol_token_only_where_the_route_allows_it(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    token = keys.token()
    offered = [f"bearer.{token}", "chat.v1"]
    assert await refused_status(ws_connect(gateway.url, host=SECURE, subprotocols=offered)) == 401
    async with ws_connect(gateway.url, host=BROWSER, subprotocols=offered) as socket:
        hello = await greeting(socket)
        assert header_map(hello)["x-auth-subject"] == "42"
        # the backend never saw the token, so it could not select it
        assert token not in json.dumps(hello)
        assert socket.subprotocol == "chat.v1"
        assert socket.response is not None
        assert token not in str(socket.response.headers)


async def test_query_token_only_where_the_route_allows_it_and_never_forwarded(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    token = keys.token(jti="query-token")
    path = with_token("/ws?room=7", token)
    assert await refused_status(ws_connect(gateway.url, path, host=SECURE)) == 401
    async with ws_connect(gateway.url, path, host=BROWSER) as socket:
        hello = await greeting(socket)
        assert hello["query"] == "room=7"
        assert header_map(hello)["x-auth-subject"] == "42"
    assert token not in gateway.log_text()
    bad = with_token("/ws", "not.a.jwt")
    assert await refused_status(ws_connect(gateway.url, bad, host=BROWSER)) == 401


async def test_route_opt_out_and_no_route_are_refused_before_the_upgrade(
    gateway: GatewayProcess,
) -> None:
    assert await refused_status(ws_connect(gateway.url, host=NO_WS)) == 403
    assert await refused_status(ws_connect(gateway.url, host="nobody.example")) == 404
    # the opted-out route still proxies HTTP
    response = httpx.get(gateway.url + "/ws", headers={"Host": NO_WS}, timeout=10)
    assert response.status_code == 200
    refusals = metric_value(gateway.metrics(), "gateway_websocket_refusals_total")
    assert refusals >= 2


async def test_close_codes_and_reasons_pass_both_ways(gateway: GatewayProcess) -> None:
    async with ws_connect(gateway.url, host=HOST) as socket:
        await greeting(socket)
        await socket.send("close 4000 backend says bye")
        assert await closed(socket) == (4000, "backend says bye")
    async with ws_connect(gateway.url, host=HOST) as socket:
        await greeting(socket)
        await socket.close(4001, "client says bye")
    async with ws_connect(gateway.url, host=HOST) as socket:
        await greeting(socket)
        await socket.send("last-close")
        assert json.loads(await recv(socket)) == {"code": 4001, "reason": "client says bye"}


async def test_a_backend_that_is_down_is_refused_cleanly(gateway: GatewayProcess) -> None:
    assert await refused_status(ws_connect(gateway.url, host=DEAD)) == 502


async def test_messages_and_active_sockets_are_counted_and_shown(gateway: GatewayProcess) -> None:
    def value(name: str, **labels: str) -> float:
        return metric_value(gateway.metrics(), name, route="app", **labels)

    before_up = value("gateway_websocket_messages_total", direction="upstream")
    before_bytes = value("gateway_websocket_bytes_total", direction="upstream")
    async with ws_connect(gateway.url, host=HOST) as socket:
        await greeting(socket)
        assert value("gateway_websocket_active") == 1
        view = httpx.get(gateway.admin_url + "/-/config", timeout=10).json()
        app = next(r for r in view["routes"] if r["name"] == "app")
        assert app["websocket"] == {"enabled": True, "active": 1}
        for _ in range(3):
            await socket.send("12345")
            await recv(socket)
    assert value("gateway_websocket_messages_total", direction="upstream") == before_up + 3
    assert value("gateway_websocket_bytes_total", direction="upstream") == before_bytes + 15
    assert value("gateway_websocket_messages_total", direction="downstream") >= 4


@pytest.fixture
def lonely_backend(launcher: Launcher) -> Iterator[ServiceProcess]:
    yield launcher.backends(1, prefix="doomed")[0]


async def test_a_backend_dying_mid_socket_closes_the_client_with_1011(
    launcher: Launcher, lonely_backend: ServiceProcess
) -> None:
    gateway = launcher.gateway({"routes": [gateway_route([lonely_backend])]})
    async with ws_connect(gateway.url, host=HOST) as socket:
        await greeting(socket)
        lonely_backend.kill()
        code, _ = await closed(socket)
        assert code == 1011
