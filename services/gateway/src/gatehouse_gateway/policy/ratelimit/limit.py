"""One limit of one route at run time: the decision for one consumer, from memory.

Three ways to decide, after the store's state (:mod:`.store`):

- ``redis``: spend this replica's :class:`~._buckets.Lease` of the shared
  bucket; when it runs low a refill is queued for the store's background
  flush, never awaited here. A consumer with no lease left may spend up to
  ``credit`` (= the lease size) on trust until the refill answers; the refill
  charges that credit to the shared bucket;
- ``local`` (no ``REDIS_URL``): a :class:`~._buckets.LocalBucket` per
  consumer, the whole limit in this process;
- ``fallback`` (Redis unreachable): the limit's ``on_store_failure``: a local
  bucket with ``rate`` and ``burst`` divided by the replicas last seen, no
  limit (``open``), or a refusal (``closed``).
"""

from __future__ import annotations

import math
from itertools import islice
from typing import TYPE_CHECKING

from gatehouse_gateway.config.ratelimit import RateLimitConfig
from gatehouse_gateway.policy.ratelimit._buckets import Lease, LocalBucket
from gatehouse_gateway.policy.ratelimit.metrics import LimitMetrics
from gatehouse_gateway.policy.ratelimit.scripts import bucket_key

if TYPE_CHECKING:
    from gatehouse_gateway.policy.ratelimit.store import LeaseStore

# Consumers refused recently, kept per limit for the operator view (bounded).
_RECENT_MAX = 1000
_RECENT_WINDOW = 60.0
# A lease nobody used for this long is dropped (its unspent tokens are lost).
_LEASE_IDLE = 10.0
# consumers each sweep (about once a second) looks at, per limit
_SWEEP_BUDGET = 2000

ALLOW = 0
REFUSE = 1
UNAVAILABLE = 2  # closed while Redis is down


class Limit:
    """One ``rate_limits`` entry of one route, with its consumers' state."""

    def __init__(
        self, route: str, config: RateLimitConfig, store: LeaseStore, max_consumers: int
    ) -> None:
        self.route = route
        self.config = config
        self.name = config.name
        self.key = config.key
        self.store = store
        self.rate = config.per_second
        self.capacity = config.capacity
        self.lease = config.lease_size
        self.credit = self.lease
        self.low = max(1, self.lease // 2)
        self.token_ms = 1000.0 / self.rate
        self.fail = config.on_store_failure
        self.headers = config.headers
        self.max_consumers = max_consumers
        # the RateLimit-Policy item: q per w seconds is the long-run rate, q the burst
        self.window = max(1, math.ceil(self.capacity / self.rate))
        self.policy = f'"{self.name}";q={self.capacity};w={self.window}'.encode()
        self._key_prefix = bucket_key(store.prefix, route, self.name, "")[:-1]
        self.leases: dict[str, Lease] = {}
        self.buckets: dict[str, LocalBucket] = {}
        self.metrics = LimitMetrics(route, self.name)
        self.allowed = 0
        self._reported = 0
        self.refused = 0
        self.recent: dict[str, int] = {}
        self.previous: dict[str, int] = {}
        self.recent_since = 0.0

    def redis_key(self, consumer: str) -> str:
        return self._key_prefix + consumer + "}"

    # -- the decision -------------------------------------------------------

    def admits(self, consumer: str, now: float, state: str) -> int:
        """ALLOW, REFUSE or UNAVAILABLE for one request of ``consumer``, spending nothing."""
        if state == "redis":
            lease = self.leases.get(consumer)
            if lease is None:
                return ALLOW  # a new consumer starts with its credit
            return ALLOW if lease.admits(now, self.credit) else REFUSE
        if state == "fallback":
            if self.fail == "open":
                return ALLOW
            if self.fail == "closed":
                return UNAVAILABLE
        bucket = self.buckets.get(consumer)
        if bucket is None:
            return ALLOW
        capacity, rate = self._local_share(state)
        return ALLOW if bucket.refill(now, capacity, rate) >= 1.0 else REFUSE

    def spend(self, consumer: str, now: float, state: str) -> int:
        """:meth:`admits`, then :meth:`take` if ALLOW: one call for a route with one limit.

        The usual request, a token of its consumer's lease in hand, is decided
        and spent inline, as :meth:`take` and :meth:`~._buckets.Lease.take` would:
        their four calls were a third of the limit's cost per request.
        """
        if state == "redis":
            lease = self.leases.get(consumer)
            if lease is not None and lease.tokens > 0:
                lease.tokens -= 1
                lease.used_at = now
                if not lease.syncing and (lease.tokens < self.low or lease.debt):
                    self.store.queue(self, consumer, lease)
                self.allowed += 1
                return ALLOW
        verdict = self.admits(consumer, now, state)
        if verdict == ALLOW:
            self.take(consumer, now, state)
        return verdict

    def take(self, consumer: str, now: float, state: str) -> None:
        """Spend one request of ``consumer`` (after :meth:`admits` said ALLOW)."""
        if state == "redis":
            lease = self.leases.get(consumer)
            if lease is None:
                if len(self.leases) >= self.max_consumers:
                    self._evict(self.leases)
                lease = self.leases[consumer] = Lease(now)
            lease.take()
            lease.used_at = now
            if not lease.syncing and (lease.tokens < self.low or lease.debt):
                self.store.queue(self, consumer, lease)
        elif state == "local" or self.fail == "local":
            bucket = self.buckets.get(consumer)
            capacity, rate = self._local_share(state)
            if bucket is None:
                if len(self.buckets) >= self.max_consumers:
                    self._evict(self.buckets)
                bucket = self.buckets[consumer] = LocalBucket(capacity, now)
            else:
                bucket.refill(now, capacity, rate)
            bucket.tokens -= 1.0
            bucket.used_at = now
        self.allowed += 1  # reaches the metric in :meth:`report`, off the request path
        if state == "fallback":
            (self.metrics.local if self.fail == "local" else self.metrics.open).inc()

    def refuse(self, consumer: str, now: float, state: str) -> None:
        """Count a refusal of ``consumer`` (this limit said no)."""
        self.refused += 1
        self.metrics.refused.inc()
        if state == "fallback":
            (self.metrics.closed if self.fail == "closed" else self.metrics.local).inc()
        if now - self.recent_since > _RECENT_WINDOW:
            self.previous, self.recent, self.recent_since = self.recent, {}, now
        if consumer in self.recent or len(self.recent) < _RECENT_MAX:
            self.recent[consumer] = self.recent.get(consumer, 0) + 1

    def report(self) -> None:
        """Add the requests allowed since the last call to the metric (about once a second):
        a lock-taking ``inc`` per request cost more than the decision itself."""
        allowed = self.allowed
        if allowed > self._reported:
            self.metrics.allowed.inc(allowed - self._reported)
            self._reported = allowed

    def _local_share(self, state: str) -> tuple[float, float]:
        """(capacity, rate) of this process's bucket: all of it, or its share while down."""
        if state == "local":
            return float(self.capacity), self.rate
        replicas = self.store.replicas
        return max(1.0, self.capacity / replicas), self.rate / replicas

    # -- what a client is told ------------------------------------------------

    def remaining(self, consumer: str, now: float, state: str) -> int:
        """Requests left for ``consumer`` as this replica knows it (the ``r`` parameter)."""
        if state == "redis":
            lease = self.leases.get(consumer)
            if lease is None:
                return self.capacity
            shared = lease.shared_left + (now - lease.synced_at) * self.rate
            left = lease.tokens + min(float(self.capacity), shared) - lease.debt
        else:
            bucket = self.buckets.get(consumer)
            if bucket is None:
                return self.capacity
            left = bucket.refill(now, *self._local_share(state))
        return max(0, min(self.capacity, int(left)))

    def retry_after(self, consumer: str, now: float, state: str) -> int:
        """Whole seconds until one more request of ``consumer`` may fit (at least 1)."""
        wait = 1.0 / self.rate
        if state == "redis":
            lease = self.leases.get(consumer)
            if lease is not None and lease.blocked_until > now:
                wait = lease.blocked_until - now
        elif state == "local" or self.fail == "local":
            bucket = self.buckets.get(consumer)
            capacity, rate = self._local_share(state)
            if bucket is not None:
                wait = max(0.0, 1.0 - bucket.refill(now, capacity, rate)) / rate
        else:  # closed while Redis is down: when the store is retried
            wait = self.store.retry_interval
        return max(1, math.ceil(wait))

    def reset_seconds(self, remaining: int) -> int:
        """Seconds until the bucket is full again at no further use (the ``t`` parameter)."""
        return math.ceil((self.capacity - remaining) / self.rate)

    # -- the store's side -------------------------------------------------------

    def synced(self, lease: Lease, granted: int, left: int, wait_ms: int, now: float) -> None:
        """A refill answered: ``granted`` tokens are this replica's, the credit is paid."""
        lease.debt -= lease.sending
        lease.sending = 0
        lease.syncing = False
        lease.tokens += granted
        lease.shared_left = left
        lease.synced_at = now
        if granted == 0:
            lease.blocked_until = now + wait_ms / 1000.0

    def want(self, lease: Lease) -> int:
        return max(0, self.lease - lease.tokens)

    def sweep(self, now: float) -> None:
        """Forget consumers idle long enough that forgetting them changes nothing.

        Each call looks at the :data:`_SWEEP_BUDGET` consumers at the front
        (dicts keep insertion order): idle ones go, the others move to the back
        for a later call. The event loop never walks 100,000 entries at once.
        """
        idle_lease = now - max(_LEASE_IDLE, self.capacity / self.rate)
        leases = self.leases
        for consumer in list(islice(leases, _SWEEP_BUDGET)):
            lease = leases.pop(consumer)
            if (
                lease.used_at >= idle_lease
                or lease.syncing
                or lease.debt
                or lease.blocked_until > now
            ):
                leases[consumer] = lease
        full = now - self.capacity / self.rate - 1.0
        buckets = self.buckets
        for consumer in list(islice(buckets, _SWEEP_BUDGET)):
            bucket = buckets.pop(consumer)
            if bucket.used_at >= full:  # else refilled to the brim: same as a new one
                buckets[consumer] = bucket

    def forget_leases(self) -> None:
        """Redis went away or came back: what was leased from it no longer holds."""
        self.leases.clear()

    def forget_local(self) -> None:
        self.buckets.clear()

    @staticmethod
    def _evict(entries: dict[str, Lease] | dict[str, LocalBucket]) -> None:
        """Full: drop the oldest tenth (dicts keep insertion order)."""
        for consumer in list(islice(entries, max(1, len(entries) // 10))):
            del entries[consumer]

    def view(self) -> dict[str, object]:
        """The operator's view of this limit in this process."""
        config = self.config
        counts = dict(self.previous)
        for consumer, refusals in self.recent.items():
            counts[consumer] = counts.get(consumer, 0) + refusals
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:10]
        return {
            "name": self.name,
            "key": config.key.model_dump(exclude_none=True),
            "rate": config.rate,
            "per": config.per,
            "burst": self.capacity,
            "lease": self.lease,
            "on_store_failure": self.fail,
            "headers": self.headers,
            "allowed": self.allowed,
            "refused": self.refused,
            "tracked_consumers": len(self.leases) + len(self.buckets),
            "recently_refused": [{"consumer": c, "refusals": n} for c, n in top],
        }
