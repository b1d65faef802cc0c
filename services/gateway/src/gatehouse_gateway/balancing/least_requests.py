"""``least_requests``: power of two choices over in-flight counts.

Two random available backends, the one with fewer requests in flight wins:
nearly as good as scanning all of them, with no herd on the single least
loaded one (Mitzenmacher, "The Power of Two Choices in Randomized Load
Balancing").
"""

from __future__ import annotations

import random

from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.balancing.base import Balancer


class LeastRequests(Balancer):
    async def pick(self) -> BackendState | None:
        candidates = self.available()
        if len(candidates) < 2:
            return candidates[0] if candidates else None
        first, second = random.sample(candidates, 2)
        return first if first.in_flight <= second.in_flight else second
