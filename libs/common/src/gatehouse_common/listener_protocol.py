"""The first moments of a connection: which listener took it, and what it speaks.

uvicorn makes one protocol class for every socket it serves; when a service
has listeners beyond plain HTTP/1.1 (:class:`ListenerSpec`), that class is
:class:`ListenerProtocol`. It reads the port the connection came in on and:

- on a TLS listener, runs the handshake (``loop.start_tls`` with the context of
  the listener's :class:`CertificateStore`, bounded by ``header_timeout``) and
  then hands the connection to HTTP/2 if ALPN chose ``h2``, else to HTTP/1.1;
- on an ``h2c`` listener, waits for the first bytes: the HTTP/2 connection
  preface goes to HTTP/2 (prior knowledge), anything else to HTTP/1.1;
- otherwise hands over at once.

Handing over is ``transport.set_protocol``: from then on the transport calls
the chosen protocol directly, so this class costs nothing per request. Bytes
that arrive between the handshake and the hand-over are kept and passed on.
HTTP/1.1 is the edge protocol the service would run anyway
(:mod:`gatehouse_common.edge_protocol`), serving the listener's app
(:mod:`gatehouse_common.listener_apps`); a TLS transport makes its scheme https.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from gatehouse_common.edge_limits import EdgeLimits
from gatehouse_common.h2_protocol import H2Protocol
from gatehouse_common.listener_apps import listener_app
from gatehouse_common.listeners import ListenerSpec
from gatehouse_common.metrics import CONNECTIONS_REFUSED
from gatehouse_common.tls import CertificateStore

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application
    from uvicorn.config import Config
    from uvicorn.server import ServerState

logger = logging.getLogger(__name__)

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@dataclass(frozen=True, slots=True)
class ListenerRuntime:
    """A listener as a worker serves it: its app and, with TLS, its certificates."""

    spec: ListenerSpec
    app: ASGI3Application
    store: CertificateStore | None


def alpn_for(spec: ListenerSpec) -> list[str]:
    return ["h2", "http/1.1"] if spec.http2 else ["http/1.1"]


def build_runtimes(
    specs: Iterable[ListenerSpec], app: ASGI3Application
) -> dict[int, ListenerRuntime]:
    """Each listener by its (bound) port; reads the certificates, raising if one is bad."""
    runtimes: dict[int, ListenerRuntime] = {}
    for spec in specs:
        store = CertificateStore(spec.tls, alpn=alpn_for(spec)) if spec.tls is not None else None
        runtimes[spec.port] = ListenerRuntime(spec, listener_app(app, spec), store)
    return runtimes


def _feed(protocol: Any, data: bytes) -> None:
    """Give ``data`` to ``protocol`` as its transport would. Duck-typed: uvloop's
    TLS protocol has ``get_buffer`` without being an ``asyncio.BufferedProtocol``."""
    if hasattr(protocol, "get_buffer"):
        view = memoryview(data)
        while view:
            buffer = memoryview(protocol.get_buffer(len(view)))
            size = min(len(buffer), len(view))
            buffer[:size] = view[:size]
            protocol.buffer_updated(size)
            view = view[size:]
    else:
        protocol.data_received(data)


class ListenerProtocol(asyncio.Protocol):
    """Chooses the protocol of a connection, then steps aside (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.loop = _loop or asyncio.get_event_loop()
        self.limits: EdgeLimits = getattr(config, "edge_limits", EdgeLimits())
        self._early = bytearray()
        self._sniffing: ListenerRuntime | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._handshake: asyncio.Task[None] | None = None
        self._tls: ListenerRuntime | None = None  # a TLS listener's, until its first bytes

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        runtimes: dict[int, ListenerRuntime] = self.config.listener_runtimes()  # type: ignore[attr-defined]
        sockname = transport.get_extra_info("sockname")
        runtime = runtimes.get(sockname[1]) if isinstance(sockname, tuple) else None
        if runtime is None:
            self._http1(transport, self.config.loaded_app)
            return
        if len(self.server_state.connections) >= self.limits.max_connections:
            CONNECTIONS_REFUSED.inc()
            transport.close()
            return
        if runtime.store is not None:
            self._tls = runtime  # the handshake starts with the ClientHello's first bytes
            self._timer = self.loop.call_later(self.limits.header_timeout, transport.close)
        elif runtime.spec.h2c:
            self._sniffing = runtime
            self._timer = self.loop.call_later(self.limits.header_timeout, transport.close)
        else:
            self._http1(transport, runtime.app)

    def data_received(self, data: bytes) -> None:
        self._early += data
        if self._transport is None:
            return
        if self._tls is not None:
            self._begin_tls(self._transport, self._tls)
            return
        runtime = self._sniffing
        if runtime is None:
            return  # TLS is being set up: kept for the protocol chosen after it
        head = bytes(self._early[: len(H2_PREFACE)])
        if len(head) < len(H2_PREFACE) and H2_PREFACE.startswith(head):
            return  # could still be the preface
        self._sniffing = None
        if self._timer is not None:
            self._timer.cancel()
        if head == H2_PREFACE:
            self._http2(self._transport, runtime)
        else:
            self._http1(self._transport, runtime.app)

    def eof_received(self) -> bool | None:
        return None  # closed before it said anything: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._handshake is not None and not self._handshake.done():
            self._handshake.cancel()

    def _begin_tls(self, transport: asyncio.Transport, runtime: ListenerRuntime) -> None:
        """Start the handshake with the ClientHello bytes already read.

        uvloop starts reading after ``connection_made`` whatever the protocol
        asked, so the first bytes arrive here, not at ``start_tls``. They are
        handed to the TLS protocol ``start_tls`` installs: the task's first
        step (queued first) runs ``start_tls`` up to its wait, which pauses
        reading, installs the TLS protocol and queues its ``connection_made``;
        the replay, queued second, then writes the bytes into that protocol's
        incoming buffer, where its handshake, begun by ``connection_made``,
        finds them. Both asyncio's and uvloop's TLS protocols keep bytes given
        before ``connection_made`` (tests/common/test_tls_listeners.py runs
        handshakes on both loops).
        """
        self._tls = None
        transport.pause_reading()
        client_hello = self._take_early()
        self._handshake = self.loop.create_task(self._start_tls(transport, runtime))

        def replay() -> None:
            protocol = transport.get_protocol()
            if protocol is not self and not transport.is_closing():
                _feed(protocol, client_hello)

        self.loop.call_soon(replay)

    async def _start_tls(self, transport: asyncio.Transport, runtime: ListenerRuntime) -> None:
        store = cast(CertificateStore, runtime.store)
        try:
            tls = await self.loop.start_tls(
                transport,
                self,
                store.context(),
                server_side=True,
                ssl_handshake_timeout=self.limits.header_timeout,
            )
        except OSError as exc:  # ssl.SSLError, resets and the handshake timeout among them
            logger.debug("TLS handshake failed: %s", exc)
            transport.close()
            return
        if self._timer is not None:
            self._timer.cancel()
        if tls is None:
            return
        ssl_object = tls.get_extra_info("ssl_object")
        protocol = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if protocol == "h2":
            self._http2(tls, runtime)
        else:
            self._http1(tls, runtime.app)

    def _take_early(self) -> bytes:
        early = bytes(self._early)
        self._early.clear()
        return early

    def _http1(self, transport: asyncio.Transport, app: ASGI3Application) -> None:
        protocol_class = self.config.h1_protocol_class  # type: ignore[attr-defined]
        protocol = protocol_class(
            config=self.config,
            server_state=self.server_state,
            app_state=self.app_state,
            _loop=self.loop,
        )
        protocol.app = app
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        early = self._take_early()
        if early and not transport.is_closing():
            protocol.data_received(early)

    def _http2(self, transport: asyncio.Transport, runtime: ListenerRuntime) -> None:
        protocol = H2Protocol(
            app=runtime.app,
            server_state=self.server_state,
            app_state=self.app_state,
            limits=self.limits,
            root_path=self.config.root_path,
            loop=self.loop,
        )
        transport.set_protocol(protocol)
        protocol.connection_made(transport, preface=self._take_early())
