"""uvicorn's httptools protocol, writing a small response's head and body in one go.

uvicorn writes the status line and headers as soon as the app sends
``http.response.start`` and the body with the next message: two socket writes,
two system calls, and on the wire often two segments, for every small answer.
For the gateway that write was the largest single cost in py-spy (about 30% of
the samples, loadtest/README.md). Here the head of a response with a known,
small ``Content-Length`` is held until its first body message and goes out in
the same write. Streams and large bodies are untouched, so a slow body never
holds back its headers.

This leans on two details of uvicorn's ``httptools_impl`` (0.54, locked in
uv.lock): a cycle writes through its ``transport`` attribute, and every request
cycle starts through ``HttpToolsProtocol._start_asgi_task``.
tests/common/test_http_protocol.py holds both in place over real sockets.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application, ASGISendEvent

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
    """A request cycle that holds a small response's head for its body."""

    _held_head: bytes | None = None

    async def send(self, message: ASGISendEvent) -> None:
        if (
            message["type"] == "http.response.start"
            and not self.response_started
            and _has_small_length(message.get("headers", ()))
        ):
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


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose request cycles are :class:`CoalescingCycle`."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # uvicorn makes the cycle itself; the subclass adds behaviour only, no state
        # of its own in __init__, so changing the class of the new object is safe.
        cycle.__class__ = CoalescingCycle
        super()._start_asgi_task(cycle, app)
