"""Streams through the gateway: 100 MB each way with its memory watched, server-sent
events and dripping bodies arriving as the backend sends them, and a slow client
holding a fast backend back."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
from adversarial.backends import ScriptedBackend
from support.gateway import GatewayProcess, Launcher, gateway_route
from support.processes import ServiceProcess

from gatehouse_fake_backend.app import pattern_bytes

SIZE = 100 * 1024 * 1024
CHUNK = 1024 * 1024
# The target is 20 MB of growth (checked by make bench); the test
# allows more so a busy CI machine does not fail it, yet any whole-body
# buffering (100 MB) fails it.
MAX_GROWTH = 40 * 1024 * 1024


class PeakRSS:
    """Samples a process's resident memory in a thread and keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def growth(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak - self.baseline


@pytest.fixture(scope="module")
def gateway(module_launcher: Launcher, backend_pool: list[ServiceProcess]) -> GatewayProcess:
    backend = backend_pool[0]
    gateway = module_launcher.gateway({"routes": [gateway_route([backend])]})
    with gateway.client() as client:  # warm up: pools, imports, first allocations
        for _ in range(20):
            client.post("/warm", content=b"w" * 200_000).raise_for_status()
            client.get("/__backend/bytes/2000000").raise_for_status()
    return gateway


def _upload() -> Iterator[bytes]:
    block = bytes(range(256)) * (CHUNK // 256)
    for _ in range(SIZE // CHUNK):
        yield block


@pytest.mark.slow
def test_100mb_upload_streams_with_flat_memory(gateway: GatewayProcess) -> None:
    expected = hashlib.sha256()
    for block in _upload():
        expected.update(block)
    rss = PeakRSS(gateway.pid)
    with gateway.client(timeout=120) as client:
        response = client.post("/upload", content=_upload())
    growth = rss.growth()
    assert response.status_code == 200, response.text
    assert response.json()["body"] == {"size": SIZE, "sha256": expected.hexdigest()}
    assert growth < MAX_GROWTH, f"RSS grew by {growth / 2**20:.1f} MB"


@pytest.mark.slow
def test_100mb_download_streams_with_flat_memory(gateway: GatewayProcess) -> None:
    expected = hashlib.sha256()
    unit = pattern_bytes(CHUNK)
    for _ in range(SIZE // CHUNK):
        expected.update(unit)
    rss = PeakRSS(gateway.pid)
    digest = hashlib.sha256()
    size = 0
    with (
        gateway.client(timeout=120) as client,
        client.stream("GET", f"/__backend/bytes/{SIZE}") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-length"] == str(SIZE)
        for chunk in response.iter_raw():
            size += len(chunk)
            digest.update(chunk)
    growth = rss.growth()
    assert size == SIZE and digest.hexdigest() == expected.hexdigest()
    assert growth < MAX_GROWTH, f"RSS grew by {growth / 2**20:.1f} MB"


@pytest.fixture
def scripted(
    launcher: Launcher,
) -> Iterator[Callable[[Callable[[socket.socket], None]], GatewayProcess]]:
    """A gateway in front of a raw-socket backend running ``script`` on each connection
    once its request head is in (:class:`adversarial.backends.ScriptedBackend`)."""
    started: list[ScriptedBackend] = []

    def start(script: Callable[[socket.socket], None]) -> GatewayProcess:
        backend = ScriptedBackend(lambda conn, _head: script(conn))
        started.append(backend)
        route = gateway_route([backend.url], retries={"attempts": 0})
        return launcher.gateway({"routes": [route]})

    yield start
    for backend in started:
        backend.close()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def test_server_sent_events_reach_the_client_one_by_one(scripted: Any) -> None:
    """The client has the first event before the backend sends the last one."""
    first_seen = threading.Event()
    seen_before_last: list[bool] = []

    def sse(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
            + _chunk(b"id: 1\ndata: first\n\n")
        )
        seen_before_last.append(first_seen.wait(10))
        conn.sendall(_chunk(b"id: 2\ndata: last\n\n") + b"0\r\n\r\n")

    gateway = scripted(sse)
    events: list[str] = []
    with gateway.client() as client, client.stream("GET", "/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
                first_seen.set()
    assert events == ["first", "last"]
    assert seen_before_last == [True]


def test_a_client_leaving_an_endless_stream_frees_its_backend(scripted: Any) -> None:
    """The server drops what the proxy sends after the client left; the proxy
    must notice the disconnect itself, or an endless event stream would hold
    its backend connection for ever."""
    backend_freed = threading.Event()

    def endless(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        try:
            for number in range(1000):  # 50 s of events at most
                conn.sendall(_chunk(b"data: %d\n\n" % number))
                time.sleep(0.05)
        except OSError:
            backend_freed.set()  # the gateway closed the connection

    gateway = scripted(endless)
    with gateway.client() as client, client.stream("GET", "/events") as response:
        first = next(response.iter_lines())
    assert first == "data: 0"
    assert backend_freed.wait(10), "the backend still streams to a client that left"


def test_a_small_dripping_body_does_not_hold_its_head_back(scripted: Any) -> None:
    """Content-Length: 10, the bytes one at a time: the head and the first byte
    reach the client before the backend sends the rest (the proxy used to read
    a body this small whole before answering)."""
    head_seen = threading.Event()
    byte_seen = threading.Event()
    order: list[bool] = []

    def drip(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n")
        order.append(head_seen.wait(10))
        conn.sendall(b"0")
        order.append(byte_seen.wait(10))
        conn.sendall(b"123456789")

    gateway = scripted(drip)
    with gateway.client() as client, client.stream("GET", "/drip") as response:
        assert response.status_code == 200
        head_seen.set()
        body = b""
        for chunk in response.iter_raw():
            body += chunk
            byte_seen.set()
    assert body == b"0123456789"
    assert order == [True, True]


def test_a_slow_client_holds_the_backend_back_instead_of_growing_memory(scripted: Any) -> None:
    """A backend streams as fast as it can, the client reads a little and stops:
    what the backend got rid of minus what the client took stays within the
    sockets' buffers, and the gateway's memory stays flat."""
    sent = [0]
    total = 1 << 30
    block = bytes(range(256)) * 256

    def firehose(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % total)
        while sent[0] < total:
            conn.sendall(block)
            sent[0] += len(block)

    gateway = scripted(firehose)
    rss = PeakRSS(gateway.pid)
    received = 0
    with gateway.client() as client, client.stream("GET", "/big") as response:
        assert response.status_code == 200
        reader = response.iter_raw(64 * 1024)
        while received < 4 * 1024 * 1024:  # slowly: 64 KiB every 5 ms
            received += len(next(reader))
            time.sleep(0.005)
        # the client stops reading: wait until the backend can send no more
        last, deadline = -1, time.monotonic() + 15
        while sent[0] != last and time.monotonic() < deadline:
            last = sent[0]
            time.sleep(0.5)
        ahead = sent[0] - received
    growth = rss.growth()
    assert sent[0] < total, "the backend was never held back"
    # kernel buffers on the two connections (autotuned, up to tens of MB on
    # loopback) plus the gateway's own 256 KiB: far below the 1 GiB on offer
    assert ahead < 96 * 1024 * 1024, f"{ahead / 2**20:.0f} MiB in flight"
    assert growth < MAX_GROWTH, f"RSS grew by {growth / 2**20:.1f} MB"
