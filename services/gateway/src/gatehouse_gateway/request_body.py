"""A proxied request's body: read whole before a backend is picked, or streamed from ``receive``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.types import Receive

from gatehouse_gateway.outcome import Outcome


class RequestBody:
    """The request body for the upstream client.

    A buffered body can be sent again, so it never stops a retry; a streamed
    one has ``started`` once its first byte left the client. ``too_large`` and
    ``disconnected`` say why an upload stopped, which then decides the answer
    rather than the upstream error it caused.
    """

    __slots__ = ("buffered", "disconnected", "limit", "receive", "started", "too_large")

    def __init__(self, receive: Receive, limit: int | None) -> None:
        self.receive = receive
        self.limit = limit
        self.started = False
        self.too_large = False
        self.disconnected = False
        self.buffered: bytes | None = None

    @property
    def problem(self) -> Outcome | None:
        """The client's side failed (over the limit, or gone): that, not the backend, ends it."""
        if self.too_large:
            return Outcome.BODY_TOO_LARGE
        if self.disconnected:
            return Outcome.CLIENT_GONE
        return None

    async def buffer(self) -> Outcome | None:
        """Read the whole body now; None, or the outcome that ends the request."""
        parts: list[bytes] = []
        received = 0
        limit = self.limit
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                # gone, or the server's body idle timeout answered 408
                self.disconnected = True
                return Outcome.CLIENT_GONE
            chunk = message.get("body", b"")
            if chunk:
                received += len(chunk)
                if limit is not None and received > limit:
                    self.too_large = True
                    return Outcome.BODY_TOO_LARGE
                parts.append(chunk)
            if not message.get("more_body", False):
                self.buffered = b"".join(parts)
                return None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body for one attempt: the buffered bytes again, or the stream (once)."""
        if self.buffered is not None:
            yield self.buffered
            return
        self.started = True
        received = 0
        limit = self.limit
        receive = self.receive
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                raise ConnectionAbortedError("the client went away mid-upload")
            chunk = message.get("body", b"")
            if chunk:
                received += len(chunk)
                if limit is not None and received > limit:
                    self.too_large = True
                    raise ValueError("request body over the route's limit")
                yield chunk
            if not message.get("more_body", False):
                return
