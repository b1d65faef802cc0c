"""The proxy's HTTP/1.1 client: against a real fake backend, and against small raw
servers for what a healthy backend never does (stale connections, garbage,
silence, a body cut short)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from support.gateway import Launcher
from support.processes import ServiceProcess, free_port

from gatehouse_fake_backend.app import pattern_bytes
from gatehouse_gateway.upstream.h1 import (
    UpstreamBroken,
    UpstreamClient,
    UpstreamConnectError,
    UpstreamPoolTimeout,
    UpstreamTimeout,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
TIMEOUTS = {"connect_timeout": 5.0, "read_timeout": 10.0}


@pytest.fixture(scope="module")
def backend(module_launcher: Launcher) -> Iterator[ServiceProcess]:
    (process,) = module_launcher.backends(1, prefix="h1")
    yield process


async def raw_server(handler: Handler) -> tuple[asyncio.Server, str]:
    """A TCP server running ``handler`` per connection; every connection is closed after."""

    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client hung up first
        finally:
            writer.close()

    server = await asyncio.start_server(closing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def hang_up_after_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Keep the connection until the client closes it (no task outlives the test)."""
    await reader.read()
    writer.close()


async def stop(client: UpstreamClient, server: asyncio.Server) -> None:
    await client.close()
    await asyncio.sleep(0.05)  # handlers see the close and end
    server.close()
    await server.wait_closed()


async def chunks(total: int, size: int = 65536) -> AsyncIterator[bytes]:
    data = pattern_bytes(total)
    for start in range(0, total, size):
        yield data[start : start + size]
        await asyncio.sleep(0)


async def test_get_sends_path_query_headers_and_the_backend_host(backend: ServiceProcess) -> None:
    client = UpstreamClient()
    try:
        response = await client.request(
            backend.url, "GET", b"/a/b%20c?x=1&y=2", [(b"x-test", b"yes")], None, **TIMEOUTS
        )
        echo = json.loads(await response.read())
        response.release()
    finally:
        await client.close()
    assert response.status == 200
    assert echo["path"] == "/a/b c"
    assert echo["query"] == "x=1&y=2"
    assert echo["headers"]["x-test"] == "yes"
    assert echo["headers"]["host"] == f"127.0.0.1:{backend.port}"
    assert response.content_length == len(json.dumps(echo).encode())


async def test_a_host_given_replaces_the_backends_own(backend: ServiceProcess) -> None:
    client = UpstreamClient()
    try:
        response = await client.request(
            backend.url, "GET", b"/", [], None, host=b"client.example", **TIMEOUTS
        )
        echo = json.loads(await response.read())
        response.release()
    finally:
        await client.close()
    assert echo["headers"]["host"] == "client.example"


async def test_keep_alive_reuses_one_connection(backend: ServiceProcess) -> None:
    client = UpstreamClient()
    try:
        for _ in range(5):
            response = await client.request(backend.url, "GET", b"/", [], None, **TIMEOUTS)
            await response.read()
            response.release()
        assert len(client.pool(backend.url).open) == 1
        assert client.connections == 1
    finally:
        await client.close()


async def test_a_response_not_read_whole_closes_its_connection(backend: ServiceProcess) -> None:
    client = UpstreamClient()
    try:
        response = await client.request(
            backend.url, "GET", b"/__backend/bytes/1000000", [], None, **TIMEOUTS
        )
        response.release()
        await asyncio.sleep(0.05)
        assert client.connections == 0
    finally:
        await client.close()


@pytest.mark.parametrize("with_length", [True, False])
async def test_streamed_upload_arrives_whole(backend: ServiceProcess, with_length: bool) -> None:
    size = 5 * 1024 * 1024 + 7
    headers = [(b"content-length", str(size).encode())] if with_length else []
    client = UpstreamClient()
    try:
        response = await client.request(
            backend.url, "POST", b"/upload", headers, chunks(size), **TIMEOUTS
        )
        echo = json.loads(await response.read())
        response.release()
    finally:
        await client.close()
    assert echo["body"] == {"size": size, "sha256": hashlib.sha256(pattern_bytes(size)).hexdigest()}
    sent_chunked = echo["headers"].get("transfer-encoding") == "chunked"
    assert sent_chunked is not with_length


async def test_streamed_download_arrives_whole(backend: ServiceProcess) -> None:
    size = 20 * 1024 * 1024 + 3
    digest = hashlib.sha256()
    received = 0
    client = UpstreamClient()
    try:
        response = await client.request(
            backend.url, "GET", f"/__backend/bytes/{size}".encode(), [], None, **TIMEOUTS
        )
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            digest.update(chunk)
        response.release()
        assert client.connections == 1  # read whole: back in the pool
    finally:
        await client.close()
    assert received == size
    assert digest.hexdigest() == hashlib.sha256(pattern_bytes(size)).hexdigest()


async def test_head_has_no_body_whatever_its_length(backend: ServiceProcess) -> None:
    client = UpstreamClient()
    try:
        response = await client.request(backend.url, "HEAD", b"/", [], None, **TIMEOUTS)
        assert response.status == 200
        assert await response.read() == b""
        response.release()
        response = await client.request(backend.url, "GET", b"/", [], None, **TIMEOUTS)
        assert json.loads(await response.read())["method"] == "GET"
        response.release()
    finally:
        await client.close()


async def test_nothing_listening_is_a_connect_error() -> None:
    client = UpstreamClient()
    try:
        with pytest.raises(UpstreamConnectError):
            await client.request(
                f"http://127.0.0.1:{free_port()}", "GET", b"/", [], None, **TIMEOUTS
            )
        assert client.connections == 0
    finally:
        await client.close()


async def test_a_silent_backend_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await hang_up_after_client(reader, writer)

    server, url = await raw_server(silent)
    client = UpstreamClient()
    try:
        with pytest.raises(UpstreamTimeout):
            await client.request(url, "GET", b"/", [], None, connect_timeout=1, read_timeout=0.3)
        assert isinstance(UpstreamTimeout("x"), TimeoutError)
    finally:
        await stop(client, server)


async def test_a_stale_keep_alive_connection_is_replaced_once() -> None:
    """The backend answers one request per connection, then closes it without a word."""
    served = 0

    async def one_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal served
        await read_head(reader)
        served += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # the client does not know yet: its next request here fails

    server, url = await raw_server(one_per_connection)
    client = UpstreamClient()
    try:
        for _ in range(3):
            response = await client.request(url, "GET", b"/", [], None, **TIMEOUTS)
            assert await response.read() == b"ok"
            response.release()
    finally:
        await stop(client, server)
    assert served == 3


async def test_a_body_ended_by_close_is_complete_and_not_reused() -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    server, url = await raw_server(until_close)
    client = UpstreamClient()
    try:
        response = await client.request(url, "GET", b"/", [], None, **TIMEOUTS)
        assert await response.read() == b"all of it"
        response.release()
        assert client.connections == 0
    finally:
        await stop(client, server)


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", b"SSH-2.0-OpenSSH\r\n\r\n"],
    ids=["cut-short", "garbage"],
)
async def test_a_broken_answer_is_an_error_not_a_hang(answer: bytes) -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server, url = await raw_server(broken)
    client = UpstreamClient()
    try:
        with pytest.raises(UpstreamBroken):
            response = await client.request(url, "GET", b"/", [], None, **TIMEOUTS)
            await response.read()
    finally:
        await stop(client, server)


async def test_informational_answers_are_skipped() -> None:
    async def continue_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx"
        )
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()

    server, url = await raw_server(continue_first)
    client = UpstreamClient()
    try:
        response = await client.request(url, "GET", b"/", [], None, **TIMEOUTS)
        assert response.status == 201
        assert await response.read() == b"x"
        response.release()
    finally:
        await stop(client, server)


async def test_a_failing_request_body_is_an_upstream_error_with_its_cause(
    backend: ServiceProcess,
) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise ValueError("request body over the route's limit")

    client = UpstreamClient()
    try:
        with pytest.raises(UpstreamBroken) as caught:
            await client.request(backend.url, "POST", b"/", [], failing(), **TIMEOUTS)
        assert isinstance(caught.value.__cause__, ValueError)
    finally:
        await client.close()


async def test_the_connection_limit_makes_requests_wait(backend: ServiceProcess) -> None:
    client = UpstreamClient(limit=1)
    try:
        first = await client.request(backend.url, "GET", b"/1", [], None, **TIMEOUTS)
        # /2 goes to another backend URL (same server): it needs a second connection
        other = backend.url.replace("127.0.0.1", "localhost")
        second = asyncio.ensure_future(client.request(other, "GET", b"/2", [], None, **TIMEOUTS))
        await asyncio.sleep(0.2)
        assert not second.done()
        await first.read()
        first.release()  # idle now: the waiting request closes it to stay under the limit
        # at once, not when the backend's keep-alive timeout (5 s) closes the idle one
        response = await asyncio.wait_for(second, 2)
        assert json.loads(await response.read())["path"] == "/2"
        response.release()
        assert client.connections == 1
    finally:
        await client.close()


async def test_waiting_at_the_limit_is_a_pool_timeout_not_a_connect_error(
    backend: ServiceProcess,
) -> None:
    """The backend was never asked: its health must not pay for the gateway's queue."""
    client = UpstreamClient(limit=1)
    try:
        held = await client.request(backend.url, "GET", b"/held", [], None, **TIMEOUTS)
        other = backend.url.replace("127.0.0.1", "localhost")
        with pytest.raises(UpstreamPoolTimeout) as caught:
            await client.request(other, "GET", b"/queued", [], None, pool_timeout=0.3, **TIMEOUTS)
        assert not isinstance(caught.value, UpstreamConnectError | TimeoutError)
        assert client.connections == 1  # the one that gave up holds no place
        held.release()
    finally:
        await client.close()


async def test_an_early_answer_stops_the_upload_and_the_connection_is_not_reused() -> None:
    """A backend may refuse (413) before reading the body; that connection is then mid-request."""

    async def refuse_early(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await hang_up_after_client(reader, writer)

    sent = 0

    async def slow_body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 1
            yield b"x" * 1024
            await asyncio.sleep(0.01)

    server, url = await raw_server(refuse_early)
    client = UpstreamClient()
    try:
        response = await client.request(
            url, "POST", b"/", [(b"content-length", b"102400")], slow_body(), **TIMEOUTS
        )
        assert response.status == 413
        assert await response.read() == b""
        response.release()
        assert sent < 100
        assert client.connections == 0
    finally:
        await stop(client, server)
