"""Relaying one accepted WebSocket: messages both ways, closes passed through, idle bound.

The relay for a socket that cannot be spliced (:mod:`.splice`, which most are):
a client that negotiated per-message-deflate with the gateway, or one whose
bytes were half parsed when the handover was tried.

Two pumps run side by side, one per direction, and each holds at most one
message: the client-to-backend pump does not ask the server for the next
client message until the backend socket took the last one (uvicorn's protocol
pauses reading the client meanwhile), and the backend-to-client pump does not
take the next backend message until the client's socket drained below its
high-water mark (the backend client's bounded queue then stops reading the
backend). A slow side therefore stops the other side's reads instead of
growing memory.

The first pump to end decides the close: a client's close code and reason go
to the backend, a backend's to the client. Codes that only exist locally
(1005 "no code", 1006 "abnormal") never go on the wire: a client that said
nothing becomes 1000, one that vanished 1001; a backend that vanished becomes
1011 for the client. The gateway closes both sides itself with 1001 when the
socket was idle too long or its backend or route went away (drain, reload,
shutdown), and with 1009 when a message is over the size limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from starlette.types import Receive, Send
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from gatehouse_gateway.websocket.metrics import RouteSocketMetrics

logger = logging.getLogger(__name__)

NORMAL = 1000
GOING_AWAY = 1001
INTERNAL_ERROR = 1011
NO_STATUS = 1005
ABNORMAL = 1006
# Codes an endpoint may not send (RFC 6455 section 7.4.1, 7.4.2).
_NOT_SENDABLE = frozenset({1004, NO_STATUS, ABNORMAL, 1015})


class Ending:
    """How the socket ends: who ended it, and the code and reason the other side gets."""

    __slots__ = ("by", "code", "reason")

    def __init__(self, by: str, code: int, reason: str) -> None:
        self.by = by
        self.code = code
        self.reason = reason


def sendable(code: int, *, vanished: int) -> int:
    """``code`` as a code that may go on the wire (``vanished`` for an abnormal end)."""
    if code == NO_STATUS:
        return NORMAL
    if code in _NOT_SENDABLE or not (1000 <= code <= 4999) or 1016 <= code < 3000:
        return vanished
    return code


def backend_ending(exc: ConnectionClosed) -> Ending:
    """What the client is told when the backend connection closed."""
    if exc.rcvd is not None and (exc.sent is None or exc.rcvd_then_sent):
        return Ending("backend", sendable(exc.rcvd.code, vanished=INTERNAL_ERROR), exc.rcvd.reason)
    if exc.sent is not None:  # the gateway's side closed it: too big, ping timeout
        return Ending("gateway", sendable(exc.sent.code, vanished=INTERNAL_ERROR), exc.sent.reason)
    return Ending("backend", INTERNAL_ERROR, "backend connection lost")


class Bridge:
    """Relays between the ASGI client socket and the backend connection until one ends.

    The backend-to-client pump runs in the caller's task and the other pump in
    one task of its own: whichever ends first, or :meth:`stop`, records the
    ending and cancels the caller's pump (``recv`` and ``send`` are safe to
    cancel: nothing is lost that was not meant to be dropped by the close).
    One task per socket instead of three is memory a gateway holding
    thousands of idle sockets keeps.
    """

    __slots__ = (
        "_ending",
        "_runner",
        "_timer",
        "idle_timeout",
        "last_activity",
        "loop",
        "metrics",
        "receive",
        "send",
        "upstream",
    )

    def __init__(
        self,
        receive: Receive,
        send: Send,
        upstream: ClientConnection,
        metrics: RouteSocketMetrics,
        idle_timeout: float,
    ) -> None:
        self.receive = receive
        self.send = send
        self.upstream = upstream
        self.metrics = metrics
        self.idle_timeout = idle_timeout
        self.loop = asyncio.get_running_loop()
        self.last_activity = self.loop.time()
        self._ending: Ending | None = None
        self._runner: asyncio.Task[Any] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def stop(self, reason: str, code: int = GOING_AWAY) -> None:
        """End the socket from outside (drain, reload, idle): both sides get ``code``."""
        self._end(Ending("gateway", code, reason))

    def _end(self, ending: Ending) -> None:
        if self._ending is not None:
            return
        self._ending = ending
        if self._runner is not None:
            self._runner.cancel()

    def _client_side_done(self, task: asyncio.Task[Ending]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            self._end(task.result())
        else:  # a bug, not a peer: say so, and close both sides
            logger.error("WebSocket relay failed", exc_info=error)
            self._end(Ending("gateway", INTERNAL_ERROR, "internal error"))

    async def run(self) -> Ending:
        ending = self._ending or await self._relay()
        if self._ending is not None:  # the other pump or stop() came first
            ending = self._ending
        self._ending = ending
        if ending.by != "client":
            await self._close_client(ending)
        if ending.by != "backend":
            await self._close_backend(ending)
        return ending

    async def _relay(self) -> Ending:
        """Both pumps until one ends (or :meth:`stop`); the ending they or it gave."""
        runner = self._runner = asyncio.current_task()
        self._timer = self.loop.call_at(self.last_activity + self.idle_timeout, self._check_idle)
        up = self.loop.create_task(self._client_to_backend())
        up.add_done_callback(self._client_side_done)
        try:
            return await self._backend_to_client()
        except asyncio.CancelledError:
            if self._ending is None or runner is None:
                raise  # cancelled from outside: not one of ours
            runner.uncancel()
            return self._ending
        finally:
            self._runner = None
            if self._timer is not None:
                self._timer.cancel()
            up.remove_done_callback(self._client_side_done)
            up.cancel()

    def _check_idle(self) -> None:
        deadline = self.last_activity + self.idle_timeout
        if self.loop.time() >= deadline:
            self._timer = None
            self.stop("idle timeout")
        else:
            self._timer = self.loop.call_at(deadline, self._check_idle)

    async def _client_to_backend(self) -> Ending:
        receive = self.receive
        upstream = self.upstream
        messages = self.metrics.messages_up
        counted = self.metrics.bytes_up
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                data: str | bytes | None = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                messages.inc()
                counted.inc(len(data))
                self.last_activity = self.loop.time()
                try:
                    await upstream.send(data)
                except ConnectionClosed as exc:
                    return backend_ending(exc)
            elif kind == "websocket.disconnect":
                code = sendable(message.get("code", NORMAL), vanished=GOING_AWAY)
                return Ending("client", code, message.get("reason") or "")

    async def _backend_to_client(self) -> Ending:
        send = self.send
        upstream = self.upstream
        messages = self.metrics.messages_down
        counted = self.metrics.bytes_down
        while True:
            try:
                data = await upstream.recv()
            except ConnectionClosed as exc:
                return backend_ending(exc)
            messages.inc()
            counted.inc(len(data))
            self.last_activity = self.loop.time()
            event: dict[str, Any] = {"type": "websocket.send"}
            event["text" if isinstance(data, str) else "bytes"] = data
            try:
                await send(event)
            except (OSError, RuntimeError):  # the client is gone or closing
                return Ending("client", GOING_AWAY, "client went away")

    async def _close_client(self, ending: Ending) -> None:
        with contextlib.suppress(OSError, RuntimeError):  # already gone
            await self.send(
                {"type": "websocket.close", "code": ending.code, "reason": ending.reason}
            )

    async def _close_backend(self, ending: Ending) -> None:
        try:
            await self.upstream.close(ending.code, ending.reason)
        except Exception:  # closing is best effort: the socket may be gone
            logger.debug("closing a backend WebSocket failed", exc_info=True)
