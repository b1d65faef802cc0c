"""``round_robin``: the n-th request goes to backend n mod N, n from a shared cursor.

The cursor (:mod:`gatehouse_gateway.balancing.cursor`) is one counter per
route in Redis, shared by every gateway replica, so the order is exact across
replicas. An unavailable backend is skipped by moving on to the next one.
"""

from __future__ import annotations

from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.balancing.base import LATER, Balancer, Later
from gatehouse_gateway.balancing.cursor import Cursor, LocalCursor


class RoundRobin(Balancer):
    def __init__(self, backends: list[BackendState], *, cursor: Cursor, key: str) -> None:
        super().__init__(backends)
        self.cursor = cursor
        self.key = key

    async def pick(self) -> BackendState | None:
        return self._from(await self.cursor.next(self.key))

    def pick_at_once(self) -> BackendState | Later | None:
        cursor = self.cursor
        if type(cursor) is LocalCursor:  # no REDIS_URL: the counter is in this process
            return self._from(cursor.take(self.key))
        return LATER

    def _from(self, start: int) -> BackendState | None:
        """The first available backend from the cursor's ``start`` on."""
        backends = self.backends
        count = len(backends)
        for offset in range(count):
            backend = backends[(start + offset) % count]
            if backend.available:
                return backend
        return None
