"""Draining a backend: it gets no new requests, and the ones in flight finish.

A drain is ``BackendState.drained``, which every strategy honours through
``available``; requests already sent are not touched. With ``REDIS_URL`` set
the drain is shared by every replica: a key ``<prefix>{drain}:<route>:<backend>``
exists while the backend is drained (its value says who drained it and when),
and each replica reads the keys of its own backends with one ``MGET`` every
``drain_sync_interval``. The ``{drain}`` hash tag puts every drain key in one
Redis Cluster slot, which that ``MGET`` needs (keys of several slots would be
refused with CROSSSLOT); drains are few and read once a second, so one slot
carries them easily. A replica started later, or a backend a reload adds
back, thus picks the drain up within about a second; a backend a reload keeps
keeps its state object, flag included. Without Redis a drain is local to the
process (to one worker, too) and the API says so (``"shared": false``).

While Redis is unreachable, a drain or restore still applies at once on this
replica and is written to Redis when it answers again; until then what Redis
holds does not overwrite it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.metrics import DRAINS
from gatehouse_gateway.redis_store import RedisJob
from gatehouse_gateway.routing import Route
from gatehouse_gateway.shared_changes import PendingChanges, explain

logger = logging.getLogger(__name__)

_Key = tuple[str, str]  # (route name, backend name)


class DrainCoordinator(RedisJob):
    """Applies drains locally and shares them through Redis when there is one."""

    down_log = "drain sync cannot reach Redis (%s): drains apply here only until it answers"
    up_log = "drain sync reaches Redis again: drains are shared by every replica"

    def __init__(
        self,
        routes: Callable[[], list[Route]],
        *,
        redis_url: str | None,
        prefix: str,
        timeout: float,
        interval: float = 1.0,
    ) -> None:
        self._routes = routes
        self._prefix = f"{prefix}{{drain}}:"
        super().__init__("drains", redis_url, timeout=timeout, interval=interval)
        # Changes made here that Redis has not stored yet (it was unreachable).
        self._pending = PendingChanges[_Key](
            self._write, errors=self._errors, failed=self._loop.failed
        )
        # Who drained what, when: for the admin API.
        self.details: dict[_Key, dict[str, Any]] = {}

    def key(self, route: str, backend: str) -> str:
        return f"{self._prefix}{route}:{backend}"

    async def start(self) -> None:
        """Apply the shared drains before the first request, then keep them in step."""
        await self._loop.begin(repeat=self._client is not None)

    async def set_drained(
        self, route: Route, backend: BackendState, drained: bool, *, actor: str
    ) -> dict[str, Any]:
        """Drain (or restore) ``backend`` here at once, then tell the other replicas."""
        action = "drain" if drained else "restore"
        record = {"by": actor, "at": time.time()} if drained else None
        changed = backend.drained != drained
        self._apply(route.name, backend, record)
        DRAINS.labels(action=action).inc()
        logger.warning(
            "backend %s of route %s %s by %s (operator)",
            backend.name,
            route.name,
            "drained" if drained else "restored",
            actor,
            extra={"route": route.name, "backend": backend.name, "action": action},
        )
        stored = self.shared and await self._pending.share((route.name, backend.name), record)
        return {
            "route": route.name,
            "backend": backend.name,
            "action": action,
            "drained": backend.drained,
            "changed": changed,
            "shared": self.shared,
            "stored_in_redis": stored,
            "in_flight": backend.in_flight,
            "detail": explain(self.shared, stored),
        }

    def _apply(self, route: str, backend: BackendState, record: dict[str, Any] | None) -> bool:
        key = (route, backend.name)
        drained = record is not None
        if record is not None:
            self.details[key] = record
        else:
            self.details.pop(key, None)
        if backend.drained == drained:
            return False
        backend.drained = drained
        return True

    async def _write(self, key: _Key, record: dict[str, Any] | None) -> None:
        if self._client is None:
            return
        if record is None:
            # DEL itself: redis-py's Cluster client runs delete() as a
            # pipeline split by slot, which after a failover keeps
            # failing instead of relearning where the slot went.
            await self._client.execute_command("DEL", self.key(*key))  # type: ignore[no-untyped-call]
        else:
            await self._client.set(self.key(*key), json.dumps(record))

    async def sync(self) -> None:
        """Make this replica's drains what Redis holds (every ``drain_sync_interval``)."""
        await self._loop.once()

    async def _round(self) -> None:
        if self._client is None or not await self._pending.flush():
            return
        backends = [(route, b) for route in self._routes() for b in route.backends]
        if not backends:
            return
        mark = self._pending.mark()
        keys = [self.key(r.name, b.name) for r, b in backends]
        values = await self._client.mget(keys)  # unreachable: the loop's failure
        self._answered()
        for (route, backend), raw in zip(backends, values, strict=True):
            key = (route.name, backend.name)
            if self._pending.newer(key, mark):
                continue
            record = _record(raw)
            if self._apply(route.name, backend, record):
                logger.warning(
                    "backend %s of route %s %s by another replica",
                    backend.name,
                    route.name,
                    "drained" if record is not None else "restored",
                    extra={"route": route.name, "backend": backend.name},
                )

    def snapshot(self) -> dict[str, Any]:
        return {
            "store": "redis" if self._client is not None else "local",
            "state": self.state,
            "shared": self.shared,
            "last_sync": self.last_sync,
            "last_error": self.last_error,
            "unsent_changes": len(self._pending),
        }

    def detail(self, route: str, backend: str) -> dict[str, Any] | None:
        return self.details.get((route, backend))


def _record(raw: bytes | str | None) -> dict[str, Any] | None:
    """The stored value; anything present counts as drained, even if unreadable."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"by": "unknown", "at": None}
