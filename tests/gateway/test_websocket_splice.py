"""The byte-level WebSocket relay (websocket/splice.py) over real socket pairs, and through
a real gateway: frames pass as sent, the gateway's own frames go between them, and an idle
socket costs a few KiB instead of two protocol stacks.

Each unit test wires a :class:`Splice` between two real transports (one end of a
socketpair each); the test plays the client and the backend on the other ends
with raw frames. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from adversarial.raw import rss_bytes
from support.gateway import HOST, Launcher, gateway_route, metric_value
from support.websocket import greeting, recv, ws_connect

from gatehouse_gateway.websocket.metrics import RouteSocketMetrics
from gatehouse_gateway.websocket.splice import Splice

WAIT = 10.0
LIMIT = 1000


def raw_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool) -> bytes:
    """A frame as a client (masked) or a server (not) writes it."""
    length = len(payload)
    if length < 126:
        head = bytes((opcode | (0x80 if fin else 0), length | (0x80 if mask else 0)))
    else:
        head = bytes((opcode | (0x80 if fin else 0), 126 | (0x80 if mask else 0)))
        head += struct.pack("!H", length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def close_code(frame_bytes: bytes) -> tuple[int, bytes]:
    """Code and reason of an unmasked close frame at the start of ``frame_bytes``."""
    assert frame_bytes[0] == 0x88, frame_bytes[:20]
    length = frame_bytes[1] & 0x7F
    return struct.unpack("!H", frame_bytes[2:4])[0], frame_bytes[4 : 2 + length]


def unmask_close(frame_bytes: bytes) -> tuple[int, bytes]:
    """Code and reason of a masked close frame (as the backend receives it)."""
    assert frame_bytes[0] == 0x88 and frame_bytes[1] & 0x80, frame_bytes[:20]
    length = frame_bytes[1] & 0x7F
    key = frame_bytes[2:6]
    payload = bytes(b ^ key[i & 3] for i, b in enumerate(frame_bytes[6 : 6 + length]))
    return struct.unpack("!H", payload[:2])[0], payload[2:]


class Peer:
    """The far end of one socketpair: what a client or a backend sends and receives."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.loop = asyncio.get_running_loop()

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)

    async def read(self, count: int) -> bytes:
        """Exactly ``count`` bytes, or fewer if the socket ends first."""
        data = b""
        async with asyncio.timeout(WAIT):
            while len(data) < count:
                chunk = await self.loop.sock_recv(self.sock, count - len(data))
                if not chunk:
                    break
                data += chunk
        return data

    async def read_to_end(self) -> bytes:
        data = b""
        async with asyncio.timeout(WAIT):
            while chunk := await self.loop.sock_recv(self.sock, 65536):
                data += chunk
        return data


@dataclass
class Wired:
    splice: Splice
    client: Peer
    backend: Peer
    metrics: RouteSocketMetrics
    ended: list[str] = field(default_factory=list)
    connections: set[object] = field(default_factory=set)


async def _transport(sock: socket.socket) -> asyncio.Transport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, sock)
    return transport


_routes = iter(range(1_000_000))


async def wire(**options: float | None) -> Wired:
    client_peer, client_own = socket.socketpair()
    backend_peer, backend_own = socket.socketpair()
    metrics = RouteSocketMetrics(f"splice-test-{next(_routes)}")
    ended: list[str] = []
    connections: set[object] = set()
    splice = Splice(
        await _transport(client_own),
        await _transport(backend_own),
        metrics=metrics,
        max_message_bytes=LIMIT,
        idle_timeout=float(options.get("idle_timeout") or 60.0),
        ping_interval=options.get("ping_interval"),
        ping_timeout=options.get("ping_timeout"),
        connections=connections,
        shutdown_grace=0.0,
        on_end=ended.append,
    )
    splice.start()
    return Wired(splice, Peer(client_peer), Peer(backend_peer), metrics, ended, connections)


@pytest.fixture
async def wired() -> AsyncIterator[Wired]:
    pair = await wire()
    yield pair
    pair.client.sock.close()
    pair.backend.sock.close()


async def _until(condition: object, what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_frames_pass_unchanged_even_one_byte_at_a_time(wired: Wired) -> None:
    """A fragmented message with a ping between its fragments, split at every byte."""
    up = (
        raw_frame(0x1, b"hel", fin=False, mask=True)
        + raw_frame(0x9, b"client ping", mask=True)
        + raw_frame(0x0, b"lo ", fin=False, mask=True)
        + raw_frame(0x0, b"x" * 300, mask=True)  # a 16-bit length
    )
    for index in range(len(up)):
        await wired.client.send(up[index : index + 1])
    assert await wired.backend.read(len(up)) == up
    down = raw_frame(0x2, b"\x00\xff" * 100, mask=False) + raw_frame(0xA, b"pong", mask=False)
    await wired.backend.send(down)
    assert await wired.client.read(len(down)) == down
    assert wired.metrics.messages_up._value.get() == 1
    assert wired.metrics.bytes_up._value.get() == 306
    assert wired.metrics.messages_down._value.get() == 1
    assert wired.splice in wired.connections


async def test_a_close_passes_both_ways_then_both_sockets_end(wired: Wired) -> None:
    close = raw_frame(0x8, struct.pack("!H", 4001) + b"client says bye", mask=True)
    await wired.client.send(close)
    assert await wired.backend.read(len(close)) == close  # as sent, masked
    answer = raw_frame(0x8, struct.pack("!H", 4001), mask=False)
    await wired.backend.send(answer)
    assert await wired.client.read_to_end() == answer
    assert await wired.backend.read_to_end() == b""
    await _until(lambda: wired.ended, "the splice ends")
    assert wired.ended == ["client"] and not wired.connections


async def test_a_message_over_the_limit_closes_both_with_1009_before_relaying_it(
    wired: Wired,
) -> None:
    first = raw_frame(0x2, b"a" * 600, fin=False, mask=True)
    await wired.client.send(first)
    assert await wired.backend.read(len(first)) == first
    await wired.client.send(raw_frame(0x0, b"b" * 401, mask=True))  # 1001 bytes in all
    assert close_code(await wired.client.read_to_end()) == (1009, b"message too big")
    assert unmask_close(await wired.backend.read_to_end()) == (1009, b"message too big")


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(raw_frame(0x1, b"not masked", mask=False), id="unmasked"),
        pytest.param(raw_frame(0x0, b"nothing to continue", mask=True), id="stray-continuation"),
        pytest.param(raw_frame(0x3, b"reserved", mask=True), id="reserved-opcode"),
        pytest.param(raw_frame(0x9, b"x", fin=False, mask=True), id="fragmented-ping"),
        pytest.param(b"\xc1\x81abcdx", id="rsv-bit"),
    ],
)
async def test_a_bad_frame_closes_both_with_1002_and_is_not_relayed(
    wired: Wired, bad: bytes
) -> None:
    await wired.client.send(bad)
    assert close_code(await wired.client.read_to_end())[0] == 1002
    assert unmask_close(await wired.backend.read_to_end())[0] == 1002


async def test_a_vanished_backend_closes_the_client_with_1011(wired: Wired) -> None:
    wired.backend.sock.close()
    assert close_code(await wired.client.read_to_end()) == (1011, b"backend connection lost")
    await _until(lambda: wired.ended, "the splice ends")
    assert wired.ended == ["backend"]


async def test_a_vanished_client_closes_the_backend_with_1001(wired: Wired) -> None:
    wired.client.sock.close()
    assert unmask_close(await wired.backend.read_to_end()) == (1001, b"client went away")


async def test_stop_closes_both_with_its_code_and_waits_for_their_answers(wired: Wired) -> None:
    wired.splice.stop("backend drained")
    assert close_code(await wired.client.read(19)) == (1001, b"backend drained")
    assert unmask_close(await wired.backend.read(23)) == (1001, b"backend drained")
    await wired.client.send(raw_frame(0x8, struct.pack("!H", 1001), mask=True))
    await wired.backend.send(raw_frame(0x8, struct.pack("!H", 1001), mask=False))
    assert await wired.client.read_to_end() == b""  # the answers end there, not relayed
    assert await wired.backend.read_to_end() == b""
    await _until(lambda: wired.ended, "the splice ends")
    assert wired.ended == ["gateway"]


async def test_the_gateway_pings_both_sides_absorbs_their_pongs_and_ends_a_silent_one() -> None:
    pair = await wire(ping_interval=0.2, ping_timeout=1.0)
    try:
        ping_to_client = await pair.client.read(6)
        assert ping_to_client[:2] == b"\x89\x04"  # unmasked, 4 random bytes
        ping_to_backend = await pair.backend.read(10)
        assert ping_to_backend[:2] == b"\x89\x84"  # masked, as a client's
        key, masked = ping_to_backend[2:6], ping_to_backend[6:10]
        payload = bytes(b ^ key[i & 3] for i, b in enumerate(masked))
        # the backend answers its ping; the pong stops here
        await pair.backend.send(raw_frame(0xA, payload, mask=False))
        # the client never answers: 1011 to both, after the timeout
        assert close_code(await pair.client.read_to_end()) == (1011, b"keepalive ping timeout")
        # next on the backend's socket: the close, no pong relayed, no second ping
        assert unmask_close(await pair.backend.read_to_end()) == (1011, b"keepalive ping timeout")
    finally:
        pair.client.sock.close()
        pair.backend.sock.close()


async def test_an_idle_splice_closes_with_1001() -> None:
    pair = await wire(idle_timeout=0.3)
    try:
        assert close_code(await pair.client.read(16)) == (1001, b"idle timeout")
    finally:
        pair.client.sock.close()
        pair.backend.sock.close()


# Through a real gateway ----------------------------------------------------------------


@pytest.mark.slow
async def test_idle_sockets_cost_a_few_kib_each(launcher: Launcher) -> None:
    """300 idle sockets through one worker: spliced, each costs far less than the
    ~36 KiB two protocol stacks and a relay task cost (loadtest/README.md)."""
    backend = launcher.backends(1, prefix="splice")[0]
    gateway = launcher.gateway({"routes": [gateway_route([backend])]})
    count = 300
    async with ws_connect(gateway.url, host=HOST) as warm:  # first-use imports and caches
        await greeting(warm)
    await asyncio.sleep(0.5)
    before = rss_bytes(gateway.pid)
    sockets = []
    try:
        for _ in range(count):
            socket_ = await ws_connect(gateway.url, host=HOST, ping_interval=None)
            await greeting(socket_)
            sockets.append(socket_)
        grown = rss_bytes(gateway.pid) - before
        await sockets[-1].send("still relayed")
        assert await recv(sockets[-1]) == "still relayed"
        active = metric_value(gateway.metrics(), "gateway_websocket_active", route="app")
    finally:
        await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    assert active == count
    assert grown / count < 16 * 1024, f"{grown / count / 1024:.1f} KiB per idle socket"


async def test_per_message_deflate_sockets_are_relayed_by_the_bridge(launcher: Launcher) -> None:
    """A client that negotiated compression with the gateway cannot be spliced (its
    frames are compressed on its hop only): the message relay takes it, and a socket
    without compression on the same gateway is still spliced."""
    backend = launcher.backends(1, prefix="deflate")[0]
    gateway = launcher.gateway(
        {"routes": [gateway_route([backend])]},
        env={"GATEHOUSE_GATEWAY_WS_PER_MESSAGE_DEFLATE": "true"},
    )
    async with ws_connect(gateway.url, host=HOST, compression="deflate") as socket_:
        await greeting(socket_)
        assert socket_.protocol.extensions, "the gateway offered no per-message-deflate"
        await socket_.send("x" * 5000)
        assert await recv(socket_) == "x" * 5000
    async with ws_connect(gateway.url, host=HOST, compression=None) as socket_:
        await greeting(socket_)
        await socket_.send("plain")
        assert await recv(socket_) == "plain"
    assert "Exception" not in gateway.log_text()
