"""The httptools protocol that writes a small response's head and body together.

A real uvicorn server on a real socket, in a thread; the protocol under test is
subclassed only to count the writes that reach the socket.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from support.processes import free_port

from gatehouse_common.edge_protocol import CoalescingEdgeHttpToolsProtocol
from gatehouse_common.http_protocol import SMALL_BODY, CoalescingHttpToolsProtocol

RELEASE_STREAM = threading.Event()


class _CountingTransport:
    """The real transport, with each write recorded on its way through."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


WRITES: list[bytes] = []


def _counting(base: type[CoalescingHttpToolsProtocol | CoalescingEdgeHttpToolsProtocol]) -> type:
    class CountingProtocol(base):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            counted = _CountingTransport(transport, WRITES)  # type: ignore[arg-type]
            super().connection_made(counted)

    return CountingProtocol


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/small":
        body = b"hello"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"5"), (b"x-kind", b"small")],
            }
        )
        await send({"type": "http.response.body", "body": body})
    elif path == "/stream":  # no length: chunked, its head must not wait for the body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.get_running_loop().run_in_executor(None, RELEASE_STREAM.wait, 10)
        await send({"type": "http.response.body", "body": b"late"})
    elif path == "/large":
        size = SMALL_BODY + 1
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(size).encode())],
            }
        )
        await send({"type": "http.response.body", "body": b"x" * size})
    else:
        await send(
            {"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]}
        )
        await send({"type": "http.response.body", "body": b""})


# the one-write cycle alone, and inside the edge protocol the services run (serve(fast=True))
@pytest.fixture(
    scope="module", params=[CoalescingHttpToolsProtocol, CoalescingEdgeHttpToolsProtocol]
)
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=_counting(request.param),
        loop="uvloop",
        log_config=None,
        lifespan="off",
        ws="none",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    RELEASE_STREAM.set()
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    WRITES.clear()
    RELEASE_STREAM.clear()


def test_a_small_response_is_one_write_with_head_and_body(server_url: str) -> None:
    with httpx.Client(base_url=server_url) as client:
        answers = [client.get("/small") for _ in range(3)]  # one kept-alive connection
    assert [(a.status_code, a.text, a.headers["x-kind"]) for a in answers] == [
        (200, "hello", "small")
    ] * 3
    assert len(WRITES) == 3
    assert all(
        w.startswith(b"HTTP/1.1 200 OK\r\n") and w.endswith(b"\r\n\r\nhello") for w in WRITES
    )


def test_an_empty_body_still_sends_its_head(server_url: str) -> None:
    response = httpx.get(server_url + "/missing", timeout=5)
    assert response.status_code == 404
    assert len(WRITES) == 1


def test_a_head_request_gets_its_head_and_the_connection_stays_usable(server_url: str) -> None:
    """uvicorn writes no body for HEAD: the held head must not be lost with it."""
    with httpx.Client(base_url=server_url, timeout=5) as client:
        head = client.head("/small")
        after = client.get("/small")
    assert head.status_code == 200 and head.headers["content-length"] == "5"
    assert after.text == "hello"


def test_a_streamed_response_sends_its_head_before_the_body_exists(server_url: str) -> None:
    port = int(server_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /stream HTTP/1.1\r\nhost: test\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(65536)
            assert chunk, "the server closed before sending a head"
            received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK")
        assert b"late" not in received  # the body is still held back by the app
        RELEASE_STREAM.set()
        while b"0\r\n\r\n" not in received:
            received += conn.recv(65536)
    assert b"late" in received


def test_a_large_body_is_not_held_back_for(server_url: str) -> None:
    response = httpx.get(server_url + "/large", timeout=5)
    assert len(response.content) == SMALL_BODY + 1
    assert WRITES[0].endswith(b"\r\n\r\n")  # the head went out alone


def test_http_1_0_closes_after_a_complete_answer(server_url: str) -> None:
    port = int(server_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /small HTTP/1.0\r\n\r\n")
        received = b""
        while chunk := conn.recv(65536):  # ends when the server closes
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK") and received.endswith(b"\r\n\r\nhello")
    assert b"connection: close" in received.lower()
