"""The shared side of the rate limits: lease refills batched to Redis, replicas counted.

Refills never hold a request: :meth:`LeaseStore.queue` only notes that a
consumer's lease runs low. One flush at a time sends every refill noted
since the previous one in one pipeline (one ``EVALSHA`` of
:data:`~.scripts.LEASE` per bucket), as the round-robin cursor coalesces its
``INCRBY`` (:mod:`gatehouse_gateway.balancing.redis_cursor`): the busier the
gateway, the more refills ride on each round trip.

Every ``retry_interval`` each process announces itself in a sorted set
(:data:`~.scripts.ANNOUNCE`) and reads how many did in the last three
intervals: the divisor of the ``local`` fallback. That loop is also the probe:
a failed refill or announcement switches to ``fallback`` at once (logged
once, counted in ``gateway_ratelimit_store_state``), a successful
announcement switches back, and leases from before are forgotten both ways.
Without ``REDIS_URL`` the state is ``local`` for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from gatehouse_common.error_shape import describe_error
from gatehouse_gateway.policy.ratelimit._buckets import Lease
from gatehouse_gateway.policy.ratelimit.metrics import REPLICAS, ROUND_TRIPS, set_store_state
from gatehouse_gateway.policy.ratelimit.scripts import ANNOUNCE, LEASE, replicas_key
from gatehouse_gateway.redis_store import RedisJob, relearn_slots

if TYPE_CHECKING:
    from gatehouse_gateway.policy.ratelimit.limit import Limit

logger = logging.getLogger(__name__)

_Pending = dict[tuple[int, str], tuple["Limit", str, Lease]]


class LeaseStore(RedisJob):
    """Redis behind the rate limits of every route of one gateway process."""

    def __init__(
        self,
        redis_url: str | None,
        *,
        prefix: str,
        timeout: float,
        retry_interval: float,
        limits: Callable[[], Iterable[Limit]],
    ) -> None:
        self.prefix = prefix
        self.retry_interval = retry_interval
        self._limits = limits
        super().__init__("ratelimits", redis_url, timeout=timeout, interval=retry_interval)
        self.replicas = 1
        self.member = f"{socket.gethostname()}:{secrets.token_hex(6)}"
        self._pending: _Pending = {}
        self._flush_scheduled = False
        self._flushing = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        set_store_state(self.state)
        if self._client is not None:
            await self._announce_once()
        self._loop.start()

    async def close(self) -> None:
        await self._loop.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            with contextlib.suppress(*self._errors):
                await self._client.zrem(replicas_key(self.prefix), self.member)
        await self._loop.close()

    # -- refills ------------------------------------------------------------------

    def queue(self, limit: Limit, consumer: str, lease: Lease) -> None:
        """Refill ``lease`` soon, in the next batch; the caller never waits for it."""
        lease.syncing = True
        self._pending[(id(limit), consumer)] = (limit, consumer, lease)
        if not self._flush_scheduled and not self._flushing:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._start_flush)

    def _start_flush(self) -> None:
        self._flush_scheduled = False
        if self._flushing or not self._pending:
            return
        pending, self._pending = self._pending, {}
        self._flushing = True
        task = asyncio.get_running_loop().create_task(self._flush(pending))
        self._tasks.add(task)
        task.add_done_callback(self._flush_done)

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._flushing = False
        if self._pending and not task.cancelled():
            self._start_flush()  # the refills noted meanwhile, in one go

    async def _flush(self, pending: _Pending) -> None:
        client = self._client
        if client is None or self.state != "redis":
            for _limit, _consumer, lease in pending.values():
                lease.syncing = False
            return
        batch = list(pending.values())
        try:
            async with client.pipeline(transaction=False) as pipe:
                for limit, consumer, lease in batch:
                    lease.sending = lease.debt
                    args = (limit.token_ms, limit.capacity, lease.sending, limit.want(lease))
                    # EVAL, not EVALSHA: a restarted Redis has no script cache to miss
                    pipe.eval(LEASE, 1, limit.redis_key(consumer), *args)
                results = await pipe.execute()
        except self._errors as exc:
            ROUND_TRIPS.labels(outcome="error").inc()
            for _limit, _consumer, lease in batch:
                lease.syncing = False
                lease.sending = 0
            self._fall_back(exc)
            await relearn_slots(client, self._errors)  # a failed-over master's slots
            return
        ROUND_TRIPS.labels(outcome="ok").inc()
        now = time.monotonic()
        for (limit, consumer, lease), result in zip(batch, results, strict=True):
            granted, left, wait_ms, _full_ms = (int(value) for value in result)
            limit.synced(lease, granted, left, wait_ms, now)
            if lease.debt:  # credit spent while this refill was on its way: charge it too
                self.queue(limit, consumer, lease)

    # -- state and replicas ---------------------------------------------------------

    def _fall_back(self, exc: BaseException) -> None:
        self.last_error = describe_error(exc)
        if self.state != "redis":
            return
        self.state = "fallback"
        set_store_state("fallback")
        for limit in self._limits():
            limit.forget_local()  # each replica's share starts full
        logger.warning(
            "Redis unreachable (%s): rate limits use each route's on_store_failure "
            "until it is back (local: %d replica(s) share each limit)",
            self.last_error,
            self.replicas,
        )

    _unreachable = _fall_back  # the loop's failure

    async def _announce_once(self) -> None:
        if self._client is None or next(iter(self._limits()), None) is None:
            return  # nothing limited: no key, no traffic
        ttl_ms = int(self.retry_interval * 3000)
        if self.state == "fallback":
            # Connections pooled before the outage may be dead (a restarted Redis):
            # the first refill after coming back must not fail on one of them.
            pool = getattr(self._client, "connection_pool", None)
            if pool is not None:
                await pool.disconnect()
        try:
            seen = await self._client.eval(
                ANNOUNCE, 1, replicas_key(self.prefix), self.member, ttl_ms
            )
        except self._errors as exc:
            await self._loop.failed(exc)  # falls back; a failed-over master's slots
            return
        self.replicas = max(1, int(seen))
        REPLICAS.set(self.replicas)
        if self.state == "fallback":
            self.state = "redis"
            set_store_state("redis")
            for limit in self._limits():
                limit.forget_leases()
            logger.warning("Redis is back: rate limits are shared again")

    async def _round(self) -> None:
        """The background round, every ``retry_interval``: announce (and probe), sweep."""
        await self._announce_once()
        now = time.monotonic()
        for limit in self._limits():
            limit.sweep(now)
            limit.report()

    def snapshot(self) -> dict[str, object]:
        return {
            "store": "redis" if self.shared else "local",
            "state": self.state,
            "shared": self.state == "redis",
            "replicas_seen": self.replicas,
            "last_error": self.last_error,
        }
