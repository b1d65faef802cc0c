"""The gateway's ASGI application: lifespan, the admin listener, everything else proxied.

The gateway listens twice: the public listener only proxies, and the admin
listener (loopback by default, like Envoy's admin port) serves the gateway's
own endpoints under ``/-/`` (health, config, metrics, the operator API and
dashboard) and proxies the rest, so the dashboard can sign in through the
auth route. Which listener a request came in on is the port of the socket
that accepted it (``scope["server"]``), never anything the client wrote.

A raw ASGI callable on purpose: one comparison sends a request to FastAPI or
straight to the proxy, without FastAPI's routing and middleware in the way of
proxied traffic.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

from gatehouse_common.error_shape import error_body
from gatehouse_common.logs import configure_logging
from gatehouse_gateway.admin_front import PREFIX, AdminFront
from gatehouse_gateway.config.loader import LoadedConfig, load_config
from gatehouse_gateway.heap import freeze_long_lived, thaw
from gatehouse_gateway.metrics import render_metrics
from gatehouse_gateway.proxy import Proxy
from gatehouse_gateway.reload import ConfigReloader
from gatehouse_gateway.runtime import Gateway
from gatehouse_gateway.settings import GatewaySettings

# registered at start as before (a scrape shows the WebSocket series before the
# first handshake builds the proxy); only prometheus_client, not `websockets`
from gatehouse_gateway.websocket import metrics as _websocket_metrics  # noqa: F401

if TYPE_CHECKING:
    from gatehouse_gateway.websocket.handler import WebSocketProxy

logger = logging.getLogger(__name__)

_ADMIN_PREFIX = PREFIX + "/"
_STARTING = error_body("starting", "the gateway is starting")


async def send_unavailable(send: Send) -> None:
    """The answer before the gateway has started (its lifespan runs first, so rarely)."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_STARTING)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _STARTING})


async def metrics_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """``/metrics`` on any host no route claims, as the original app answered it."""
    body, content_type = render_metrics()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class GatewayApp:
    """What uvicorn serves."""

    def __init__(self, settings: GatewaySettings, loaded: LoadedConfig) -> None:
        self.settings = settings
        self.loaded = loaded
        self.admin_port = settings.admin_listener(loaded.config.admin)[1]
        self.gateway: Gateway | None = None
        self.proxy: Proxy | None = None
        self.websocket: WebSocketProxy | None = None
        self.admin = AdminFront(lambda: self.gateway)
        self._reloader: ConfigReloader | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            server = scope.get("server")
            if (
                server is not None
                and server[1] == self.admin_port
                and (scope["path"].startswith(_ADMIN_PREFIX) or self.proxy is None)
            ):
                await self.admin(scope, receive, send)
            elif self.proxy is not None:
                await self.proxy(scope, receive, send)
            else:
                await send_unavailable(send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            gateway = self.gateway
            if (
                gateway is None
                or not self.settings.ws_enabled
                or scope["path"].startswith(_ADMIN_PREFIX)
            ):
                await send({"type": "websocket.close", "code": 1008})  # a 403 before the upgrade
                return
            if self.websocket is None:  # built on the first one, as its server protocol is
                self.websocket = websocket_proxy(gateway, self.settings)
            await self.websocket(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._startup()
                except Exception as exc:
                    logger.exception("gateway failed to start")
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _startup(self) -> None:
        gateway = Gateway(self.settings, self.loaded)
        await gateway.start()
        self.gateway = gateway
        self.proxy = Proxy(gateway, metrics_endpoint)
        self._reloader = ConfigReloader(gateway, watch=self.settings.watch_config)
        self._reloader.start()
        freeze_long_lived()

    async def _shutdown(self) -> None:
        if self._reloader is not None:
            await self._reloader.stop()
        if self.gateway is not None:
            await self.gateway.close()
        thaw()


def websocket_proxy(gateway: Gateway, settings: GatewaySettings) -> WebSocketProxy:
    """The ``websocket`` scope's handler, with the limits the server enforces downstream.

    Made on the first WebSocket handshake: it and `websockets` are ~1 MB that a
    worker serving HTTP alone need not hold (loadtest/README.md, "Memory").
    """
    from gatehouse_gateway.websocket.handler import WebSocketProxy

    return WebSocketProxy(
        gateway,
        max_message_bytes=settings.ws_max_message_bytes,
        ping_interval=settings.ws_ping_interval or None,
        ping_timeout=settings.ws_ping_timeout or None,
        idle_timeout=settings.ws_idle_timeout,
    )


def create_app(settings: GatewaySettings | None = None) -> GatewayApp:
    """The uvicorn factory (``gatehouse_gateway.app:create_app``); run once per worker."""
    settings = settings or GatewaySettings()
    configure_logging(
        settings.service_name,
        level=settings.log_level,
        json=settings.log_json,
        health_checks=settings.log_health_checks,
    )
    loaded = load_config(
        settings.config, auth_url=settings.auth_url, accounts_ui_url=settings.accounts_ui_url
    )
    return GatewayApp(settings, loaded)
