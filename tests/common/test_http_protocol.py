"""The httptools protocol that writes a small response's head and body together.

A real uvicorn server on a real socket, in a thread; the protocol under test is
subclassed only to count the writes that reach the socket.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
import uvicorn
from common.edge_servers import edge_server
from support.processes import free_port
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from gatehouse_common.edge_limits import EdgeLimits
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


# What the one-write path writes, byte for byte, is what uvicorn's own send writes;
# errors (a bad header, a body that does not fit its length) end the same way.
_CASES: dict[str, tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bool]]]] = {
    "/plain": ([(b"Content-Length", b"5"), (b"X-Kind", b"a, b")], [(b"hello", False)]),
    "/close": (
        [(b"content-length", b"2"), (b"connection", b"Keep-Alive, close")],
        [(b"ok", False)],
    ),
    "/split": ([(b"content-length", b"4")], [(b"ab", True), (b"cd", False)]),
    "/empty-end": ([(b"content-length", b"2")], [(b"ok", True), (b"", False)]),
    "/longer": ([(b"content-length", b"1")], [(b"ok", False)]),
    "/shorter": ([(b"content-length", b"3")], [(b"ok", False)]),
    "/bad-value": ([(b"content-length", b"2"), (b"x-bad", b"a\nb")], [(b"ok", False)]),
    "/bad-name": ([(b"content-length", b"2"), (b"x bad", b"a")], [(b"ok", False)]),
    "/chunked-first": (
        [(b"transfer-encoding", b"chunked"), (b"content-length", b"2")],
        [(b"ok", False)],
    ),
}


def _without_access_line(base: type[HttpToolsProtocol]) -> type:
    """``base`` without uvicorn's access line (on whenever the root logger has a
    handler, as under pytest), as the services run it: the one-write path then
    renders the head itself (with the line on, uvicorn's send does)."""

    class Quiet(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.access_log = False

    return Quiet


async def _case_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers, bodies = _CASES.get(scope["path"], ([(b"content-length", b"0")], [(b"", False)]))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for body, more in bodies:
        await send({"type": "http.response.body", "body": body, "more_body": more})


@pytest.fixture(scope="module")
def case_ports() -> Iterator[dict[str, int]]:
    """uvicorn's own protocol beside the two one-write ones, each on its own port."""
    bases = (HttpToolsProtocol, CoalescingHttpToolsProtocol, CoalescingEdgeHttpToolsProtocol)
    with ExitStack() as stack:
        yield {
            base.__name__: stack.enter_context(
                edge_server(_case_app, EdgeLimits(), _without_access_line(base))
            )
            for base in bases
        }


def _wire(port: int, request: bytes) -> bytes:
    """Everything the server writes for ``request`` and a pipelined /end, up to
    the end's answer or the close, the date header blanked."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request + b"GET /end HTTP/1.1\r\nhost: t\r\n\r\n")
        received = b""
        while not received.endswith(b"content-length: 0\r\n\r\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
    return re.sub(rb"date: [^\r]*", b"date: -", received)


@pytest.mark.parametrize("path", sorted(_CASES))
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_the_one_write_path_writes_what_uvicorn_writes(
    case_ports: dict[str, int], path: str, method: str, version: str
) -> None:
    request = f"{method} {path} HTTP/{version}\r\nhost: t\r\n\r\n".encode()
    wires = {name: _wire(port, request) for name, port in case_ports.items()}
    expected = wires.pop("HttpToolsProtocol")
    assert expected.startswith(b"HTTP/1.1 ") or expected == b""
    assert wires == dict.fromkeys(wires, expected)


def test_the_usual_answer_is_written_without_uvicorns_send(
    case_ports: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    uvicorn_send = RequestResponseCycle.send

    async def counted(self: RequestResponseCycle, message: Any) -> None:
        calls.append(message["type"])
        await uvicorn_send(self, message)

    monkeypatch.setattr(RequestResponseCycle, "send", counted)
    for name in ("CoalescingHttpToolsProtocol", "CoalescingEdgeHttpToolsProtocol"):
        answer = _wire(case_ports[name], b"GET /plain HTTP/1.1\r\nhost: t\r\n\r\n")
        assert answer.count(b"HTTP/1.1 200 OK") == 2
    assert calls == []
    _wire(case_ports["HttpToolsProtocol"], b"GET /plain HTTP/1.1\r\nhost: t\r\n\r\n")
    assert calls  # the reference does go through it
