"""The operator view's share of the running gateway: drains, canary weights, history.

:class:`Operator` is made by :class:`gatehouse_gateway.runtime.Gateway` and
started and closed with it, so its Redis client lives exactly as long as the
gateway (lifespan). One task does both periodic jobs: read the shared drains
and sample the per-backend history; canary weights keep in step on a loop of
their own (:mod:`gatehouse_gateway.canary.weights`). Drains and weight
changes are also recorded in auth's audit
log (:mod:`.audit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from gatehouse_gateway.canary.weights import CanaryWeights
from gatehouse_gateway.operator.audit import AuditRecorder
from gatehouse_gateway.operator.drain import DrainCoordinator
from gatehouse_gateway.operator.history import History
from gatehouse_gateway.routing import Route
from gatehouse_gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)


class Operator:
    def __init__(self, settings: GatewaySettings, routes: Callable[[], list[Route]]) -> None:
        self._routes = routes
        self._interval = settings.drain_sync_interval
        self.drains = DrainCoordinator(
            routes,
            redis_url=settings.redis_url,
            prefix=settings.redis_prefix,
            timeout=settings.redis_timeout,
        )
        # Canary weights changed at run time, shared like drains (canary/weights.py).
        self.canary = CanaryWeights(
            routes,
            redis_url=settings.redis_url,
            prefix=settings.redis_prefix,
            timeout=settings.redis_timeout,
            interval=settings.canary_sync_interval,
        )
        self.history = History()
        self.audit = AuditRecorder(
            f"{settings.auth_url.rstrip('/')}/audit" if settings.operator_audit else None,
            timeout=settings.operator_audit_timeout,
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Apply the shared drains before the first request, then keep them in step."""
        await self.drains.sync()
        await self.canary.start()
        self.history.sample(self._routes())
        self._task = asyncio.get_running_loop().create_task(self._run(), name="operator")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.drains.close()
        await self.canary.close()
        await self.audit.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.drains.sync()
                self.history.sample(self._routes())
            except Exception:  # the loop must outlive any one bad round
                logger.exception("operator loop round failed")
