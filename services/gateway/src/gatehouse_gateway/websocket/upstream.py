"""The backend side of a proxied WebSocket: one connection per client socket.

It is made with the `websockets` library's asyncio client rather than the
gateway's pooled HTTP/1.1 client: a WebSocket connection is never pooled nor
reused, and after the 101 the library gives what a hand-written layer would
have to rebuild (frame parsing and masking, fragmented messages, ping/pong,
the closing handshake with its timeout, a per-message size limit enforced as
frames arrive, and a bounded receive queue that stops reading the socket when
full, which is the backpressure from a slow client to the backend).

Extensions are negotiated per hop: the gateway terminates the client's
WebSocket and opens its own to the backend, so it offers the backend no
per-message-deflate (compressing on one hop only would cost the gateway CPU
for nothing the client sees).

A ``wss`` backend is reached with its route's ``tls`` block, the very
context the HTTP path's pools use (:mod:`gatehouse_gateway.upstream.tls`): the
route's CA bundle, client certificate and ``server_name``, so a route's trust
is one setting whatever the request upgrades to.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.http11 import Request
from websockets.protocol import State
from websockets.typing import Origin, Subprotocol

from gatehouse_common.websocket_protocol import at_frame_boundary
from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.outcome import Outcome
from gatehouse_gateway.upstream.h1.connection import tls_error

# Received frames held per socket before the library stops reading the backend.
_MAX_QUEUE = 4
# Bytes written but not yet sent before ``send`` waits (the client's backpressure).
_WRITE_LIMIT = 64 * 1024
# A backend's refusal body relayed to the client at most this long.
MAX_REFUSAL_BODY = 16 * 1024
# Links of an exception's cause chain searched for a TLS failure (a chain may loop).
_MAX_CAUSES = 8


class Rejected(Exception):
    """The backend answered the handshake with something other than 101."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        super().__init__(f"backend answered {status}")
        self.status = status
        self.headers = headers
        self.body = body


class BadTarget(Exception):
    """The client's request target is no URI the backend can be asked for (a ``#``)."""


class Unreachable(Exception):
    """No connection, or no valid handshake answer, from the backend.

    ``outcome`` is the HTTP path's for the same failure (``CONNECT_FAILED`` or
    ``TLS_FAILED``), so both paths count and answer it alike; ``error`` is
    what :func:`gatehouse_gateway.answers.failure_body` names in the answer.
    """

    def __init__(self, outcome: Outcome, error: BaseException) -> None:
        super().__init__(str(error))
        self.outcome = outcome
        self.error = error


class _BackendConnection(ClientConnection):
    """The library's connection, keeping a TLS failure that ends a handshake.

    With TLS 1.3 a backend refuses a client certificate after the client's
    side of the handshake is done: the connection is then lost with the
    ``SSLError`` while the library waits for the 101, and it raises "no valid
    response" caused by an EOF, which would hide why. The TLS error is made its
    cause here, so the client is answered ``upstream_tls_failed`` as on the
    HTTP path.
    """

    # what the connection was lost with (recorded here: websockets 15.0 keeps no copy)
    lost_with: BaseException | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_with = exc
        super().connection_lost(exc)

    async def handshake(
        self, additional_headers: Any = None, user_agent_header: str | None = None
    ) -> None:
        """The library's handshake, with a ``Host`` among the headers sent *instead*
        of the URI's (a route that preserves the client's), not as a second one."""
        extra = list(additional_headers or ())
        host = next((value for name, value in extra if name.lower() == "host"), None)
        if host is not None:
            extra = [(name, value) for name, value in extra if name.lower() != "host"]
            build = self.protocol.connect

            def connect_as_host() -> Request:
                request = build()
                del request.headers["Host"]
                request.headers["Host"] = host
                return request

            self.protocol.connect = connect_as_host  # type: ignore[method-assign]
        try:
            await super().handshake(extra, user_agent_header)
        except InvalidHandshake as exc:
            lost = self.lost_with
            if isinstance(lost, ssl.SSLError):  # the cause, not the EOF it made
                raise exc from lost
            raise


def websocket_url(backend: BackendState, target: bytes) -> str:
    base = backend.base_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[8:]
    elif base.startswith("http://"):
        base = "ws://" + base[7:]
    return base + target.decode("latin-1")


async def open_backend(
    backend: BackendState,
    target: bytes,
    *,
    headers: Sequence[tuple[bytes, bytes]],
    subprotocols: list[str],
    origin: bytes | None,
    open_timeout: float,
    max_message_bytes: int,
    ping_interval: float | None,
    ping_timeout: float | None,
) -> ClientConnection:
    """Open the WebSocket to ``backend``; raises :class:`Rejected`, :class:`Unreachable`,
    :class:`BadTarget` or ``TimeoutError``."""
    tls: dict[str, Any] = {}
    if backend.tls is not None:  # set for https:// backends only, so the URI is wss
        tls["ssl"] = backend.tls.context
        if backend.tls.server_name:
            tls["server_hostname"] = backend.tls.server_name
    try:
        connecting = connect(
            websocket_url(backend, target),
            origin=Origin(origin.decode("latin-1")) if origin else None,
            subprotocols=[Subprotocol(s) for s in subprotocols] or None,
            compression=None,
            additional_headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
            user_agent_header=None,
            proxy=None,
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=5,
            max_size=max_message_bytes,
            max_queue=_MAX_QUEUE,
            write_limit=_WRITE_LIMIT,
            create_connection=_BackendConnection,
            **tls,
        )
    except InvalidURI as exc:
        raise BadTarget(str(exc)) from None
    try:
        return await connecting
    except InvalidStatus as exc:
        response = exc.response
        kept = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in response.headers.raw_items()
            if name.lower() in ("content-type", "www-authenticate", "retry-after")
        ]
        body = bytes(response.body or b"")[:MAX_REFUSAL_BODY]
        raise Rejected(response.status_code, kept, body) from None
    except (OSError, InvalidHandshake) as exc:
        raise _unreachable(exc) from exc


def _unreachable(exc: BaseException) -> Unreachable:
    """A TLS failure (raised, or the cause of a broken handshake answer: with TLS 1.3
    a refused client certificate arrives after the handshake) or a connect failure."""
    cause: BaseException | None = exc
    for _ in range(_MAX_CAUSES):
        if cause is None:
            break
        if isinstance(cause, ssl.SSLError):
            return Unreachable(Outcome.TLS_FAILED, tls_error(cause))
        cause = cause.__cause__ or cause.__context__
    return Unreachable(Outcome.CONNECT_FAILED, exc)


def can_detach(connection: ClientConnection) -> bool:
    """Whether :func:`detach` can take ``connection``'s transport (no side effect).

    Open, no extension, nothing half parsed, not paused either way, no reader
    waiting: the frames it already received are re-sent as they came.
    """
    protocol = connection.protocol
    messages = connection.recv_messages
    return (
        protocol.state is State.OPEN
        and not protocol.extensions
        and not connection.paused
        and not messages.paused
        and not messages.get_in_progress
        and at_frame_boundary(protocol)
    )


def detach(connection: ClientConnection) -> tuple[asyncio.Transport, bytes]:
    """Take the transport of an open backend connection :func:`can_detach` allowed.

    Returns it with the frames the library had already read from the backend
    (a greeting sent with the 101, say), serialized again as the backend sent
    them, for the new owner to relay first. The library's keepalive stops; the
    connection object is garbage once the caller lets go of it.
    """
    task = connection.keepalive_task
    if task is not None:
        task.cancel()
        connection.keepalive_task = None
    queue = connection.recv_messages.frames.queue
    pending = b"".join(frame.serialize(mask=False) for frame in queue)
    queue.clear()
    return connection.transport, pending
