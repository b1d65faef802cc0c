"""Running a service under uvicorn, the same way for every service.

Every connection is held to the edge limits of the service's settings
(:mod:`gatehouse_common.edge_protocol`): the limits ride in the uvicorn config
(:class:`EdgeConfig`), which uvicorn pickles into each worker process, so no
global carries them.

The listening sockets are bound here, the main one and any extra listeners,
and handed to every worker: each serves the same app on all of them, and the
app tells them apart by ``scope["server"][1]``, the port the connection came in
on.

Further listeners can speak more than plain HTTP/1.1 (:class:`ListenerSpec`:
TLS with certificates chosen by SNI, HTTP/2 by ALPN or prior knowledge, an
HTTPS redirect, HSTS): then every connection starts in
:class:`gatehouse_common.listener_protocol.ListenerProtocol`, which picks the
protocol for the listener and steps aside. Each worker reads the certificates
when it loads the app; SIGHUP (forwarded by the supervisor to every worker
instead of uvicorn's restart of all workers) makes the next handshake read
them again, as a change of the files' modification times does.

Graceful shutdown is uvicorn's: on SIGTERM (or SIGINT) it closes the listening
sockets, lets in-flight requests finish for up to ``graceful_timeout`` seconds,
runs the app's lifespan shutdown, then exits. With several workers the parent
forwards the signal to each one.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from gatehouse_common.edge_limits import EdgeLimits
from gatehouse_common.edge_protocol import CoalescingEdgeHttpToolsProtocol, EdgeHttpToolsProtocol
from gatehouse_common.listeners import ListenerSpec
from gatehouse_common.settings import ServiceSettings
from gatehouse_common.websocket_limits import WebSocketLimits

if TYPE_CHECKING:
    from gatehouse_common.listener_protocol import ListenerRuntime

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKER_HEALTHCHECK_SECONDS = 60
logger = logging.getLogger("uvicorn.error")


class EdgeConfig(uvicorn.Config):
    """A uvicorn config that carries the :class:`EdgeLimits` its protocol reads,
    the further listeners (:class:`ListenerSpec`) with what they speak, and the
    :class:`WebSocketLimits` of a service that takes WebSocket."""

    def __init__(
        self,
        app: Any,
        *,
        edge_limits: EdgeLimits,
        listeners: Sequence[ListenerSpec] = (),
        websocket_limits: WebSocketLimits | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.edge_limits = edge_limits
        self.websocket_limits = websocket_limits
        self.listeners = tuple(listeners)
        self._runtimes: dict[int, ListenerRuntime] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # TLS contexts do not pickle: each worker reads the certificates itself (load())
        state = self.__dict__.copy()
        state["_runtimes"] = None
        return state

    def load(self) -> None:
        super().load()
        # the HTTP/1.1 protocol; ListenerProtocol in front of it when a listener needs one
        self.h1_protocol_class = self.http_protocol_class
        if not self.listeners:
            return
        # imported only here: TLS, HTTP/2 (h2, hpack) and their apps are ~3 MB a
        # worker without such a listener need not hold (loadtest/README.md, "Memory")
        from gatehouse_common.listener_protocol import ListenerProtocol, build_runtimes

        if any(not spec.plain_http1 for spec in self.listeners):
            self.http_protocol_class = ListenerProtocol
        try:
            self._runtimes = build_runtimes(self.listeners, self.loaded_app)
        except (OSError, ssl.SSLError, ValueError) as exc:
            logger.error("cannot read a listener's certificates: %s", exc)
            sys.exit(STARTUP_FAILURE)
        stores = [r.store for r in self._runtimes.values() if r.store is not None]
        if stores and threading.current_thread() is threading.main_thread():

            def reload_certificates(_sig: int, _frame: FrameType | None) -> None:
                for store in stores:
                    store.request_reload()

            signal.signal(signal.SIGHUP, reload_certificates)

    def listener_runtimes(self) -> dict[int, ListenerRuntime]:
        """The listeners by port, as this worker serves them (built by :meth:`load`)."""
        if self._runtimes is None:
            from gatehouse_common.listener_protocol import build_runtimes

            self._runtimes = build_runtimes(self.listeners, self.loaded_app)
        return self._runtimes

    def has_tls(self) -> bool:
        return any(spec.tls is not None for spec in self.listeners)


class EdgeMultiprocess(Multiprocess):
    """uvicorn's supervisor; with TLS listeners SIGHUP goes on to every worker.

    uvicorn's own SIGHUP restarts every worker, which closes their idle
    keep-alive connections; a worker reloads its certificates in place instead.
    """

    def __init__(self, config: EdgeConfig, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets=sockets)
        self._tls = config.has_tls()

    def handle_hup(self) -> None:
        if not self._tls:
            super().handle_hup()
            return
        logger.info("Received SIGHUP, reloading the workers' TLS certificates.")
        for process in self.processes:
            if process.pid is not None:
                os.kill(process.pid, signal.SIGHUP)


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


def edge_websocket_protocol(**kwargs: Any) -> asyncio.Protocol:
    """uvicorn's ``ws`` protocol "class": it only calls it, with keywords, on an
    upgrade, so :class:`~gatehouse_common.websocket_protocol.EdgeWebSocketProtocol`
    (and `websockets`, ~0.9 MB a worker) is imported on the first one."""
    from gatehouse_common.websocket_protocol import EdgeWebSocketProtocol

    return EdgeWebSocketProtocol(**kwargs)


def _websocket_options(limits: WebSocketLimits | None) -> dict[str, Any]:
    """uvicorn's ``ws*`` options: off (an Upgrade request is read as plain HTTP,
    body included, instead of going to a handshake no app completes), or
    :class:`EdgeWebSocketProtocol` held to ``limits``."""
    if limits is None:
        return {"ws": "none"}
    return {
        "ws": edge_websocket_protocol,
        "ws_max_size": limits.max_message_bytes,
        "ws_ping_interval": limits.ping_interval,
        "ws_ping_timeout": limits.ping_timeout,
        "ws_per_message_deflate": limits.per_message_deflate,
    }


def edge_config(
    app_factory: str,
    settings: ServiceSettings,
    *,
    fast: bool = False,
    listeners: Sequence[ListenerSpec] = (),
    websocket: bool = False,
) -> EdgeConfig:
    """The uvicorn config :func:`serve` runs ``app_factory`` with."""
    ws_limits = WebSocketLimits.from_settings(settings) if websocket else None
    return EdgeConfig(
        app_factory,
        edge_limits=EdgeLimits.from_settings(settings),
        websocket_limits=ws_limits,
        listeners=listeners,
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


def _check_certificates(listeners: Sequence[ListenerSpec]) -> None:
    if all(spec.tls is None for spec in listeners):
        # nothing to read; and with a single worker this process serves, so the
        # listener protocol (h2, hpack: ~0.7 MB) stays out of it (loadtest/README.md)
        return
    from gatehouse_common.listener_protocol import alpn_for
    from gatehouse_common.tls import CertificateStore

    for spec in listeners:
        if spec.tls is None:
            continue
        try:
            CertificateStore(spec.tls, alpn=alpn_for(spec))
        except (OSError, ssl.SSLError, ValueError) as exc:
            logger.error("cannot read the certificates of %s:%d: %s", spec.host, spec.port, exc)
            sys.exit(STARTUP_FAILURE)


def serve(
    app_factory: str,
    settings: ServiceSettings,
    *,
    fast: bool = False,
    extra_listeners: Sequence[tuple[str, int]] = (),
    listeners: Sequence[ListenerSpec] = (),
    main_h2c: bool = False,
    websocket: bool = False,
) -> None:
    """Serve ``app_factory`` (an import string ``module:function``) with ``settings``.

    Every service gets the edge limits of its settings. ``fast`` selects uvloop,
    the fastest event loop uvicorn offers, and writes a small response's head
    and body together (:mod:`gatehouse_common.http_protocol`), for the services
    on the request path. ``extra_listeners`` are more ``(host, port)`` sockets
    served by the same app in every worker (the gateway's admin listener);
    ``listeners`` are more sockets that may speak TLS, HTTP/2 or redirect
    (:class:`ListenerSpec`). Their certificates are read here first, so a bad
    file stops the start with its reason. ``main_h2c`` makes the main port take
    HTTP/2 with prior knowledge besides HTTP/1.1. ``websocket`` turns WebSocket
    handshakes on (:mod:`gatehouse_common.websocket_protocol`); off, an
    ``Upgrade`` request is plain HTTP.
    """
    _prepare_multiprocess_metrics(settings.workers)
    _check_certificates(listeners)
    sockets = [bind_listener(settings.host, settings.port)]
    sockets += [bind_listener(host, port) for host, port in extra_listeners]
    bound: list[ListenerSpec] = []
    if main_h2c:
        bound.append(ListenerSpec(settings.host, sockets[0].getsockname()[1], h2c=True))
    for spec in listeners:
        sock = bind_listener(spec.host, spec.port)
        sockets.append(sock)
        bound.append(spec.bound_to(sock.getsockname()[1]))
    config = edge_config(app_factory, settings, fast=fast, listeners=bound, websocket=websocket)
    server = uvicorn.Server(config)
    try:
        if config.workers > 1:
            EdgeMultiprocess(config, sockets=sockets).run()
        else:
            server.run(sockets=sockets)
    except KeyboardInterrupt:
        pass
    finally:
        for sock in sockets:
            sock.close()
    if config.workers == 1 and not server.started:
        sys.exit(STARTUP_FAILURE)
