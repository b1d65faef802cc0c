"""ASGI middleware every service runs: request id in and out, and one access line.

Pure ASGI rather than ``BaseHTTPMiddleware`` so streamed bodies pass through
untouched and the per-request cost stays a few dictionary operations.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatehouse_common.request_id import REQUEST_ID_HEADER, accept_request_id, request_id_var

access_logger = logging.getLogger("gatehouse.access")
_HEADER_KEY = REQUEST_ID_HEADER.encode("latin-1")


class RequestContextMiddleware:
    """Binds the request id for the request's lifetime and returns it as ``X-Request-ID``."""

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_id = None
        for name, value in scope["headers"]:
            if name == _HEADER_KEY:
                raw_id = value
                break
        request_id = accept_request_id(raw_id)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_code = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != _HEADER_KEY]
                headers.append((_HEADER_KEY, request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log and access_logger.isEnabledFor(logging.INFO):
                access_logger.info(
                    "%s %s %d",
                    scope["method"],
                    scope["path"],
                    status_code,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status_code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                        "client": (scope.get("client") or ("", 0))[0],
                    },
                )
            request_id_var.reset(token)
