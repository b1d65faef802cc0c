"""The edge protocol passes on what uvicorn got wrong for a proxy, over real sockets.

- a valid method llhttp has no entry for (``VERSION-CONTROL``) reaches the app,
  instead of a 400 from the parser; a method that is no token still gets 400;
- an HTTP/1.0 client asking for a body of unknown length gets it close-delimited,
  never ``Transfer-Encoding: chunked`` (which HTTP/1.0 cannot read).

Both protocols are checked: the plain edge protocol and the coalescing one
the gateway runs.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from common.edge_servers import edge_server

from gatehouse_common.edge_limits import EdgeLimits
from gatehouse_common.edge_protocol import (
    CoalescingEdgeHttpToolsProtocol,
    EdgeHttpToolsProtocol,
)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echoes the method and the body; ``/stream`` answers in three parts without a length."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    answer = scope["method"].encode() + b" " + body
    headers = [(b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module", params=[EdgeHttpToolsProtocol, CoalescingEdgeHttpToolsProtocol])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    with edge_server(app, EdgeLimits(), protocol=request.param) as bound:
        yield bound


def _talk(port: int, *pieces: bytes) -> bytes:
    """Send ``pieces`` (a short pause between them); everything read until the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(0.02)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


@pytest.mark.parametrize(
    "method",
    [
        "VERSION-CONTROL",
        "BASELINE-CONTROL",
        "MKWORKSPACE",
        "X.Custom_method~1",
        "get",
        "PLAY",  # llhttp 9 refuses its RTSP methods on an HTTP request
        "SETUP",
        "QUERY",
        "PROPFIND",
    ],
)
def test_a_token_method_reaches_the_app(port: int, method: str) -> None:
    answer = _talk(
        port,
        f"{method} /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
        "Connection: close\r\n\r\nbody".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert answer.endswith(method.encode() + b" body"), answer


def test_a_method_in_pieces_and_on_a_kept_alive_connection(port: int) -> None:
    first = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
    second = b"\r\nVERSION-CONTROL /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    answer = _talk(port, first, second[:6], second[6:12], second[12:])
    assert answer.count(b"HTTP/1.1 200 ") == 2, answer
    assert answer.endswith(b"VERSION-CONTROL "), answer


def test_extension_methods_pipelined_behind_other_requests(port: int) -> None:
    """Unknown methods after the end of other requests in the same read, bodies included."""
    requests = [
        b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
        b"VERSION-CONTROL /x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"MKWORKSPACE /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nhi\r\n0\r\n\r\n",
        b"BASELINE-CONTROL /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    ]
    answer = _talk(port, b"".join(requests))
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in answer.split(b"HTTP/1.1 200 OK")[1:]]
    assert bodies == [
        b"POST abc",
        b"VERSION-CONTROL ",
        b"GET ",
        b"MKWORKSPACE hi",
        b"BASELINE-CONTROL ",
    ], answer


def test_a_bad_method_pipelined_behind_a_request_is_still_refused(port: int) -> None:
    answer = _talk(
        port,
        b"GET /x HTTP/1.1\r\nHost: h\r\n\r\nVER(ION /x HTTP/1.1\r\nHost: h\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 400 " in answer, answer


@pytest.mark.parametrize(
    "line",
    [b"VER(ION /x HTTP/1.1", b"VERSION\x01CONTROL /x HTTP/1.1", b"M" * 80 + b" /x HTTP/1.1"],
)
def test_a_method_that_is_no_token_is_refused(port: int, line: bytes) -> None:
    answer = _talk(port, line + b"\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 "), answer


def test_http10_stream_is_close_delimited(port: int) -> None:
    answer = _talk(port, b"GET /stream HTTP/1.0\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower(), head
    assert b"connection: close" in head.lower(), head
    assert body == b"one,two,three", body


def test_http10_head_of_a_stream_has_no_body(port: int) -> None:
    answer = _talk(port, b"HEAD /stream HTTP/1.0\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower() and body == b"", answer


def test_http11_stream_is_still_chunked(port: int) -> None:
    answer = _talk(port, b"GET /stream HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert b"transfer-encoding: chunked" in answer.lower(), answer
    assert answer.endswith(b"5\r\nthree\r\n0\r\n\r\n"), answer
