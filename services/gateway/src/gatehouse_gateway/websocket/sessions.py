"""The open WebSocket connections of one worker, and their end when their backend goes.

A drained backend takes no new sockets (every strategy skips it), and its open
ones, or those whose route or backend a reload removed, get
``drain_timeout`` seconds to finish before the gateway closes them with 1001
"going away", as a shutdown does (gatehouse_common.websocket_protocol). One
sweep a second finds them, so nothing on the operator's or the reload's path
has to know about sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.routing import Route, RouteTable

logger = logging.getLogger(__name__)

SWEEP_INTERVAL = 1.0


class Relay(Protocol):
    """What relays a socket (a :class:`~.splice.Splice` or a :class:`~.bridge.Bridge`)."""

    def stop(self, reason: str, code: int = ...) -> None: ...


class Session:
    """One proxied socket: its route, its backend, and what relays it (``bridge``)."""

    __slots__ = ("backend", "bridge", "leaving_at", "route")

    def __init__(self, route: str, backend: BackendState, bridge: Relay) -> None:
        self.route = route
        self.backend = backend
        self.bridge = bridge
        self.leaving_at: float | None = None


class Sessions:
    """Every open socket of this worker; a background sweep ends those whose backend left."""

    def __init__(self, table: Callable[[], RouteTable], drain_timeout: float) -> None:
        self.table = table
        self.drain_timeout = drain_timeout
        self.open: set[Session] = set()
        self._task: asyncio.Task[None] | None = None

    def count_by_route(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for session in self.open:
            counts[session.route] = counts.get(session.route, 0) + 1
        return counts

    def add(self, session: Session) -> None:
        self.open.add(session)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sweep_forever())

    def discard(self, session: Session) -> None:
        self.open.discard(session)

    @staticmethod
    def _leaving(session: Session, routes: dict[str, Route]) -> str | None:
        """Why ``session`` must end, or None while its backend still serves its route."""
        if session.backend.drained:
            return "backend drained"
        route = routes.get(session.route)
        if route is None or not route.config.websocket:
            return "route removed"
        if session.backend not in route.backends:
            return "backend removed"
        return None

    def sweep(self, now: float) -> None:
        if not self.open:
            return
        routes = {route.name: route for route in self.table().routes}
        for session in list(self.open):
            reason = self._leaving(session, routes)
            if reason is None:
                session.leaving_at = None  # restored in time
            elif session.leaving_at is None:
                session.leaving_at = now + self.drain_timeout
                logger.info(
                    "WebSocket on route %s to %s: %s, closing within %gs",
                    session.route, session.backend.name, reason, self.drain_timeout,
                )  # fmt: skip
            elif now >= session.leaving_at:
                session.bridge.stop(reason)

    async def _sweep_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                self.sweep(loop.time())
            except Exception:  # a sweep must never stop the next one
                logger.exception("WebSocket sweep failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
