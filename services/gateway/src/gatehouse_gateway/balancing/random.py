"""``random``: a uniform pick among the available backends."""

from __future__ import annotations

import random

from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.balancing.base import Balancer


class RandomBalancer(Balancer):
    async def pick(self) -> BackendState | None:
        backends = self.backends
        # Usually every backend is up: one draw, no list built.
        first = backends[random.randrange(len(backends))]
        if first.available:
            return first
        candidates = self.available()
        return random.choice(candidates) if candidates else None
