"""What one replica keeps per consumer of one limit: a lease, or a bucket of its own.

:class:`Lease` is the shared mode's state: tokens this replica took from the
bucket in Redis and has not spent yet, plus a small credit spent on trust
while a refill is on its way (charged to the shared bucket at the next one).
:class:`LocalBucket` is a whole token bucket in memory: the limit itself
without Redis, or this replica's share of it while Redis is down.

Plain slotted objects and arithmetic: these run on every limited request.
"""

from __future__ import annotations


class Lease:
    """This replica's share of one consumer's shared bucket (see :mod:`.store`)."""

    __slots__ = (
        "blocked_until",
        "debt",
        "sending",
        "shared_left",
        "synced_at",
        "syncing",
        "tokens",
        "used_at",
    )

    def __init__(self, now: float) -> None:
        # leased from Redis (already charged there) and not spent yet
        self.tokens = 0
        # spent on credit and not charged to Redis yet; ``sending`` of it are on the way
        self.debt = 0
        self.sending = 0
        # Redis said the bucket is empty: no credit before this (monotonic seconds)
        self.blocked_until = 0.0
        self.syncing = False
        # what the shared bucket held after the last refill, and when
        self.shared_left = 0
        self.synced_at = now
        self.used_at = now

    def admits(self, now: float, credit: int) -> bool:
        return self.tokens > 0 or (now >= self.blocked_until and self.debt < credit)

    def take(self) -> None:
        if self.tokens > 0:
            self.tokens -= 1
        else:
            self.debt += 1


class LocalBucket:
    """A token bucket in this process: ``capacity`` at once, ``rate`` per second."""

    __slots__ = ("at", "tokens", "used_at")

    def __init__(self, capacity: float, now: float) -> None:
        self.tokens = capacity
        self.at = now
        self.used_at = now

    def refill(self, now: float, capacity: float, rate: float) -> float:
        tokens = self.tokens + (now - self.at) * rate
        self.tokens = tokens if tokens < capacity else capacity
        self.at = now
        return self.tokens
