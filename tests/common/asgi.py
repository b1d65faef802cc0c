"""In-process HTTP clients for the library's unit tests (the app runs in the test's loop)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from starlette.types import ASGIApp

# asgi_client(app, raise_app_exceptions=True) -> an httpx.AsyncClient talking to app
AsgiClientFactory = Callable[..., httpx.AsyncClient]


def make_asgi_client(app: ASGIApp, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    """A client for ``app`` over httpx's ASGI transport, base URL http://testserver.

    ``raise_app_exceptions=False`` lets an exception that escapes the app show
    up as the response the server would send, as uvicorn would.
    """
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")
