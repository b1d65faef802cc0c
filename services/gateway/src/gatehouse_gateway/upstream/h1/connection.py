"""One keep-alive HTTP/1.1 connection: an asyncio protocol fed to httptools' parser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING

import httptools

from gatehouse_gateway.upstream.h1.errors import UpstreamBroken, UpstreamError, UpstreamTimeout
from gatehouse_gateway.upstream.h1.response import UpstreamResponse

if TYPE_CHECKING:
    from gatehouse_gateway.upstream.h1.client import BackendPool


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
