"""uvicorn's httptools protocol, writing a small response's head and body in one go.

uvicorn writes the status line and headers as soon as the app sends
``http.response.start`` and the body with the next message: two socket writes,
two system calls, and on the wire often two segments, for every small answer.
For the gateway that write was the largest single cost in py-spy (about 30% of
the samples, loadtest/README.md). Here the head of a response with a known,
small ``Content-Length`` is held until its first body message and goes out in
the same write. Streams and large bodies are untouched, so a slow body never
holds back its headers.

The usual answer (a small head, then its whole body) does not go through
uvicorn's ``send`` at all: the cycle renders the head as uvicorn does (its
header checks done once over all names and once over all values instead of
two regular-expression searches per header) and writes head and body itself
(loadtest/README.md, "make callgrind").

This leans on details of uvicorn's ``httptools_impl`` (0.54, locked in
uv.lock): a cycle writes through its ``transport`` attribute, every request
cycle starts through ``HttpToolsProtocol._start_asgi_task``, and the state its
``send`` keeps (``response_started``, ``chunked_encoding``,
``expected_content_length``, ``keep_alive``, ``on_response``).
tests/common/test_http_protocol.py holds them in place over real sockets,
comparing the bytes written with uvicorn's own for answers usual and not.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, cast

from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

if TYPE_CHECKING:
    from uvicorn._types import (
        ASGI3Application,
        ASGISendEvent,
        HTTPResponseStartEvent,
    )


def _check_table(refused: re.Pattern[bytes]) -> bytes:
    """A ``bytes.translate`` table turning every byte ``refused`` finds into 0
    (itself refused by both patterns) and leaving the others as they are."""
    return bytes(0 if refused.search(bytes([b])) else b for b in range(256))


# uvicorn's header name and value patterns, read off as translate tables
_NAME_CHECK = _check_table(HEADER_RE)
_VALUE_CHECK = _check_table(HEADER_VALUE_RE)

# Bodies up to this size are sent by apps in one message right after the head:
# the gateway's proxy reads a backend's body of this size whole before it
# answers, and its health checks read it whole to reuse the connection.
SMALL_BODY = 64 * 1024


def _has_small_length(headers: object) -> bool:
    for name, value in cast("list[tuple[bytes, bytes]]", headers):
        if len(name) == 14 and name.lower() == b"content-length":
            return value.isdigit() and int(value) <= SMALL_BODY
    return False


class _HeadCapture:
    """Stands in for the transport while uvicorn renders the head."""

    __slots__ = ("head",)

    def __init__(self) -> None:
        self.head: bytes | None = None

    def write(self, data: bytes) -> None:
        self.head = data


class _HeadFirst:
    """Stands in for the transport while uvicorn writes the body: the head goes first."""

    __slots__ = ("_head", "_transport")

    def __init__(self, transport: asyncio.Transport, head: bytes) -> None:
        self._transport = transport
        self._head: bytes | None = head

    def write(self, data: bytes) -> None:
        head, self._head = self._head, None
        self._transport.write(head + data if head is not None else data)

    def flush(self) -> None:
        """Write the head if no body write took it (a HEAD request has none)."""
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


class CoalescingCycle(RequestResponseCycle):
    """A request cycle that holds a small response's head for its body.

    The usual answer (its head, then its whole body in one message, nothing
    unusual about either) is written here without uvicorn's ``send``, to the
    same bytes and the same state: :meth:`_hold_head` and :meth:`_send_held`.
    Everything else goes through uvicorn's ``send``, the head swapped in and out
    of its transport; so do both messages' errors, which uvicorn raises.
    """

    _held_head: bytes | None = None

    async def send(self, message: ASGISendEvent) -> None:
        if self._held_head is not None and self._send_held(message):
            return
        if (
            message["type"] == "http.response.start"
            and not self.response_started
            and _has_small_length(message.get("headers", ()))
        ):
            if self._hold_head(message):
                return
            transport = self.transport
            capture = _HeadCapture()
            self.transport = cast("asyncio.Transport", capture)
            try:
                await super().send(message)
            finally:
                self.transport = transport
            self._held_head = capture.head
            return
        head = self._held_head
        if head is None:
            await super().send(message)
            return
        self._held_head = None
        transport = self.transport
        head_first = _HeadFirst(transport, head)
        self.transport = cast("asyncio.Transport", head_first)
        try:
            await super().send(message)
        finally:
            self.transport = transport
            head_first.flush()

    def _ready(self) -> bool:
        """Nothing for uvicorn's ``send`` to wait for or drop: no paused writes, no
        disconnect, no access line (uvicorn's own, when its logger is enabled)."""
        return not (self.flow.write_paused or self.disconnected or self.access_log)

    def _hold_head(self, message: ASGISendEvent) -> bool:
        """Render the head as uvicorn's ``send`` does, with its state changes, and
        hold it; False (nothing changed) when uvicorn's ``send`` is to do it.

        uvicorn checks each header's name and value with a regular expression
        (two searches per header, ten for a proxied answer); both are classes of
        single bytes, so mapping those bytes to 0 in the names joined and in the
        values joined (``bytes.translate`` with a fixed table, then a search for
        the 0: about 10,000 instructions per answer less than even one regular
        expression search over each) finds the same; when either has one,
        uvicorn's ``send`` raises its error.
        """
        if not self._ready():
            return False
        start = cast("HTTPResponseStartEvent", message)
        headers = [*self.default_headers, *start.get("headers", ())]
        names = b"".join([name for name, _ in headers])
        values = b"".join([value for _, value in headers])
        if 0 in names.translate(_NAME_CHECK) or 0 in values.translate(_VALUE_CHECK):
            return False
        self.response_started = True
        self.waiting_for_100_continue = False
        status_code = start["status"]
        content = [STATUS_LINE[status_code]]
        has_connection_close = False
        for name, value in headers:
            name = name.lower()
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection":
                connection = [token.lower().strip() for token in value.split(b",")]
                if b"close" in connection:
                    self.keep_alive = False
                    has_connection_close = True
            content += (name, b": ", value, b"\r\n")
        if not self.keep_alive and not has_connection_close:
            content.append(b"connection: close\r\n")
        if (
            self.chunked_encoding is None
            and self.scope["method"] != "HEAD"
            and status_code not in (204, 304)
        ):
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        self._held_head = b"".join(content)
        return True

    def _send_held(self, message: ASGISendEvent) -> bool:
        """Write the held head with the body of ``message``, as uvicorn's ``send``
        would write it after the head, when that is all it would do: a body that
        fits the length, not chunked, not a HEAD answer; else False, untouched."""
        if message["type"] != "http.response.body" or not self._ready():
            return False
        if self.response_complete or self.chunked_encoding or self.scope["method"] == "HEAD":
            return False
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        size = len(body)
        left = self.expected_content_length - size
        if left < 0 or (left and not more_body):
            return False  # uvicorn raises: longer, or shorter than Content-Length
        head, self._held_head = self._held_head, None
        self.expected_content_length = left
        self.transport.write(head + body if head is not None else body)
        if not more_body:
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()
        return True


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose request cycles are :class:`CoalescingCycle`."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # uvicorn makes the cycle itself; the subclass adds behaviour only, no state
        # of its own in __init__, so changing the class of the new object is safe.
        cycle.__class__ = CoalescingCycle
        super()._start_asgi_task(cycle, app)
