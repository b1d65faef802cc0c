"""The edge protocol over real sockets: hostile heads, stalls, early answers, trailers.

A uvicorn server with :class:`EdgeHttpToolsProtocol` runs in a thread of the
test process with small limits; the tests talk raw bytes to it, as an attacker
or a careless client would. Nothing here asserts how fast anything is: a limit
is proven by what the server answers and by the connection ending, within
timeouts generous enough for a loaded machine.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from common.edge_servers import closed_by_server, edge_server, read_answer, read_answers
from prometheus_client import REGISTRY

from gatehouse_common.edge_limits import EdgeLimits

LIMITS = EdgeLimits(
    max_request_line_bytes=1024,
    max_header_bytes=4096,
    max_header_count=20,
    header_timeout=1.0,
    body_idle_timeout=1.0,
    keepalive_timeout=1.0,
    max_connections=1000,
    linger_bytes=64 * 1024 * 1024,
    linger_timeout=2.0,
)
RECEIVED: list[str] = []  # the message types /read's receive() returned


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/early":  # answers before reading a byte of the body
        await _answer(send, 413, b'{"error":"payload_too_large"}')
        return
    if path == "/read":
        while True:
            message = await receive()
            RECEIVED.append(message["type"])
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        if RECEIVED[-1] == "http.disconnect":
            return
    else:  # drain whatever body there is
        while (await receive()).get("more_body"):
            pass
    headers = [[name.decode(), value.decode()] for name, value in scope["headers"]]
    await _answer(send, 200, json.dumps(headers).encode())


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with edge_server(app, LIMITS) as bound:
        yield bound


@pytest.fixture
def conn(port: int) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        yield sock


def _assert_refused(conn: socket.socket, status: int, error: str) -> None:
    answer = read_answer(conn)
    assert answer.status == status
    assert answer.headers["connection"] == "close"
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"] == error and answer.json()["detail"]
    assert closed_by_server(conn)


def test_trailers_of_a_chunked_body_never_join_the_request_headers(conn: socket.socket) -> None:
    conn.sendall(
        b"POST /headers HTTP/1.1\r\nHost: public\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\nHost: other\r\nX-Smuggled: 1\r\n\r\n"
    )
    answer = read_answer(conn)
    assert answer.status == 200
    headers = answer.json()
    assert ["host", "public"] in headers
    assert all(name not in ("x-smuggled",) for name, _ in headers)
    assert [value for name, value in headers if name == "host"] == ["public"]


def test_a_request_line_over_the_limit_is_answered_414(conn: socket.socket) -> None:
    conn.sendall(b"GET /" + b"a" * LIMITS.max_request_line_bytes + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    _assert_refused(conn, 414, "request_line_too_long")


def test_a_head_over_the_limit_is_answered_431_even_when_it_comes_in_one_read(
    conn: socket.socket,
) -> None:
    lines = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"v" * 500) for i in range(9))  # ~4.6 KB
    conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
    _assert_refused(conn, 431, "headers_too_large")


def test_a_head_under_the_limit_is_served(conn: socket.socket) -> None:
    lines = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"v" * 400) for i in range(9))  # ~3.8 KB
    conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
    assert read_answer(conn).status == 200


def test_more_header_lines_than_allowed_are_answered_431(conn: socket.socket) -> None:
    lines = b"".join(b"X-%d: 1\r\n" % i for i in range(LIMITS.max_header_count))
    conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
    _assert_refused(conn, 431, "too_many_headers")


def test_a_header_line_that_never_ends_is_answered_431_while_it_is_sent(
    conn: socket.socket,
) -> None:
    """httptools buffers a header value until its line ends: only counting the bytes
    read while the head is incomplete stops a header that is 8 MB long, or endless."""
    conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Bomb: ")
    chunk, sent, answered = b"a" * 16384, 0, False
    while sent < 8 * 1024 * 1024:
        try:
            conn.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
        if select.select([conn], [], [], 0)[0]:
            answered = True
            break
    assert answered, f"no answer after {sent} bytes of one header line"
    _assert_refused(conn, 431, "headers_too_large")


def test_a_head_that_comes_too_slowly_is_answered_408(conn: socket.socket) -> None:
    conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    for i in range(50):  # a header line every 0.2 s keeps the connection busy, never done
        if select.select([conn], [], [], 0.2)[0]:
            break
        conn.sendall(b"X-Drip-%d: 1\r\n" % i)
    _assert_refused(conn, 408, "request_timeout")


def test_a_connection_that_never_sends_is_closed_without_an_answer(conn: socket.socket) -> None:
    conn.settimeout(10)
    assert conn.recv(1024) == b""


def test_an_idle_kept_alive_connection_is_closed_without_an_answer(conn: socket.socket) -> None:
    conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_answer(conn).status == 200
    conn.settimeout(10)
    assert conn.recv(1024) == b""


def test_a_stalled_body_is_answered_408_and_the_app_sees_a_disconnect(
    conn: socket.socket,
) -> None:
    RECEIVED.clear()
    conn.sendall(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
    _assert_refused(conn, 408, "body_timeout")
    deadline = time.monotonic() + 5
    while "http.disconnect" not in RECEIVED and time.monotonic() < deadline:
        time.sleep(0.05)
    assert RECEIVED == ["http.request", "http.disconnect"]


def test_a_slow_but_steady_body_is_read_whole(conn: socket.socket) -> None:
    """Each piece comes within body_idle_timeout: the whole upload may take longer."""
    RECEIVED.clear()
    conn.sendall(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
    for piece in (b"ab", b"cd", b"ef"):
        time.sleep(0.6)
        conn.sendall(piece)
    assert read_answer(conn).status == 200
    assert "http.disconnect" not in RECEIVED


def test_keep_alive_and_pipelining_still_serve_every_request(conn: socket.socket) -> None:
    conn.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
    assert [answer.status for answer in read_answers(conn, 3)] == [200] * 3
    conn.sendall(b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    assert read_answer(conn).status == 200


def test_a_bad_pipelined_head_is_refused_after_the_answers_before_it(
    conn: socket.socket,
) -> None:
    # the first request may already have reached a backend: its answer is owed
    conn.sendall(
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nhello\r\n\r\n"
    )
    assert [answer.status for answer in read_answers(conn, 3)] == [200, 200, 400]
    assert closed_by_server(conn)


def test_an_upgrade_nobody_takes_is_plain_http_then_closed(conn: socket.socket) -> None:
    # answered as plain HTTP, then closed: the parser stops after an upgrade request
    conn.sendall(
        b"GET /a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    (answer,) = read_answers(conn, 1)
    assert answer.status == 200
    assert closed_by_server(conn)


def test_an_upgrade_nobody_takes_with_a_body_is_refused(conn: socket.socket) -> None:
    # httptools skips an upgrade request's body: the app would wait for it forever
    conn.sendall(
        b"PUT /read HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Content-Length: 5\r\n\r\nhello"
    )
    _assert_refused(conn, 400, "bad_request")


def test_bytes_that_are_not_http_are_answered_400_in_json(conn: socket.socket) -> None:
    conn.sendall(b"\x16\x03\x01\x02\x00 hello\r\n\r\n")
    _assert_refused(conn, 400, "bad_request")


def test_a_broken_chunked_body_is_answered_400_and_the_app_sees_a_disconnect(
    conn: socket.socket,
) -> None:
    RECEIVED.clear()
    conn.sendall(
        b"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
    )
    time.sleep(0.2)  # the app has the first chunk and waits for more
    conn.sendall(b"not a chunk size\r\n")
    _assert_refused(conn, 400, "bad_request")
    deadline = time.monotonic() + 5
    while "http.disconnect" not in RECEIVED and time.monotonic() < deadline:
        time.sleep(0.05)
    assert RECEIVED[-1] == "http.disconnect"


def test_an_early_answer_to_head_keeps_its_head(conn: socket.socket) -> None:
    """A HEAD answer's head is held until the cycle ends: the half-close waits for it."""
    conn.sendall(b"HEAD /early HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
    received = b""
    conn.settimeout(10)
    while chunk := conn.recv(65536):
        received += chunk
    assert received.startswith(b"HTTP/1.1 413 ") and received.endswith(b"\r\n\r\n")
    assert b"connection: close" in received.lower()


def test_a_client_that_sends_its_whole_body_first_reads_the_early_answer(port: int) -> None:
    """http.client sends the whole body before it reads: closing with the body unread
    resets the connection under it (Broken pipe) and it never sees the 413."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        client.request("POST", "/early", body=b"x" * 20_000_000, headers={"Connection": "close"})
        response = client.getresponse()
        assert response.status == 413
        assert response.getheader("connection") == "close"
        assert response.read() == b'{"error":"payload_too_large"}'
    finally:
        client.close()


def test_lingering_after_an_early_answer_stops_at_linger_bytes() -> None:
    limits = EdgeLimits(linger_bytes=64 * 1024, linger_timeout=120.0)
    with edge_server(app, limits) as port, socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        conn.settimeout(30)
        chunk, sent = b"x" * 65536, 0
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            while sent < 100_000_000:  # far more than socket buffers take in
                conn.sendall(chunk)
                sent += len(chunk)


def test_lingering_after_an_early_answer_stops_at_linger_timeout() -> None:
    limits = EdgeLimits(linger_timeout=0.5)
    with edge_server(app, limits) as port, socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
        assert read_answer(conn).status == 413
        assert closed_by_server(conn, timeout=10)


def _refused_count() -> float:
    return REGISTRY.get_sample_value("gatehouse_connections_refused_total") or 0.0


def test_connections_over_max_connections_are_closed_at_once_and_counted() -> None:
    limits = EdgeLimits(max_connections=2)
    with edge_server(app, limits) as port:
        before = _refused_count()
        held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        try:
            for conn in held:  # both are served: the server has seen them
                conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_answer(conn).status == 200
            with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
                extra.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert closed_by_server(extra)
            assert _refused_count() == before + 1
        finally:
            for conn in held:
                conn.close()
