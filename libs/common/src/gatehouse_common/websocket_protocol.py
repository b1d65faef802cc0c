"""WebSocket for the services that take it, behind the same edge limits as HTTP.

A handshake is an HTTP request first: :class:`~gatehouse_common.edge_protocol.
EdgeHttpToolsProtocol` parses its head under the head size, line count and
head time limits, and only a complete ``GET`` with ``Upgrade: websocket`` (and
no body) is handed to the WebSocket protocol. That protocol is uvicorn's
sans-I/O one on the `websockets` library (``websockets-sansio``): it reads one
message at a time and pauses the socket until the app has taken it, waits for
the socket to drain before writing the next one, and refuses a message over
``max_message_bytes`` with close code 1009 as the frames arrive, not once the
whole message is buffered. wsproto, the other choice, buffers the whole message
first and has no pong timeout of its own; the legacy ``websockets`` one is
deprecated by its library.

Only uvicorn's public protocol class is subclassed, for three things. An
accepted socket drops its handshake request and answer (uvicorn never reads
them again; thousands of idle sockets would keep them all). A handshake
refused with an HTTP answer (the ``websocket.http.response`` extension)
counts as complete, so uvicorn does not log an error for each one. And a
shutdown:
uvicorn closes every open socket with 1012 the moment it stops; here an open
socket gets ``drain_timeout`` more seconds (never past the server's graceful
timeout) to finish, then is closed with 1001 "going away", as a drained
backend's sockets are by the gateway.

per-message-deflate is off by default: it costs tens of KiB of zlib state per
socket (a gateway holding 10,000 sockets would spend hundreds of MB on it), and
compressing attacker-influenced data next to secrets opens CRIME/BREACH-style
length oracles. A service can turn it on (``ws_per_message_deflate``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol, State

from gatehouse_common.websocket_limits import DEFAULT_WEBSOCKET_LIMITS, WebSocketLimits

GOING_AWAY = 1001
# The ASGI extension an accepted socket offers: {"detach": callable} (see detach()).
DETACH_EXTENSION = "gatehouse.websocket.detach"


def at_frame_boundary(protocol: Protocol) -> bool:
    """Whether ``protocol``'s parser holds no byte of a frame it has not finished.

    The `websockets` parser consumes a frame's head before its payload has
    arrived; it is between frames only while it waits in ``at_eof`` for the
    next byte with nothing buffered. Anything else (or a library whose parser
    looks otherwise) is "not at a boundary", which keeps the socket where it is.
    """
    if protocol.reader.buffer:
        return False
    generator: Any = protocol.parser
    for _ in range(8):  # parse -> at_eof: a short chain
        inner = getattr(generator, "gi_yieldfrom", None)
        if inner is None:
            break
        generator = inner
    code = getattr(generator, "gi_code", None)
    return code is not None and code.co_name == "at_eof"


@dataclass(frozen=True, slots=True)
class Detached:
    """An accepted socket handed over by :meth:`EdgeWebSocketProtocol.detach`.

    ``connections`` is the server's set of open connections: the new owner adds
    an object with a ``shutdown()`` method in its place (uvicorn calls it on
    shutdown and counts the set against ``max_connections``) and removes it when
    the socket ends. ``shutdown_grace`` is how long a shutdown lets it finish
    before closing it with 1001, as :meth:`EdgeWebSocketProtocol.shutdown` does.
    """

    transport: asyncio.Transport
    connections: set[Any]
    shutdown_grace: float


class _HandedOver:
    """Stands in for the transport a detached protocol gave away: uvicorn closes its
    protocol's transport when the app returns, which must not close the socket."""

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return True

    def write(self, data: bytes) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


_HANDED_OVER = _HandedOver()


class EdgeWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol whose open sockets outlive a shutdown briefly,
    and which an app may take an accepted socket's transport from (:meth:`detach`)."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and self.initial_response is None and not self.close_sent:
            scope["extensions"][DETACH_EXTENSION] = {"detach": self.detach}

    def detach(self) -> Detached | None:
        """Give the accepted socket's transport to the caller, or None if it cannot be.

        For an app that relays frames as bytes once both ends are open (the
        gateway): nothing of this protocol is kept per socket after it. Only a
        socket with nothing received after the handshake, no extension
        negotiated (per-message-deflate rewrites frames) and no close under way
        can be handed over; this protocol then forgets it (no keepalive, no
        close when the app returns) and the caller owns the transport.
        """
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.read_paused
            or self.initial_response is not None
            or self.conn.state is not State.OPEN
            or self.conn.extensions
            or self.frames
            or not self.queue.empty()
            or not at_frame_boundary(self.conn)
        ):
            return None
        transport = self.transport
        self.stop_keepalive()
        self.connections.discard(self)
        self.transport = _HANDED_OVER  # type: ignore[assignment]
        self.disconnected = True  # a send() after this raises ClientDisconnected
        self.scope["extensions"].pop(DETACH_EXTENSION, None)
        return Detached(transport, self.connections, self._shutdown_grace())

    def _shutdown_grace(self) -> float:
        limits: WebSocketLimits = getattr(self.config, "websocket_limits", DEFAULT_WEBSOCKET_LIMITS)
        # uvicorn cancels the app after its graceful timeout: close before that
        graceful = self.config.timeout_graceful_shutdown
        grace = limits.drain_timeout
        if graceful is not None:
            grace = max(0.0, min(grace, graceful - 1.0))
        return grace

    async def send(self, message: Any) -> None:
        await super().send(message)
        kind = message["type"]
        if kind == "websocket.accept" and self.handshake_complete:
            # uvicorn reads neither again: an open socket need not keep its handshake
            del self.request, self.response
        elif kind == "websocket.http.response.body" and not message.get("more_body"):
            # a handshake answered with an HTTP status is complete: uvicorn would
            # log an error for each one, and a client could flood the log with them
            self.handshake_complete = True

    def shutdown(self) -> None:
        if not self.handshake_complete or self.close_sent or self.initial_response is not None:
            super().shutdown()
            return
        self.stop_keepalive()
        self.loop.call_later(self._shutdown_grace(), self.go_away, "server shutting down")

    def go_away(self, reason: str) -> None:
        """Close with 1001; the app's ``receive()`` answers ``websocket.disconnect`` 1001."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.stop_keepalive()
        self.queue.put_nowait(
            {"type": "websocket.disconnect", "code": GOING_AWAY, "reason": reason}
        )
        self.conn.send_close(GOING_AWAY, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)
