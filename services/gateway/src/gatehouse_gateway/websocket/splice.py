"""Relaying an open WebSocket as bytes: frames copied between the two sockets, heads read.

Once both handshakes are done (the client's by the server's WebSocket
protocol, the backend's by the `websockets` client), the frames need no
rewriting: a client's frames are masked, as the backend expects of a client,
and a backend's are not, as the client expects of a server. So the two
transports are handed to a :class:`Splice` and everything that terminated
the WebSocket on each hop is dropped: no message queue, no task, no
decoded message per socket. An idle socket costs its two transports, two
small protocol objects and one timer (about 36 KiB per socket before, with
both protocol stacks and a relay task; loadtest/README.md, "make bench-ws").

Each end parses only what crosses it: frame heads for message sizes (1009
over ``max_message_bytes``, decided on the head, before the payload is
relayed), message counts and activity, and whole control frames (at most
125 bytes), so that:

- a close passes through with its code and reason, its answer comes back the
  same way, and a socket whose peer vanished gets a close from the gateway
  (1001 to the backend for a client gone, 1011 to the client for a backend gone);
- the gateway pings each side every ``ping_interval`` and absorbs the pong;
  none within ``ping_timeout`` closes both with 1011; the sides' own pings and
  pongs pass through;
- backpressure is the transports' own: a side whose socket cannot take more
  (``pause_writing``) pauses reading the other side until it drains;
- :meth:`Splice.stop` (idle timeout, drain, reload, shutdown) closes both with
  a code of the gateway's, at a frame boundary.

A frame the gateway writes itself (close, ping) goes out only between two
frames of the relayed stream; mid-frame, a closing side is cut instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import Callable
from typing import Any

from gatehouse_gateway.websocket.metrics import RouteSocketMetrics

logger = logging.getLogger(__name__)

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
# Seconds a side gets to answer a close before its socket is cut.
CLOSE_TIMEOUT = 5.0
_MAX_CONTROL = 125


def frame(opcode: int, payload: bytes, *, mask: bool) -> bytes:
    """One final frame; masked (a random key) when it goes to a server."""
    head = bytes((0x80 | opcode, (0x80 if mask else 0) | len(payload)))
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return head + key + masked


def close_payload(code: int, reason: str) -> bytes:
    """A close frame's payload: the code, then the reason cut to fit 125 bytes."""
    return struct.pack("!H", code) + reason.encode()[: _MAX_CONTROL - 2]


def _unmask(payload: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i & 3] for i, b in enumerate(payload))


class _End(asyncio.Protocol):
    """One side's socket: reads the frames its peer sends and forwards them to the other side.

    ``masked``: frames from this side's peer are masked (the client's side).
    """

    __slots__ = (
        "_control",
        "_control_size",
        "_fin",
        "_head",
        "_in_message",
        "_message_bytes",
        "_remaining",
        "bytes_in",
        "got_close",
        "lost",
        "masked",
        "messages_in",
        "name",
        "other",
        "ping",
        "sent_close",
        "splice",
        "transport",
    )

    def __init__(
        self,
        splice: Splice,
        transport: asyncio.Transport,
        *,
        name: str,
        masked: bool,
        messages_in: Any,
        bytes_in: Any,
    ) -> None:
        self.splice = splice
        self.transport = transport
        self.name = name
        self.masked = masked
        self.messages_in = messages_in
        self.bytes_in = bytes_in
        self.other: _End = self
        self.got_close = False  # a close came from this side's peer
        self.sent_close = False  # a close went to this side's peer
        self.lost = False
        self.ping: bytes | None = None  # the payload of the gateway's unanswered ping
        self._head = b""  # an incomplete frame head, held until the rest arrives
        self._remaining = 0  # payload bytes of the current data frame still to relay
        self._fin = False
        self._in_message = False
        self._message_bytes = 0
        self._control: bytearray | None = None  # a control frame being read whole
        self._control_size = 0

    # what this side's peer receives ------------------------------------------

    def at_boundary(self) -> bool:
        """Whether a frame may be written to this side now (no relayed frame half sent)."""
        return self.other._remaining == 0

    def send_own(self, opcode: int, payload: bytes) -> bool:
        """Write a frame of the gateway's to this side's peer; False if mid-frame or gone."""
        if self.lost or self.sent_close or not self.at_boundary():
            return False
        self.transport.write(frame(opcode, payload, mask=not self.masked))
        return True

    def send_close(self, code: int, reason: str) -> None:
        """Close toward this side's peer: a close frame, or the socket cut when mid-frame."""
        if self.lost or self.sent_close:
            return
        if self.send_own(OP_CLOSE, close_payload(code, reason)):
            self.sent_close = True
        else:
            self.transport.abort()

    # asyncio.Protocol ---------------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.splice.lost(self)

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost follows

    def pause_writing(self) -> None:
        other = self.other
        if not other.lost:
            other.transport.pause_reading()

    def resume_writing(self) -> None:
        other = self.other
        if not other.lost:
            other.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.got_close or self.splice.failed:
            return  # nothing may follow a close
        if self._head:
            data = self._head + data
            self._head = b""
        out: list[bytes] = []
        size = len(data)
        position = 0
        start = 0  # first byte of the run to relay as it is
        while position < size:
            if self._remaining:
                step = min(self._remaining, size - position)
                position += step
                self._remaining -= step
                if not self._remaining and self._fin:
                    self._message_done()
                continue
            if self._control is not None:
                step = min(self._control_size - len(self._control), size - position)
                self._control += data[position : position + step]
                position += step
                start = position
                if len(self._control) == self._control_size:
                    control, self._control = bytes(self._control), None
                    if not self._on_control(control, out):
                        return
                continue
            head = self._read_head(data, position, size)
            if head is None:
                if self.splice.failed:
                    return
                self._head = data[position:]
                break
            opcode, fin, length, head_size = head
            if opcode >= OP_CLOSE:
                if length > _MAX_CONTROL or not fin or opcode > OP_PONG:
                    self.splice.fail(PROTOCOL_ERROR, "bad control frame")
                    return
                if start < position:
                    out.append(data[start:position])
                self._control = bytearray()
                self._control_size = head_size + length
                start = position
                continue
            if not self._data_head(opcode, fin, length):
                return
            position += head_size
            self._remaining = length
            self._fin = bool(fin)
            if not length and fin:
                self._message_done()
        if start < position:
            out.append(data[start:position] if start or position < size else data)
        if out:
            peer = self.other
            if not peer.lost and not peer.sent_close:
                peer.transport.write(out[0] if len(out) == 1 else b"".join(out))

    # parsing ------------------------------------------------------------------

    def _read_head(self, data: bytes, position: int, size: int) -> tuple[int, int, int, int] | None:
        """(opcode, fin, payload length, head size) of the frame at ``position``, or None
        until its whole head is in."""
        if size - position < 2:
            return None
        first, second = data[position], data[position + 1]
        length = second & 0x7F
        head_size = 2 + (2 if length == 126 else 8 if length == 127 else 0)
        if second & 0x80:
            head_size += 4
        if size - position < head_size:
            return None
        if length == 126:
            length = int.from_bytes(data[position + 2 : position + 4], "big")
        elif length == 127:
            length = int.from_bytes(data[position + 2 : position + 10], "big")
        if bool(second & 0x80) is not self.masked or first & 0x70:
            # a client's frames are masked and a server's are not; no extension is
            # negotiated on a spliced socket, so no RSV bit may be set
            self.splice.fail(PROTOCOL_ERROR, "bad frame")
            return None
        return first & 0x0F, first & 0x80, length, head_size

    def _data_head(self, opcode: int, fin: int, length: int) -> bool:
        """Account a data frame's head; False (and the splice failed) if it may not pass."""
        if opcode == OP_CONTINUATION:
            if not self._in_message:
                self.splice.fail(PROTOCOL_ERROR, "continuation of nothing")
                return False
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._in_message:
                self.splice.fail(PROTOCOL_ERROR, "message inside a message")
                return False
            self._in_message = True
            self._message_bytes = 0
        else:
            self.splice.fail(PROTOCOL_ERROR, "reserved opcode")
            return False
        self._message_bytes += length
        if self._message_bytes > self.splice.max_message_bytes:
            self.splice.fail(MESSAGE_TOO_BIG, "message too big")
            return False
        self.bytes_in.inc(length)
        return True

    def _message_done(self) -> None:
        self._in_message = False
        self.messages_in.inc()
        self.splice.last_activity = self.splice.loop.time()

    def _on_control(self, control: bytes, out: list[bytes]) -> bool:
        """A whole control frame from this side's peer: relayed, answered or absorbed.

        False when the socket ended with it (nothing more is read)."""
        opcode = control[0] & 0x0F
        head_size = len(control) - (control[1] & 0x7F)
        payload = control[head_size:]
        if self.masked:
            payload = _unmask(payload, control[head_size - 4 : head_size])
        if opcode == OP_PONG and self.ping is not None and payload == self.ping:
            self.ping = None  # the answer to the gateway's own ping
            return True
        if opcode != OP_CLOSE:
            out.append(control)
            return True
        self.got_close = True
        splice = self.splice
        peer = self.other
        if splice.by is None:
            splice.by = self.name  # this side began the closing handshake
        if out:
            if not peer.lost and not peer.sent_close:
                peer.transport.write(b"".join(out))
            out.clear()
        if not peer.sent_close and not peer.lost:
            peer.transport.write(control)  # its code and reason, as sent
            peer.sent_close = True
        splice.closing()
        if self.sent_close:  # this side's closing handshake is complete
            self.transport.close()
        if peer.got_close and peer.sent_close:
            peer.transport.close()
        return False


class Splice:
    """Two sockets relayed as bytes until both are closed; ``on_end(by)`` then."""

    __slots__ = (
        "_next_ping",
        "_ping_deadline",
        "_timer",
        "backend",
        "by",
        "client",
        "connections",
        "ended",
        "failed",
        "idle_timeout",
        "is_closing",
        "last_activity",
        "loop",
        "max_message_bytes",
        "on_end",
        "ping_interval",
        "ping_timeout",
        "shutdown_grace",
    )

    def __init__(
        self,
        client: asyncio.Transport,
        backend: asyncio.Transport,
        *,
        metrics: RouteSocketMetrics,
        max_message_bytes: int,
        idle_timeout: float,
        ping_interval: float | None,
        ping_timeout: float | None,
        connections: set[Any],
        shutdown_grace: float,
        on_end: Callable[[str], None],
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.client = _End(
            self,
            client,
            name="client",
            masked=True,
            messages_in=metrics.messages_up,
            bytes_in=metrics.bytes_up,
        )
        self.backend = _End(
            self,
            backend,
            name="backend",
            masked=False,
            messages_in=metrics.messages_down,
            bytes_in=metrics.bytes_down,
        )
        self.client.other, self.backend.other = self.backend, self.client
        self.max_message_bytes = max_message_bytes
        self.idle_timeout = idle_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.connections = connections
        self.shutdown_grace = shutdown_grace
        self.on_end = on_end
        self.by: str | None = None  # who began the end: client, backend or gateway
        self.is_closing = False
        self.failed = False
        self.ended = False
        now = self.loop.time()
        self.last_activity = now
        self._next_ping = now + ping_interval if ping_interval else None
        self._ping_deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self, client_bytes: bytes = b"", backend_bytes: bytes = b"") -> None:
        """Take both transports over; bytes either side already sent are relayed first."""
        self.connections.add(self)
        self.client.transport.set_protocol(self.client)
        self.backend.transport.set_protocol(self.backend)
        if backend_bytes:
            self.backend.data_received(backend_bytes)
        if client_bytes:
            self.client.data_received(client_bytes)
        for end in (self.client, self.backend):
            if end.transport.is_closing():  # lost while it was being handed over
                end.lost = True
        if self.client.lost or self.backend.lost:
            self.lost(self.client if self.client.lost else self.backend)
        if not self.ended:
            self._schedule()

    # ending -------------------------------------------------------------------

    def stop(self, reason: str, code: int = GOING_AWAY) -> None:
        """Close both sides with ``code`` (drain, reload, idle): each may answer the close."""
        if self.is_closing or self.ended:
            return
        self.by = self.by or "gateway"
        self.client.send_close(code, reason)
        self.backend.send_close(code, reason)
        self.closing()

    def fail(self, code: int, reason: str) -> None:
        """Close both sides with ``code`` and cut them: a bad frame, a message too big,
        a missed pong. Nothing more is relayed."""
        if self.failed or self.ended:
            return
        self.failed = True
        self.by = self.by or "gateway"
        for end in (self.client, self.backend):
            end.send_close(code, reason)
            if not end.lost:
                end.transport.close()

    def shutdown(self) -> None:
        """The server is stopping: the socket gets the grace, then 1001 (as uvicorn's)."""
        self._next_ping = self._ping_deadline = None
        self.loop.call_later(self.shutdown_grace, self.stop, "server shutting down")

    def closing(self) -> None:
        """A close is under way: the sides get :data:`CLOSE_TIMEOUT` to finish it."""
        if self.is_closing:
            return
        self.is_closing = True
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_later(CLOSE_TIMEOUT, self._cut)

    def _cut(self) -> None:
        self._timer = None
        for end in (self.client, self.backend):
            if not end.lost:
                end.transport.abort()

    def lost(self, end: _End) -> None:
        """``end``'s socket is gone: the other side hears why, and the splice ends with both."""
        other = end.other
        if not other.lost:
            if not end.got_close:
                # vanished without a close: the other side is told, as by the gateway
                self.by = self.by or end.name
                if end is self.client:
                    other.send_close(GOING_AWAY, "client went away")
                else:
                    other.send_close(INTERNAL_ERROR, "backend connection lost")
            if not other.lost:
                other.transport.close()
            return
        if self.ended:
            return
        self.ended = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.connections.discard(self)
        try:
            self.on_end(self.by or end.name)
        except Exception:
            logger.exception("WebSocket splice bookkeeping failed")

    # keepalive and idle -------------------------------------------------------

    def _schedule(self) -> None:
        due = [self.last_activity + self.idle_timeout]
        if self._ping_deadline is not None:
            due.append(self._ping_deadline)
        elif self._next_ping is not None:
            due.append(self._next_ping)
        self._timer = self.loop.call_at(min(due), self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self.is_closing or self.ended:
            return
        now = self.loop.time()
        if now >= self.last_activity + self.idle_timeout:
            self.stop("idle timeout")
            return
        if self._ping_deadline is not None and now >= self._ping_deadline:
            if self.client.ping is not None or self.backend.ping is not None:
                self.fail(INTERNAL_ERROR, "keepalive ping timeout")
                return
            self._ping_deadline = None
        if self._next_ping is not None and now >= self._next_ping and self.ping_interval:
            for end in (self.client, self.backend):
                payload = os.urandom(4)
                if end.send_own(OP_PING, payload):
                    end.ping = payload
            self._next_ping = now + self.ping_interval
            if self.ping_timeout:
                self._ping_deadline = now + self.ping_timeout
        self._schedule()
