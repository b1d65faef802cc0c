"""A lean HTTP/1.1 client for the proxy's hot path: pooled keep-alive connections, httptools.

aiohttp's client is general (cookies, redirects, auth, tracing, multipart,
header normalisation) and every request pays for that generality: measured
under wrk on this machine, its request setup and response object cost more
CPU than the rest of the proxy together (loadtest/README.md). The proxy needs
far less: write a request head, stream a body, parse a response with the C
parser uvicorn already uses (httptools), and hand the connection back to a
pool. This module does only that, with the same failure classes the proxy
distinguishes (cannot connect, read timeout, broken connection).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from urllib.parse import urlsplit

import httptools

_HIGH_WATER = 256 * 1024  # buffered response bytes before reading pauses
_LOW_WATER = 64 * 1024
_CRLF = b"\r\n"


class UpstreamError(Exception):
    """Base of the client's failures."""


class UpstreamConnectError(UpstreamError):
    """No connection to the backend could be made (refused, unreachable, connect timeout)."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    """The backend did not send anything for longer than the read timeout."""


class UpstreamBroken(UpstreamError):
    """The connection failed mid-exchange: reset, closed early, or an unparsable response."""


class UpstreamResponse:
    """The backend's answer: status and headers at once, the body streamed on demand.

    Mirrors the small part of ``aiohttp.ClientResponse`` the proxy uses:
    ``status``, ``raw_headers``, ``content_length``, ``read()``,
    ``content.iter_any()`` and ``release()``.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_conn",
        "_done",
        "_error",
        "_waiter",
        "content",
        "content_length",
        "raw_headers",
        "status",
    )

    def __init__(self, conn: H1Connection, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self._conn: H1Connection | None = conn
        self.status = status
        self.raw_headers = headers
        self.content_length: int | None = None
        for name, value in headers:
            if len(name) == 14 and name.lower() == b"content-length":
                try:
                    self.content_length = int(value)
                except ValueError:
                    self.content_length = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.content = self

    # called by the connection
    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > _HIGH_WATER and self._conn is not None:
            self._conn.pause_reading()
        self._wake()

    def _finish(self, error: BaseException | None = None) -> None:
        self._done = True
        if error is not None and self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _next_chunk(self) -> bytes | None:
        while not self._chunks:
            if self._done:
                if self._error is not None:
                    raise self._error
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._buffered < _LOW_WATER and self._conn is not None:
            self._conn.resume_reading()
        return chunk

    async def read(self) -> bytes:
        """The whole body (for small ones; large ones go through ``iter_any``)."""
        parts = []
        while (chunk := await self._next_chunk()) is not None:
            parts.append(chunk)
        return b"".join(parts)

    async def iter_any(self) -> AsyncIterator[bytes]:
        while (chunk := await self._next_chunk()) is not None:
            yield chunk

    def release(self) -> None:
        """Give the connection back: to the pool if the body was read whole, else closed."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.response_released(self._done and self._error is None and not self._chunks)


class H1Connection(asyncio.Protocol):
    """One keep-alive connection to a backend; one request at a time."""

    def __init__(self, pool: BackendPool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reusable = False
        self.received_any = False
        self.last_read = 0.0
        self.response: UpstreamResponse | None = None
        self.head_waiter: asyncio.Future[UpstreamResponse] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.informational = False
        self.message_complete = False
        self.head_only = False
        self.until_close = False
        # the backend answered before the whole request body was sent: the
        # connection is mid-request for the backend, so it is never reused
        self.body_cut_short = False
        self.idle_since = 0.0
        self._reading_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._read_timeout = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        self.last_read = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamBroken(f"unparsable response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        self._cancel_timer()
        if not self.message_complete:
            if self.until_close and exc is None and self.response is not None:
                # a body without length or chunking ends when the backend closes
                self.message_complete = True
                self.response._finish()
            else:
                self._fail(UpstreamBroken(f"connection closed by the backend: {exc!r}"))
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(UpstreamBroken("connection lost while sending"))
        self.pool.forget(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.headers = []
        self.message_complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.informational = True  # 100 Continue and friends: wait for the real answer
            return
        self.informational = False
        response = UpstreamResponse(self, status, self.headers)
        self.response = response
        self.until_close = (
            response.content_length is None
            and status not in (204, 304)
            and not self.parser.should_keep_alive()
            and not any(name.lower() == b"transfer-encoding" for name, _ in self.headers)
        )
        waiter = self.head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(response)
        if self.head_only:  # a HEAD answer has no body whatever its Content-Length says
            self.message_complete = True
            self.reusable = False
            response._finish()

    def on_body(self, body: bytes) -> None:
        if self.response is not None and not self.head_only:
            self.response._feed(body)

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        self.message_complete = True
        self._cancel_timer()
        self.reusable = (
            self.parser.should_keep_alive() and not self.head_only and not self.body_cut_short
        )
        if self.response is not None:
            self.response._finish()

    # flow control on the response side
    def pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    # the exchange
    def _fail(self, error: UpstreamError) -> None:
        waiter = self.head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        elif self.response is not None and not self.message_complete:
            self.response._finish(error)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        if self.message_complete or self.closed:
            return
        if self._reading_paused:  # the client is slow to take the body, not the backend
            self.last_read = self.loop.time()
        idle = self.loop.time() - self.last_read
        if idle < self._read_timeout:
            self._timer = self.loop.call_later(self._read_timeout - idle, self._on_timer)
            return
        self._fail(UpstreamTimeout(f"no data from the backend for {self._read_timeout:g}s"))
        self.close()

    async def _drain(self) -> None:
        if self._write_paused and not self.closed:
            self._drain_waiter = self.loop.create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None
        if self.closed:
            raise UpstreamBroken("connection lost while sending the request")

    async def exchange(
        self,
        head: bytes,
        body: AsyncIterable[bytes] | None,
        chunked: bool,
        read_timeout: float,
        head_only: bool,
    ) -> UpstreamResponse:
        transport = self.transport
        if transport is None:
            raise UpstreamBroken("not connected")
        self.response = None
        self.received_any = False
        self.message_complete = False
        self.reusable = False
        self.head_only = head_only
        self.body_cut_short = False
        waiter: asyncio.Future[UpstreamResponse] = self.loop.create_future()
        self.head_waiter = waiter
        self._read_timeout = read_timeout
        self.last_read = self.loop.time()
        self._timer = self.loop.call_later(read_timeout, self._on_timer)
        try:
            transport.write(head)
            if body is not None:
                await self._send_body(transport, body, chunked, waiter)
            return await waiter
        except BaseException:
            self.close()
            raise
        finally:
            self.head_waiter = None

    async def _send_body(
        self,
        transport: asyncio.Transport,
        body: AsyncIterable[bytes],
        chunked: bool,
        waiter: asyncio.Future[UpstreamResponse],
    ) -> None:
        try:
            async for chunk in body:
                if not chunk:
                    continue
                if chunked:
                    transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                else:
                    transport.write(chunk)
                if self._write_paused:
                    await self._drain()
                if waiter.done():  # the backend answered early (413 and such)
                    self.body_cut_short = True
                    self.reusable = False
                    return
        except UpstreamError:
            raise
        except Exception as exc:  # the client's side of the body failed (limit, disconnect)
            raise UpstreamBroken(f"the request body failed: {exc}") from exc
        if chunked:
            transport.write(b"0\r\n\r\n")

    def response_released(self, complete: bool) -> None:
        self.response = None
        if complete and self.reusable and not self.closed:
            self.pool.put_back(self)
        else:
            self.close()

    def close(self) -> None:
        self._cancel_timer()
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()
            self.pool.forget(self)


class BackendPool:
    """Idle keep-alive connections to one backend, most recently used first."""

    def __init__(self, client: UpstreamClient, url: str) -> None:
        parts = urlsplit(url)
        self.client = client
        self.loop = client.loop
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = client.ssl_context if parts.scheme == "https" else None
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        self.host_header = (self.host if default_port else f"{self.host}:{self.port}").encode()
        self.idle: collections.deque[H1Connection] = collections.deque()
        self.open: set[H1Connection] = set()

    async def connect(self, timeout: float) -> H1Connection:
        await self.client.reserve()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await self.loop.create_connection(
                    lambda: H1Connection(self), self.host, self.port, ssl=self.ssl
                )
        except BaseException as exc:
            self.client.unreserve()
            if isinstance(exc, TimeoutError):
                raise UpstreamConnectError(f"connect timed out after {timeout:g}s") from exc
            if isinstance(exc, OSError):
                raise UpstreamConnectError(f"cannot connect: {exc}") from exc
            raise
        self.open.add(conn)
        return conn

    def take_idle(self) -> H1Connection | None:
        """The most recently used live connection, if one is idle and not too old."""
        idle = self.idle
        oldest = self.loop.time() - self.client.keepalive
        while idle:
            conn = idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                continue
            if conn.idle_since < oldest:
                conn.close()
                continue
            return conn
        return None

    def put_back(self, conn: H1Connection) -> None:
        conn.idle_since = self.loop.time()
        self.idle.append(conn)

    def forget(self, conn: H1Connection) -> None:
        if conn in self.open:
            self.open.discard(conn)
            self.client.unreserve()

    def close(self) -> None:
        for conn in list(self.open):
            conn.close()
        self.idle.clear()


class UpstreamClient:
    """Pools per backend URL; ``request`` is the one call the proxy makes per attempt.

    ``limit`` bounds the open connections to all backends together (as
    aiohttp's connector did); a request over it waits for one to close or
    come back idle. ``keepalive`` is how long an idle connection may be reused.
    """

    def __init__(self, *, limit: int = 1000, keepalive: float = 60.0) -> None:
        self.loop = asyncio.get_running_loop()
        self.limit = limit
        self.keepalive = keepalive
        self.ssl_context = ssl.create_default_context()
        self.pools: dict[str, BackendPool] = {}
        self.connections = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def pool(self, base_url: str) -> BackendPool:
        pool = self.pools.get(base_url)
        if pool is None:
            pool = self.pools[base_url] = BackendPool(self, base_url)
        return pool

    async def reserve(self) -> None:
        """Count a new connection, waiting while ``limit`` are open."""
        while self.connections >= self.limit:
            if self._close_one_idle():
                continue
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            await waiter
        self.connections += 1

    def unreserve(self) -> None:
        self.connections -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _close_one_idle(self) -> bool:
        for pool in self.pools.values():
            conn = pool.take_idle()
            if conn is not None:
                conn.close()
                return True
        return False

    async def request(
        self,
        base_url: str,
        method: str,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: AsyncIterable[bytes] | None,
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> UpstreamResponse:
        """Send one request; the response once its head is in (the body streams after).

        ``target`` is the raw path and query; ``headers`` are sent as given
        (bytes, as they go on the wire), plus ``Host`` (the backend's) and, for
        a body of unknown length, ``Transfer-Encoding: chunked``. A pooled
        connection the backend closed while it sat idle fails before any byte
        of an answer; a request without a body then goes again, once, on a
        fresh connection.
        """
        pool = self.pool(base_url)
        has_length = False
        parts = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\nhost: ", pool.host_header]
        for name, value in headers:
            if len(name) == 14 and name.lower() == b"content-length":
                has_length = True
            parts += (b"\r\n", name, b": ", value)
        chunked = body is not None and not has_length
        if chunked:
            parts.append(b"\r\ntransfer-encoding: chunked")
        parts.append(b"\r\n\r\n")
        head = b"".join(parts)
        head_only = method == "HEAD"
        conn = pool.take_idle()
        if conn is not None:
            try:
                return await conn.exchange(head, body, chunked, read_timeout, head_only)
            except UpstreamBroken:
                if conn.received_any or body is not None:
                    raise
                # a stale keep-alive connection: once more on a new one
        conn = await pool.connect(connect_timeout)
        return await conn.exchange(head, body, chunked, read_timeout, head_only)

    async def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()
