"""Running a service under uvicorn, the same way for every service.

Every connection is held to the edge limits of the service's settings
(:mod:`gatehouse_common.edge_protocol`): the limits ride in the uvicorn config
(:class:`EdgeConfig`), which uvicorn pickles into each worker process, so no
global carries them.

The listening sockets are bound here, the main one and any extra listeners,
and handed to every worker: each serves the same app on all of them, and the
app tells them apart by ``scope["server"][1]``, the port the connection came in
on.

Graceful shutdown is uvicorn's: on SIGTERM (or SIGINT) it closes the listening
sockets, lets in-flight requests finish for up to ``graceful_timeout`` seconds,
runs the app's lifespan shutdown, then exits. With several workers the parent
forwards the signal to each one.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from gatehouse_common.edge_limits import EdgeLimits
from gatehouse_common.edge_protocol import CoalescingEdgeHttpToolsProtocol, EdgeHttpToolsProtocol
from gatehouse_common.settings import ServiceSettings
from gatehouse_common.websocket_protocol import EdgeWebSocketProtocol, WebSocketLimits

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKER_HEALTHCHECK_SECONDS = 60
logger = logging.getLogger("uvicorn.error")


class EdgeConfig(uvicorn.Config):
    """A uvicorn config that carries the :class:`EdgeLimits` its protocol reads
    (and the :class:`WebSocketLimits` of a service that takes WebSocket)."""

    def __init__(
        self,
        app: Any,
        *,
        edge_limits: EdgeLimits,
        websocket_limits: WebSocketLimits | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.edge_limits = edge_limits
        self.websocket_limits = websocket_limits


def _prepare_multiprocess_metrics(workers: int) -> None:
    """With several workers each has its own registry; prometheus_client then
    needs a shared directory to aggregate them at scrape time."""
    if workers > 1 and not os.environ.get(_MULTIPROC_ENV):
        os.environ[_MULTIPROC_ENV] = tempfile.mkdtemp(prefix="gatehouse-metrics-")


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)``, as uvicorn binds its own; workers listen on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        logger.error("cannot listen on %s:%d: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)
    sock.set_inheritable(True)
    logger.info("listening on %s:%d", host, sock.getsockname()[1])
    return sock


def _websocket_options(limits: WebSocketLimits | None) -> dict[str, Any]:
    """uvicorn's ``ws*`` options: off (an Upgrade request is read as plain HTTP,
    body included, instead of going to a handshake no app completes), or
    :class:`EdgeWebSocketProtocol` held to ``limits``."""
    if limits is None:
        return {"ws": "none"}
    return {
        "ws": EdgeWebSocketProtocol,
        "ws_max_size": limits.max_message_bytes,
        "ws_ping_interval": limits.ping_interval,
        "ws_ping_timeout": limits.ping_timeout,
        "ws_per_message_deflate": limits.per_message_deflate,
    }


def edge_config(
    app_factory: str, settings: ServiceSettings, *, fast: bool = False, websocket: bool = False
) -> EdgeConfig:
    """The uvicorn config :func:`serve` runs ``app_factory`` with."""
    ws_limits = WebSocketLimits.from_settings(settings) if websocket else None
    return EdgeConfig(
        app_factory,
        edge_limits=EdgeLimits.from_settings(settings),
        websocket_limits=ws_limits,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        log_level=settings.log_level,
        access_log=False,
        # uvicorn types these as whole seconds; round up so a grace period is never cut short
        timeout_graceful_shutdown=math.ceil(settings.graceful_timeout),
        timeout_keep_alive=math.ceil(settings.keepalive_timeout),
        loop="uvloop" if fast else "auto",
        http=CoalescingEdgeHttpToolsProtocol if fast else EdgeHttpToolsProtocol,
        **_websocket_options(ws_limits),
        server_header=False,
        date_header=True,
        # FORWARDED_ALLOW_IPS="" (the gateway's default) trusts no proxy, so uvicorn's
        # proxy-headers middleware could never change a request: leave its per-request
        # cost out (4.6% of the gateway's py-spy samples, loadtest/README.md).
        proxy_headers=os.environ.get("FORWARDED_ALLOW_IPS") != "",
        # With --workers the supervisor kills a worker that has not answered its
        # health ping in this many seconds, starting ones included: uvicorn's 5 s
        # default restarts workers forever on a busy host or a small CPU limit,
        # where importing a service alone takes longer.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )


def serve(
    app_factory: str,
    settings: ServiceSettings,
    *,
    fast: bool = False,
    extra_listeners: Sequence[tuple[str, int]] = (),
    websocket: bool = False,
) -> None:
    """Serve ``app_factory`` (an import string ``module:function``) with ``settings``.

    Every service gets the edge limits of its settings. ``fast`` selects uvloop,
    the fastest event loop uvicorn offers, and writes a small response's head
    and body together (:mod:`gatehouse_common.http_protocol`), for the services
    on the request path. ``extra_listeners`` are more ``(host, port)`` sockets
    served by the same app in every worker (the gateway's admin listener).
    ``websocket`` turns WebSocket handshakes on (:mod:`gatehouse_common.websocket_protocol`);
    off, an ``Upgrade`` request is plain HTTP.
    """
    _prepare_multiprocess_metrics(settings.workers)
    config = edge_config(app_factory, settings, fast=fast, websocket=websocket)
    sockets = [bind_listener(settings.host, settings.port)]
    sockets += [bind_listener(host, port) for host, port in extra_listeners]
    server = uvicorn.Server(config)
    try:
        if config.workers > 1:
            Multiprocess(config, sockets=sockets).run()
        else:
            server.run(sockets=sockets)
    except KeyboardInterrupt:
        pass
    finally:
        for sock in sockets:
            sock.close()
    if config.workers == 1 and not server.started:
        sys.exit(STARTUP_FAILURE)
