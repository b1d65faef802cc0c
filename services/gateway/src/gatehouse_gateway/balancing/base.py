"""What every strategy shares: the backend list and picking a retry target."""

from __future__ import annotations

import random
from collections.abc import Collection
from enum import Enum

from gatehouse_gateway.backend_state import BackendState


class Later(Enum):
    """:meth:`Balancer.pick_at_once`'s answer when the pick has to wait."""

    LATER = "later"


LATER = Later.LATER


class Balancer:
    """Chooses a backend per request; subclasses implement :meth:`pick`."""

    def __init__(self, backends: list[BackendState]) -> None:
        self.backends = backends

    async def pick(self) -> BackendState | None:
        """The backend for a new request, or None when none is available."""
        raise NotImplementedError

    def pick_at_once(self) -> BackendState | Later | None:
        """:meth:`pick`'s answer when it can be had without waiting, else ``LATER``.

        The proxy awaits :meth:`pick` only when told ``LATER``: a strategy
        that never waits spares every request a coroutine or two (round
        robin on a local cursor: two).
        """
        return LATER

    def pick_other(self, tried: Collection[BackendState]) -> BackendState | None:
        """A retry target: any available backend not tried yet for this request."""
        candidates = [b for b in self.backends if b not in tried and b.available]
        return random.choice(candidates) if candidates else None

    def available(self) -> list[BackendState]:
        return [b for b in self.backends if b.available]

    def panic_pick(self) -> BackendState | None:
        """A backend when passive ejection alone has left none available.

        Envoy's panic mode: ejection exists to steer traffic to the healthy
        part of a pool, so once it has ejected all of it there is nowhere
        better to send a request. Refusing with 503 would keep a route down
        until the ejection expires even when its backend has long recovered
        (a route with one backend that answered 503 through a database
        outage, say). Backends that active checks found down, or that an
        operator drained, are still never picked.
        """
        candidates = [b for b in self.backends if b.active_healthy and not b.drained]
        return random.choice(candidates) if candidates else None
