"""The upstream client against backends that answer in bad faith: impossible
statuses, a protocol switch nobody asked for, endless or trickling heads, and
bytes a pooled connection never asked for. Each must end as an error the
proxy can turn into a complete 502/504, quickly and in bounded memory."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator

import pytest
from gateway.test_upstream_h1 import Handler, hang_up_after_client, raw_server, read_head, stop

from gatehouse_gateway.upstream.h1 import UpstreamBroken, UpstreamClient, UpstreamTimeout

TIMEOUTS = {"connect_timeout": 5.0, "read_timeout": 10.0}


def answering(answer: bytes) -> Handler:
    """A handler that answers the first request with ``answer`` and keeps the connection."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(answer)
        await writer.drain()
        await hang_up_after_client(reader, writer)

    return handler


@pytest.mark.parametrize("status", [b"999", b"600", b"099", b"000"])
async def test_a_status_outside_100_to_599_is_a_broken_answer(status: bytes) -> None:
    server, url = await raw_server(
        answering(b"HTTP/1.1 " + status + b" Odd\r\nContent-Length: 2\r\n\r\nok")
    )
    client = UpstreamClient()
    try:
        with pytest.raises(UpstreamBroken, match="status"):
            await client.request(url, "GET", b"/", [], None, **TIMEOUTS)
        assert client.connections == 0  # closed, never pooled
    finally:
        await stop(client, server)


@pytest.mark.parametrize(
    "headers",
    [b"Upgrade: websocket\r\nConnection: upgrade\r\n", b""],
    ids=["with-upgrade-headers", "bare"],
)
async def test_an_unsolicited_101_is_a_broken_answer(headers: bytes) -> None:
    """A request without Upgrade cannot be switched to another protocol; relaying
    the 101 would hand the client a connection in a state nobody agreed on."""
    server, url = await raw_server(
        answering(b"HTTP/1.1 101 Switching Protocols\r\n" + headers + b"\r\nraw tunnel bytes")
    )
    client = UpstreamClient()
    try:
        with pytest.raises(UpstreamBroken, match="101"):
            await client.request(url, "GET", b"/", [], None, **TIMEOUTS)
        assert client.connections == 0
    finally:
        await stop(client, server)


async def test_a_requested_upgrade_hands_over_the_raw_stream() -> None:
    """The hook for WebSocket: with ``upgrade=True`` the 101 comes back, and what the
    backend sends after its head is the new protocol's bytes, never parsed as HTTP."""

    async def switch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: upgrade\r\n\r\nfirst frame"
        )
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 200 not a response\r\n\r\n")
        await writer.drain()
        writer.close()

    server, url = await raw_server(switch)
    client = UpstreamClient()
    try:
        response = await client.request(
            url,
            "GET",
            b"/ws",
            [(b"upgrade", b"websocket"), (b"connection", b"upgrade")],
            None,
            upgrade=True,
            **TIMEOUTS,
        )
        assert response.status == 101
        assert await response.read() == b"first frameHTTP/1.1 200 not a response\r\n\r\n"
        response.release()
        assert client.connections == 0  # a switched connection never goes back to the pool
    finally:
        await stop(client, server)


async def test_an_endless_header_is_refused_early_in_bounded_memory() -> None:
    """One header value that never ends: the client must stop reading it after
    ``max_response_head_bytes``, not buffer it until the backend tires."""
    sent = 0
    finished = False

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent, finished
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nx-endless: ")
        block = b"a" * 65536
        for _ in range(256):  # 16 MiB at most; the client should hang up long before
            writer.write(block)
            await writer.drain()  # raises once the client has closed the connection
            sent += len(block)
        finished = True

    server, url = await raw_server(endless)
    client = UpstreamClient()
    tracemalloc.start()
    try:
        with pytest.raises(UpstreamBroken, match="head"):
            await client.request(url, "GET", b"/", [], None, **TIMEOUTS)
        peak = tracemalloc.get_traced_memory()[1]
        assert client.connections == 0
    finally:
        tracemalloc.stop()
        await stop(client, server)
    assert not finished  # the client hung up; it did not read all 16 MiB
    assert peak < 4 * 1024 * 1024


@pytest.mark.parametrize(
    ("count", "size", "refused"),
    [
        (99, 16, False),  # with Content-Length: 100 lines, the limit
        (100, 16, True),  # one line over
        (40, 1600, False),  # ~63 KiB of head: under the limit
        (20, 4096, True),  # 80 KiB of head in one write, with its body
    ],
    ids=["100-lines", "101-lines", "under-64KiB", "over-64KiB-one-write"],
)
async def test_the_response_head_is_limited_in_lines_and_bytes(
    count: int, size: int, refused: bool
) -> None:
    lines = b"".join(b"x-h%d: %b\r\n" % (i, b"v" * size) for i in range(count))
    server, url = await raw_server(
        answering(b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 2\r\n\r\nok")
    )
    client = UpstreamClient()
    try:
        if refused:
            with pytest.raises(UpstreamBroken, match="head"):
                await client.request(url, "GET", b"/", [], None, **TIMEOUTS)
        else:
            response = await client.request(url, "GET", b"/", [], None, **TIMEOUTS)
            assert await response.read() == b"ok"
            response.release()
    finally:
        await stop(client, server)


async def test_a_trickling_head_does_not_extend_the_read_timeout() -> None:
    """A header line every 0.2 s keeps an idle timer alive for ever; the head has
    a deadline instead: the read timeout from when the request was sent."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for i in range(15):  # 3 s of head; the client's read timeout is 1 s
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(b"x-slow-%d: yes\r\n" % i)
        writer.write(b"Content-Length: 2\r\n\r\nok")
        await writer.drain()
        await hang_up_after_client(reader, writer)

    server, url = await raw_server(trickle)
    client = UpstreamClient()
    try:
        with pytest.raises(UpstreamTimeout, match="head"):
            await client.request(url, "GET", b"/", [], None, connect_timeout=5, read_timeout=1)
        assert client.connections == 0
    finally:
        await stop(client, server)


async def test_after_the_head_a_slow_body_keeps_the_idle_read_timeout() -> None:
    """Only the head has a deadline: a body chunk every 0.3 s stays under a 1 s read timeout."""

    async def slow_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
        for _ in range(6):  # 1.8 s of body in all
            await writer.drain()
            await asyncio.sleep(0.3)
            writer.write(b"x")
        await writer.drain()
        await hang_up_after_client(reader, writer)

    server, url = await raw_server(slow_body)
    client = UpstreamClient()
    try:
        response = await client.request(
            url, "GET", b"/", [], None, connect_timeout=5, read_timeout=1
        )
        assert await response.read() == b"xxxxxx"
        response.release()
    finally:
        await stop(client, server)


async def test_the_read_timeout_starts_once_the_request_body_is_sent() -> None:
    """A slow upload (the client's pace) is not a backend that fails to answer."""

    async def read_then_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await reader.readexactly(8 * 1024)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await hang_up_after_client(reader, writer)

    async def slow_upload() -> AsyncIterator[bytes]:
        for _ in range(8):  # 1.6 s of upload; the read timeout is 0.5 s
            await asyncio.sleep(0.2)
            yield b"u" * 1024

    server, url = await raw_server(read_then_answer)
    client = UpstreamClient()
    try:
        response = await client.request(
            url,
            "POST",
            b"/",
            [(b"content-length", b"8192")],
            slow_upload(),
            connect_timeout=5,
            read_timeout=0.5,
        )
        assert await response.read() == b"ok"
        response.release()
    finally:
        await stop(client, server)


async def test_a_backend_silent_after_the_upload_is_a_read_timeout() -> None:
    async def read_and_sulk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await reader.readexactly(1024)
        await hang_up_after_client(reader, writer)

    async def body() -> AsyncIterator[bytes]:
        yield b"u" * 1024

    server, url = await raw_server(read_and_sulk)
    client = UpstreamClient()
    try:
        with pytest.raises(UpstreamTimeout):
            await client.request(
                url,
                "POST",
                b"/",
                [(b"content-length", b"1024")],
                body(),
                connect_timeout=5,
                read_timeout=0.3,
            )
    finally:
        await stop(client, server)


async def test_a_backend_that_takes_no_body_bytes_is_a_timeout_not_a_hang() -> None:
    """Sending is bounded too: a backend that stops reading the upload for the
    read timeout fails the attempt instead of holding it for ever."""

    done = asyncio.Event()

    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await done.wait()

    async def big_body() -> AsyncIterator[bytes]:
        block = b"b" * 65536
        for _ in range(1024):  # 64 MiB: far more than socket buffers hold
            yield block

    server, url = await raw_server(never_reads)
    client = UpstreamClient()
    try:
        with pytest.raises(UpstreamTimeout):
            await client.request(
                url, "POST", b"/", [], big_body(), connect_timeout=5, read_timeout=0.5
            )
    finally:
        done.set()
        await stop(client, server)


@pytest.mark.parametrize("when", ["same-write", "while-idle"])
async def test_bytes_after_the_answer_retire_the_connection(when: str) -> None:
    """A backend that says more than one answer (a stray response, garbage) is
    out of step with its connection: the next request must not read it."""
    accepted = 0

    async def stray(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
        extra = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray"
        await read_head(reader)
        if when == "same-write":
            writer.write(answer + extra)
        else:
            writer.write(answer)
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.write(extra)
        await writer.drain()
        while True:  # a keep-alive server: later requests on this connection get "later"
            await read_head(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nlater")
            await writer.drain()

    server, url = await raw_server(stray)
    client = UpstreamClient()
    try:
        response = await client.request(url, "GET", b"/", [], None, **TIMEOUTS)
        assert await response.read() == b"first"
        response.release()
        await asyncio.sleep(0.3)
        response = await client.request(url, "GET", b"/", [], None, **TIMEOUTS)
        assert await response.read() == b"first"  # a new connection's first answer
        response.release()
    finally:
        await stop(client, server)
    assert accepted == 2


async def test_endless_trailers_are_refused_in_bounded_memory() -> None:
    """Trailers are header lines too: one that never ends must not pile up."""
    finished = False

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal finished
        await read_head(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nx-trailer: "
        )
        block = b"a" * 65536
        for _ in range(256):  # 16 MiB at most
            writer.write(block)
            await writer.drain()
        finished = True

    server, url = await raw_server(endless)
    client = UpstreamClient()
    try:
        response = await client.request(url, "GET", b"/", [], None, **TIMEOUTS)
        with pytest.raises(UpstreamBroken, match="trailers"):
            await response.read()
        response.release()
        assert client.connections == 0
    finally:
        await stop(client, server)
    assert not finished


async def test_trickling_trailers_do_not_keep_the_read_timeout_alive() -> None:
    """Only body bytes are progress: a trailer byte every 0.2 s is a stalled body."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nx-t: ")
        for _ in range(15):  # 3 s of trailer; the read timeout is 1 s
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(b"a")
        writer.write(b"\r\n\r\n")
        await writer.drain()
        await hang_up_after_client(reader, writer)

    server, url = await raw_server(trickle)
    client = UpstreamClient()
    try:
        response = await client.request(
            url, "GET", b"/", [], None, connect_timeout=5, read_timeout=1
        )
        with pytest.raises(UpstreamTimeout):
            await response.read()
        response.release()
    finally:
        await stop(client, server)


async def test_an_early_answer_frees_an_upload_stuck_on_a_full_socket() -> None:
    """A backend that refuses (413) without reading the body leaves the upload
    blocked on a full socket; the answer must still come back, not a timeout."""

    done = asyncio.Event()

    async def refuse_unread(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await asyncio.sleep(0.3)  # let the client fill the socket buffers first
        writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await done.wait()  # and never read the body

    async def big_body() -> AsyncIterator[bytes]:
        block = b"b" * 65536
        for _ in range(1024):  # 64 MiB: far more than socket buffers hold
            yield block

    server, url = await raw_server(refuse_unread)
    client = UpstreamClient()
    try:
        response = await asyncio.wait_for(
            client.request(url, "POST", b"/", [], big_body(), connect_timeout=5, read_timeout=10),
            20,  # a bound for the test only: before the fix it waited for ever
        )
        assert response.status == 413
        response.release()
        assert client.connections == 0  # mid-request for the backend: never reused
    finally:
        done.set()
        await stop(client, server)
