"""A backend's response: head at once, body streamed with back-pressure."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gatehouse_gateway.upstream.h1.connection import H1Connection

_HIGH_WATER = 256 * 1024  # buffered response bytes before reading pauses
_LOW_WATER = 64 * 1024


class UpstreamResponse:
    """The backend's answer: status and headers at once, the body streamed on demand.

    ``status``, ``raw_headers`` and ``content_length`` are there at once; the
    body is read whole with ``read()`` or chunk by chunk with ``aiter_bytes()``;
    ``release()`` hands the connection back.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_conn",
        "_done",
        "_error",
        "_waiter",
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

    @property
    def complete(self) -> bool:
        """The whole body is in (or the exchange failed): ``read()`` will not wait."""
        return self._done

    async def wait_complete(self) -> None:
        """Wait until the whole body is in, taking none of it; raises what broke it.

        For small bodies only: past the high-water mark reading pauses until
        someone takes chunks, so a large body would never complete here.
        """
        while not self._done:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._error is not None:
            raise self._error

    async def read(self) -> bytes:
        """The whole body (for small ones; large ones go through ``aiter_bytes``)."""
        chunks = self._chunks
        if self._done and self._error is None:  # all in (the usual case): no waiting
            body = b"".join(chunks)
            chunks.clear()
            self._buffered = 0
            if self._conn is not None:
                self._conn.resume_reading()
            return body
        parts = []
        while (chunk := await self._next_chunk()) is not None:
            parts.append(chunk)
        return b"".join(parts)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body, each chunk as it arrives."""
        while (chunk := await self._next_chunk()) is not None:
            yield chunk

    def abort(self, error: BaseException) -> None:
        """Stop the body here: the connection closes, and the reader gets ``error``
        in place of the chunks still buffered (whoever wanted them has gone)."""
        self._chunks.clear()
        self._buffered = 0
        self._done = True
        self._error = error
        self._wake()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.response_released(False)

    def release(self) -> None:
        """Give the connection back: to the pool if the body was read whole, else closed."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.response_released(self._done and self._error is None and not self._chunks)
