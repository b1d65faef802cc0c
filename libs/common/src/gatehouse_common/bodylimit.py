"""Refuse request bodies over a size limit with 413, before anything parses them.

The services' endpoints take small JSON documents (auth) or small forms (the
accounts page), so a large body is either a mistake or an attack on a parser.
A declared Content-Length over the limit is refused before a byte is read (and
the server's lingering close lets the client read the answer); a chunked body
is counted as it streams and refused as soon as it crosses the limit. This
runs before FastAPI parses a body: a form field over Starlette's own part
limit would otherwise be a 400 from the parser instead of the 413.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatehouse_common.errors import error_response


class PayloadTooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException so FastAPI's body parsing passes it on."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, f"the body is over {max_bytes} bytes")


async def _too_large(_: Request, exc: Exception) -> Response:
    detail = exc.detail if isinstance(exc, PayloadTooLarge) else "the body is too large"
    return error_response(
        status.HTTP_413_CONTENT_TOO_LARGE,
        "payload_too_large",
        str(detail),
        headers={"Connection": "close"},
    )


def install_body_limit(app: FastAPI, max_bytes: int) -> None:
    """Add the middleware and the handler that answers its 413 as JSON."""
    app.add_exception_handler(PayloadTooLarge, _too_large)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_bytes)


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await _too_large(Request(scope), PayloadTooLarge(self.max_bytes))
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)
