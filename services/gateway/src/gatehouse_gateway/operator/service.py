"""The operator view's share of the running gateway: drains, canary weights, history.

:class:`Operator` is made by :class:`gatehouse_gateway.runtime.Gateway` and
started and closed with it, so its Redis client lives exactly as long as the
gateway (lifespan). Drains and canary weights keep in step with Redis on
loops of their own (:mod:`.drain`, :mod:`gatehouse_gateway.canary.weights`);
one more samples the per-backend history as often as drains are read. Drains
and weight changes are also recorded in auth's audit log (:mod:`.audit`).
"""

from __future__ import annotations

from collections.abc import Callable

from gatehouse_gateway.canary.weights import CanaryWeights
from gatehouse_gateway.operator.audit import AuditRecorder
from gatehouse_gateway.operator.drain import DrainCoordinator
from gatehouse_gateway.operator.history import History
from gatehouse_gateway.redis_store import RedisLoop
from gatehouse_gateway.routing import Route
from gatehouse_gateway.settings import GatewaySettings


class Operator:
    def __init__(self, settings: GatewaySettings, routes: Callable[[], list[Route]]) -> None:
        self._routes = routes
        self.drains = DrainCoordinator(
            routes,
            redis_url=settings.redis_url,
            prefix=settings.redis_prefix,
            timeout=settings.redis_timeout,
            interval=settings.drain_sync_interval,
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
        self._sampler = RedisLoop(
            "operator-history", self._sample, interval=settings.drain_sync_interval
        )

    async def start(self) -> None:
        """Apply the shared drains and weights before the first request, then keep them in step."""
        await self.drains.start()
        await self.canary.start()
        await self._sampler.begin()

    async def close(self) -> None:
        await self._sampler.stop()
        await self.drains.close()
        await self.canary.close()
        await self.audit.close()

    async def _sample(self) -> None:
        self.history.sample(self._routes())
