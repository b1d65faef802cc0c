"""The writer of an HTTP/2 connection: response bodies framed fairly, with backpressure.

Each stream's ``send()`` hands its bytes here and waits until they are framed.
The writer frames at most one DATA frame (up to the client's frame size and
windows) per stream in turn, so a stream with megabytes to send never holds
back a small answer on the same connection; a stream whose window is closed
waits, off the turn, for the client's WINDOW_UPDATE; while the socket is
backed up (``paused``) nothing is framed. At most ``WRITE_TURN`` bytes are
framed per turn of the event loop, so reading and other connections go on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from h2.connection import H2Connection
from h2.exceptions import H2Error

WRITE_TURN = 256 * 1024  # bytes framed before the loop serves others


class _Pending:
    """Response body bytes of one ``send()``, waiting for windows and the socket."""

    __slots__ = ("data", "done", "end")

    def __init__(self, data: bytes, end: bool, done: asyncio.Future[None]) -> None:
        self.data = memoryview(data)
        self.end = end
        self.done = done


class FairWriter:
    """Frames the pending bodies of one connection's streams in turn."""

    def __init__(
        self, conn: H2Connection, loop: asyncio.AbstractEventLoop, flush: Callable[[], None]
    ) -> None:
        self.conn = conn
        self.loop = loop
        self.flush = flush  # writes what h2 framed to the socket
        self.paused = False  # the socket is backed up
        self.closed = False
        self._pending: dict[int, _Pending] = {}
        self._ready: deque[int] = deque()
        self._blocked: set[int] = set()
        self._scheduled = False

    async def write(self, stream_id: int, data: bytes, end: bool) -> None:
        """Frame ``data`` on ``stream_id`` (ending it if ``end``); returns once all is framed."""
        pending = _Pending(data, end, self.loop.create_future())
        self._pending[stream_id] = pending
        self._ready.append(stream_id)
        self.kick()
        await pending.done

    def kick(self) -> None:
        """Write soon: once per turn of the loop, however often asked."""
        if not self._scheduled and not self.closed:
            self._scheduled = True
            self.loop.call_soon(self.pump)

    def pump(self) -> None:
        self._scheduled = False
        if self.closed:
            return
        ready, conn, turn = self._ready, self.conn, WRITE_TURN
        while ready and turn > 0 and not self.paused:
            stream_id = ready.popleft()
            pending = self._pending.get(stream_id)
            if pending is None:
                continue
            try:
                window = conn.local_flow_control_window(stream_id)
            except H2Error:
                self.drop(stream_id)
                continue
            size = min(window, conn.max_outbound_frame_size, len(pending.data))
            if size <= 0:
                self._blocked.add(stream_id)  # until the client's WINDOW_UPDATE
                continue
            chunk, pending.data = pending.data[:size], pending.data[size:]
            last = not pending.data
            conn.send_data(stream_id, chunk.tobytes(), end_stream=last and pending.end)
            turn -= size
            if last:
                del self._pending[stream_id]
                pending.done.set_result(None)
            else:
                ready.append(stream_id)
        self.flush()
        if ready and not self.paused:
            self.kick()

    def unblock(self, stream_id: int) -> None:
        """The client opened a window: the stream's (or, for 0, every stream's) turn again."""
        if stream_id == 0:
            self._ready.extend(self._blocked)
            self._blocked.clear()
        elif stream_id in self._blocked:
            self._blocked.discard(stream_id)
            self._ready.append(stream_id)

    def drop(self, stream_id: int) -> None:
        """The stream is gone: its ``send()`` returns, its bytes are not sent."""
        pending = self._pending.pop(stream_id, None)
        self._blocked.discard(stream_id)
        if pending is not None and not pending.done.done():
            pending.done.set_result(None)

    def close(self) -> None:
        self.closed = True
        for stream_id in list(self._pending):
            self.drop(stream_id)
