"""One keep-alive HTTP/1.1 connection: an asyncio protocol fed to httptools' parser.

A backend is not trusted to answer in good faith. The response head is
bounded in bytes and lines (counted as bytes arrive, so an endless header
never piles up in the parser) and in time (a deadline from the end of the
request, which a header line every few seconds does not push back); a status
outside 100-599 or a 101 nobody asked for is refused; and a connection that
says anything when no answer is due (idle in the pool, or after its answer)
is closed, never reused. See uvicorn's ``httptools_impl.py`` and aiohttp's
``client_proto.py`` for the same rules on the server and client side.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, NoReturn, cast

import httptools

from gatehouse_gateway.upstream.h1.errors import (
    UpstreamBroken,
    UpstreamError,
    UpstreamTimeout,
    UpstreamTLSError,
)
from gatehouse_gateway.upstream.h1.response import UpstreamResponse

if TYPE_CHECKING:
    from gatehouse_gateway.upstream.h1.client import BackendPool


def tls_error(exc: ssl.SSLError) -> UpstreamTLSError:
    """OpenSSL's short reason (and, for a certificate, why it was not trusted)."""
    error = UpstreamTLSError(exc.reason or type(exc).__name__)
    verify = getattr(exc, "verify_message", None)
    if verify:
        error.args = (f"{error.args[0]} ({verify})",)
    return error


# "HTTP/1.1 200 " and CRLF around the reason, and the blank line that ends a head
_STATUS_LINE_OVERHEAD = 17
# ": " and CRLF around each header line, counted with its name and value
_LINE_OVERHEAD = 4


class H1Connection(asyncio.Protocol):
    """One keep-alive connection to a backend; one request at a time."""

    # Slots: with more than 30 instance attributes CPython 3.11 gives up its fast
    # attribute access (shared-key instance dicts hold 30), and every self.x in the
    # parser callbacks costs about four times as much.
    __slots__ = (
        "_drain_waiter",
        "_framing",
        "_head_deadline",
        "_head_limit",
        "_head_parsed",
        "_header_count",
        "_header_limit",
        "_in_head",
        "_read_timeout",
        "_reading_paused",
        "_refused",
        "_timer",
        "_write_paused",
        "body_cut_short",
        "closed",
        "expecting",
        "head_only",
        "head_waiter",
        "headers",
        "idle_since",
        "informational",
        "last_read",
        "loop",
        "message_complete",
        "parser",
        "pool",
        "received_any",
        "response",
        "reusable",
        "reused",
        "transport",
        "until_close",
        "upgrade_allowed",
        "upgraded",
    )

    def __init__(self, pool: BackendPool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reusable = False
        # it has served a request before (a pooled connection the backend may have dropped)
        self.reused = False
        self.received_any = False
        # an exchange is under way and its final answer is not complete yet: bytes at
        # any other time are out of step with the connection
        self.expecting = False
        self.last_read = 0.0  # the last response body byte, for the idle read timeout
        self.response: UpstreamResponse | None = None
        self.head_waiter: asyncio.Future[UpstreamResponse] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.informational = False
        self.message_complete = False
        self.head_only = False
        self.until_close = False
        # the request asked to switch protocols; once switched, bytes pass through raw
        self.upgrade_allowed = False
        self.upgraded = False
        # the backend answered before the whole request body was sent: the
        # connection is mid-request for the backend, so it is never reused
        self.body_cut_short = False
        self.idle_since = 0.0
        client = pool.client
        self._head_limit = client.max_response_head_bytes
        self._header_limit = client.max_response_headers
        self._in_head = False  # the final response head is not complete yet
        # bytes received since the request was sent or the last body byte: heads,
        # chunk framing and trailers, which the parser may hold without a callback
        self._framing = 0
        self._head_parsed = 0  # head bytes the parser has handed over, for a head in one read
        self._header_count = 0
        self._head_deadline = 0.0
        self._refused: UpstreamError | None = None
        self._reading_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._read_timeout = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream connection (loop.create_connection) is always given a Transport
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.upgraded:
            if self.response is not None:
                self.response._feed(data)
            return
        if not self.expecting:
            # idle in the pool, or after its answer: a stray response or garbage
            # would be read as the answer to the next request
            self.close()
            return
        self.received_any = True
        self._framing += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as switched:
            self._switched(data[switched.args[0] :])
            return
        except httptools.HttpParserError as exc:
            self._fail(self._refused or UpstreamBroken(f"unparsable response: {exc}"))
            self.close()
            return
        if self._framing > self._head_limit:
            # the parser holds a partial header line it has not handed over: stop here
            self._fail(UpstreamBroken(f"response head or trailers over {self._head_limit} bytes"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        self.expecting = False
        self._cancel_timer()
        if self.upgraded:
            if self.response is not None:
                error = None if exc is None else UpstreamBroken(f"connection lost: {exc!r}")
                self.response._finish(error)
        elif not self.message_complete:
            if self.until_close and exc is None and self.response is not None:
                # a body without length or chunking ends when the backend closes
                self.message_complete = True
                self.response._finish()
            elif isinstance(exc, ssl.SSLError) and self.response is None:
                # TLS 1.3: a backend refuses the client certificate after the handshake
                self._fail(tls_error(exc))
            else:
                self._fail(UpstreamBroken(f"connection closed by the backend: {exc!r}"))
        self._wake_drain(UpstreamBroken("connection lost while sending"))
        self.pool.forget(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain()

    # httptools callbacks
    def on_message_begin(self) -> None:
        if not self.expecting:  # a second answer in the same read as the first
            self._refuse("the backend sent more than one answer")
        self.headers = []
        self._header_count = 0
        self.message_complete = False

    def on_status(self, status: bytes) -> None:
        # interim (1xx) heads count too: a backend flooding them is refused like
        # an oversized head, whatever the reads it arrives in
        self._head_parsed += len(status) + _STATUS_LINE_OVERHEAD
        if self._head_parsed > self._head_limit:
            self._refuse(f"response head or trailers over {self._head_limit} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_head:  # else a trailer: counted below, never relayed
            self.headers.append((name, value))
        self._head_parsed += len(name) + len(value) + _LINE_OVERHEAD
        self._header_count += 1
        if self._head_parsed > self._head_limit:
            self._refuse(f"response head or trailers over {self._head_limit} bytes")
        if self._header_count > self._header_limit:
            self._refuse(f"response head or trailers over {self._header_limit} header lines")

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            if status < 100:
                self._refuse(f"invalid response status {status}")
            if status != 101:
                self.informational = True  # 100 Continue and friends: wait for the real answer
                return
            if not (self.upgrade_allowed and self.parser.should_upgrade()):
                self._refuse("an unsolicited 101 Switching Protocols")
        elif status > 599:
            self._refuse(f"invalid response status {status}")
        self.informational = False
        self._in_head = False
        response = UpstreamResponse(self, status, self.headers)
        self.response = response
        if status == 101:
            # the rest of the stream is the new protocol's: it ends when the backend
            # closes, and its pace belongs to whoever relays it, not to the read timeout
            self.upgraded = True
            self.expecting = False
            self._cancel_timer()
        else:
            self.until_close = (
                response.content_length is None
                and status not in (204, 304)
                and not self.parser.should_keep_alive()
                and not any(name.lower() == b"transfer-encoding" for name, _ in self.headers)
            )
        waiter = self.head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(response)
            self._wake_drain()  # an upload blocked on a full socket learns of the early answer
        if self.head_only:  # a HEAD answer has no body whatever its Content-Length says
            self.message_complete = True
            self.expecting = False
            self.reusable = False
            response._finish()

    def on_body(self, body: bytes) -> None:
        # progress: framing that trickles without body bytes does not keep the timer alive
        self._framing = 0
        self.last_read = self.loop.time()
        if self.response is not None and not self.head_only:
            self.response._feed(body)

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        if self.upgraded:
            return
        self.message_complete = True
        self.expecting = False
        # the read timer stays: it finds nothing to do, or the next exchange keeps it
        # (see _start_read_timer)
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
    def _refuse(self, reason: str) -> NoReturn:
        """Stop parsing from inside a callback; ``data_received`` reports ``reason``."""
        error = UpstreamBroken(reason)
        self._refused = error
        raise error

    def _switched(self, rest: bytes) -> None:
        """The parser stopped after a 101: what follows its head is the new protocol's."""
        if not self.upgraded:  # pragma: no cover - on_headers_complete refuses first
            self._fail(UpstreamBroken("an unsolicited protocol switch"))
            self.close()
            return
        if rest and self.response is not None:
            self.response._feed(rest)

    def _fail(self, error: UpstreamError) -> None:
        waiter = self.head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        elif self.response is not None and not self.message_complete:
            self.response._finish(error)

    def _wake_drain(self, error: UpstreamError | None = None) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _start_read_timer(self) -> None:
        """The request is sent: the backend has the read timeout to answer with a whole head.

        A timer still set for an earlier deadline (the previous exchange's) is
        kept: firing early, :meth:`_on_timer` only re-checks and re-arms. So a
        busy connection makes one timer per read timeout, not one per request
        (a ``call_at`` and its ``cancel``: about 5,500 instructions each time).
        """
        now = self.loop.time()
        self.last_read = now
        deadline = self._head_deadline = now + self._read_timeout
        if self.message_complete or self.upgraded or self.closed:
            return
        timer = self._timer
        if timer is not None:
            if timer.when() <= deadline:
                return
            timer.cancel()
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.message_complete or self.closed or self.upgraded:
            return
        now = self.loop.time()
        if self._in_head:
            # a deadline, not an idle timer: a header line now and then does not extend it
            if now < self._head_deadline:
                self._timer = self.loop.call_at(self._head_deadline, self._on_timer)
                return
            self._fail(UpstreamTimeout(f"no whole response head within {self._read_timeout:g}s"))
            self.close()
            return
        if self._reading_paused:  # the client is slow to take the body, not the backend
            self.last_read = now
        idle = now - self.last_read
        if idle < self._read_timeout:
            self._timer = self.loop.call_later(self._read_timeout - idle, self._on_timer)
            return
        self._fail(
            UpstreamTimeout(f"no response body from the backend for {self._read_timeout:g}s")
        )
        self.close()

    async def _drain(self) -> None:
        """Wait until the backend takes more of the request, for at most the read timeout.

        The read timer only starts once the request is sent, so a backend that
        stops reading the upload is bounded here (as nginx's proxy_send_timeout
        bounds the time between two successful writes).
        """
        if self._write_paused and not self.closed:
            self._drain_waiter = self.loop.create_future()
            try:
                async with asyncio.timeout(self._read_timeout):
                    await self._drain_waiter
            except TimeoutError:
                raise UpstreamTimeout(
                    f"the backend took no request bytes for {self._read_timeout:g}s"
                ) from None
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
        upgrade: bool = False,
    ) -> UpstreamResponse:
        """Send one request and return the response once its head is in.

        The read timeout starts when the request (with its body) has been sent:
        the whole response head must arrive within it; after the head, it bounds
        the silence between body bytes.
        """
        self.received_any = False
        transport = self.transport
        if transport is None or self.closed:  # dropped by the backend while idle
            raise UpstreamBroken("the connection is closed")
        self.response = None
        self.message_complete = False
        self.reusable = False
        self.head_only = head_only
        self.upgrade_allowed = upgrade
        self.body_cut_short = False
        self._in_head = True
        self._framing = 0
        self._head_parsed = 0
        self._refused = None
        self.expecting = True
        waiter: asyncio.Future[UpstreamResponse] = self.loop.create_future()
        self.head_waiter = waiter
        self._read_timeout = read_timeout
        try:
            transport.write(head)
            if body is not None:
                # the previous exchange's timer (kept: _start_read_timer) would
                # judge this head by that exchange's deadline while the body goes out
                self._cancel_timer()
                await self._send_body(transport, body, chunked, waiter)
            self._start_read_timer()
            return await waiter
        except BaseException as exc:
            self.close()
            if isinstance(exc, UpstreamError) and waiter.done() and not waiter.cancelled():
                refused = waiter.exception()
                if refused is not None:  # the backend's answer broke first: say why
                    raise refused from None
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
                if waiter.done():  # the backend answered early (413 and such)
                    break
                if not chunk:
                    continue
                if chunked:
                    transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                else:
                    transport.write(chunk)
                if self._write_paused:
                    await self._drain()
                if waiter.done():
                    break
            else:
                if chunked:
                    transport.write(b"0\r\n\r\n")
                return
        except UpstreamError:
            raise
        except Exception as exc:  # the client's side of the body failed (limit, disconnect)
            raise UpstreamBroken(f"the request body failed: {exc}") from exc
        self.body_cut_short = True
        self.reusable = False

    def response_released(self, complete: bool) -> None:
        self.response = None
        if complete and self.reusable and not self.closed:
            self.pool.put_back(self)
        else:
            self.close()

    def close(self) -> None:
        self._cancel_timer()
        self.reusable = False
        self.expecting = False
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()
            self.pool.forget(self)
