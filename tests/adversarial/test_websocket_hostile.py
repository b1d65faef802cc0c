"""Hostile WebSocket clients and backends: the handshake is held to the HTTP edge rules,
messages to the size limit, and a reader that stops reading costs bounded memory.

The handshake is an HTTP request first, so everything the HTTP path refuses is
refused here too, before any upgrade and before a backend is contacted: two
Host or Authorization headers, an oversized or slow head, a body, a path whose
normal form belongs to a route with other rules.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from adversarial.raw import Reader, connect, exchange, read_response, request_bytes, rss_bytes
from support.gateway import HOST, GatewayProcess, Launcher, gateway_route
from support.processes import ServiceProcess
from support.websocket import closed, greeting, recv, refused_status, ws_connect

LIMIT = 64 * 1024
PRIVATE = "split.gatehouse.test"


def handshake(target: str, *extra: tuple[str, str], host: str = HOST, body: bytes = b"") -> bytes:
    headers = [
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
        *extra,
    ]
    return request_bytes("GET", target, headers, body)


@pytest.fixture(scope="module")
def backend(module_launcher: Launcher) -> ServiceProcess:
    return module_launcher.backends(1, prefix="ws-hostile")[0]


@pytest.fixture(scope="module")
def gateway(
    module_launcher: Launcher, backend: ServiceProcess, auth_section: dict[str, object]
) -> GatewayProcess:
    document = {
        "auth": auth_section,
        "routes": [
            gateway_route([backend]),
            gateway_route([backend], name="open", hosts=[PRIVATE], path_prefix=["/public"]),
            gateway_route([backend], name="closed", hosts=[PRIVATE], auth="required"),
        ],
    }
    env = {
        "GATEHOUSE_GATEWAY_WS_MAX_MESSAGE_BYTES": str(LIMIT),
        "GATEHOUSE_GATEWAY_HEADER_TIMEOUT": "1",
    }
    return module_launcher.gateway(document, env=env)


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        pytest.param([("Host", "other.example")], 400, id="two-hosts"),
        pytest.param(
            [("Authorization", "Bearer a"), ("Authorization", "Bearer b")],
            400,
            id="two-authorizations",
        ),
        pytest.param([("X-Filler", "a" * 70_000)], 431, id="oversized-head"),
        pytest.param([("Transfer-Encoding", "chunked")], 400, id="with-a-body"),
        pytest.param([], 400, id="a-fragment-in-the-target"),
    ],
)
def test_a_bad_handshake_head_is_refused_before_the_upgrade(
    gateway: GatewayProcess, extra: list[tuple[str, str]], status: int
) -> None:
    body = b"0\r\n\r\n" if any(k == "Transfer-Encoding" for k, _ in extra) else b""
    target = "/ws?a=b#c" if not extra else "/ws"
    response = exchange(gateway.url, handshake(target, *extra, body=body))
    assert response.status == status, response.describe()
    assert "Exception in ASGI application" not in gateway.log_text()


def test_a_slow_handshake_head_gets_408(gateway: GatewayProcess) -> None:
    with connect(gateway.url) as sock:
        sock.sendall(handshake("/ws")[:40])
        started = time.monotonic()
        response = read_response(Reader(sock, 10))
    assert response.status == 408, response.describe()
    assert time.monotonic() - started < 5


async def test_routing_and_auth_see_the_normalised_path(gateway: GatewayProcess) -> None:
    # /public/../ws is /ws: the route that requires a token, not the open one
    connecting = ws_connect(gateway.url, "/public/%2e%2e/ws", host=PRIVATE)
    assert await refused_status(connecting) == 401
    async with ws_connect(gateway.url, "/public/ws", host=PRIVATE) as socket:
        assert (await greeting(socket))["path"] == "/public/ws"


async def test_a_refused_handshake_logs_no_error(gateway: GatewayProcess) -> None:
    for _ in range(5):
        assert await refused_status(ws_connect(gateway.url, "/ws", host=PRIVATE)) == 401
    log = gateway.log_text()
    assert "without completing handshake" not in log
    assert "Exception in ASGI application" not in log


async def test_an_oversized_client_message_closes_with_1009(gateway: GatewayProcess) -> None:
    async with ws_connect(gateway.url, host=HOST) as socket:
        await greeting(socket)
        await socket.send(b"x" * LIMIT)
        assert len(await recv(socket)) == LIMIT
        await socket.send(b"x" * (LIMIT + 1))
        code, _ = await closed(socket)
        assert code == 1009


async def test_an_oversized_backend_message_closes_the_client_with_1009(
    gateway: GatewayProcess,
) -> None:
    async with ws_connect(gateway.url, host=HOST) as socket:
        await greeting(socket)
        await socket.send(f"big {LIMIT + 1}")
        code, _ = await closed(socket)
        assert code == 1009


@pytest.mark.slow
async def test_a_reader_that_stops_costs_the_gateway_bounded_memory(
    gateway: GatewayProcess,
) -> None:
    """The backend floods 64 MiB at a client that reads nothing for 3 s: the
    gateway holds a few messages, not the flood, and then all of it arrives."""
    count, size = 1024, LIMIT
    async with ws_connect(gateway.url, host=HOST, max_size=None) as socket:
        await greeting(socket)
        await asyncio.sleep(0.5)
        before = rss_bytes(gateway.pid)
        await socket.send(f"flood {count} {size}")
        # the client's own library stops reading its socket when its queue is full
        await asyncio.sleep(3)
        grown = rss_bytes(gateway.pid) - before
        assert grown < 24 * 1024 * 1024, f"gateway grew {grown} bytes for a stalled reader"
        for _ in range(count):
            assert len(await recv(socket, timeout=30)) == size


def test_a_client_that_never_answers_pings_is_closed_with_1011(launcher: Launcher) -> None:
    """A client that sent its handshake and then went silent (no pong) holds nothing for long."""
    backend = launcher.backends(1, prefix="ws-pings")[0]
    env = {"GATEHOUSE_GATEWAY_WS_PING_INTERVAL": "1", "GATEHOUSE_GATEWAY_WS_PING_TIMEOUT": "1"}
    gateway = launcher.gateway({"routes": [gateway_route([backend])]}, env=env)
    with connect(gateway.url) as sock:
        sock.sendall(handshake("/ws"))
        reader = Reader(sock, 10)
        head = reader.until(b"\r\n\r\n")
        assert head is not None and head.startswith(b"HTTP/1.1 101"), head
        started = time.monotonic()
        received = reader.rest()  # frames until the gateway closes the socket
    elapsed = time.monotonic() - started
    # a ping (0x89), then a close (0x88) carrying 1011 (0x03f3), then the end
    assert b"\x89" in received, received[:80]
    close_at = received.rfind(b"\x88")
    assert close_at >= 0 and received[close_at + 2 : close_at + 4] == b"\x03\xf3", received[-40:]
    assert elapsed < 6
