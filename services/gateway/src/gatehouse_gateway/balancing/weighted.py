"""``weighted_round_robin``: smooth weighted round robin, as nginx does it.

Each pick adds every backend's weight to its running score, takes the highest
and subtracts the total from it, so weights 5:1:1 give a,a,b,a,c,a,a rather
than five a's in a row (nginx commit 52327e0627f4).
"""

from __future__ import annotations

from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.balancing.base import Balancer, Later


class SmoothWeighted(Balancer):
    def __init__(self, backends: list[BackendState]) -> None:
        super().__init__(backends)
        self._scores = [0] * len(backends)

    async def pick(self) -> BackendState | None:
        return self.pick_now()

    def pick_at_once(self) -> BackendState | Later | None:
        return self.pick_now()

    def pick_now(self) -> BackendState | None:
        scores = self._scores
        best = -1
        total = 0
        for index, backend in enumerate(self.backends):
            if not backend.available:
                continue
            scores[index] += backend.weight
            total += backend.weight
            if best < 0 or scores[index] > scores[best]:
                best = index
        if best < 0:
            return None
        scores[best] -= total
        return self.backends[best]
