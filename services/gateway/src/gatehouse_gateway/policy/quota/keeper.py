"""The quotas' shared state: counts written to Redis and read back, off the request path.

One :class:`QuotaKeeper` per gateway process. It gives each route of a new
route table its :class:`~.counts.RouteQuotas` (keeping the counts of quotas
a reload keeps), and every ``quota_flush_interval`` it writes the counts that
changed and reads back those asked about in the last :data:`RECENT_SECONDS`,
in one pipelined round trip (the top lists in a second one):

- ``HSET <prefix>quota:{<route>/<quota>/<window>/<consumer>} <field> <mine>``:
  each process has its own field in each count's hash and writes its own
  absolute count, so a flush whose answer was lost and is sent again counts
  nothing twice (an ``INCRBY`` retried after a timeout would);
- ``HVALS`` of the same key: the sum is the consumer's total over every
  replica, read back into ``others``;
- ``EXPIREAT`` a day past the window's end, and ``ZADD ... GT`` of the total
  into ``<prefix>quota-top:<route>/<quota>/<window>`` (kept to the top
  :data:`TOP_KEEP` consumers) for the operator's view.

Every command touches one key, so the keys spread over a Redis Cluster's
slots; the count keys carry their own hash tag, which a consumer's value
(a header may hold braces) cannot replace.

While Redis is unreachable the counts go on growing here and are judged
against the last totals read; the next flush that gets through writes them
(``gateway_quota_store_state``, ``gateway_quota_unflushed_requests``). Without
``REDIS_URL`` the counts are this process's alone.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from gatehouse_gateway.policy.quota.counts import Count, QuotaState, RouteQuotas, Window
from gatehouse_gateway.policy.quota.metrics import (
    QUOTA_FLUSH_FAILURES,
    QUOTA_UNFLUSHED,
    QUOTA_UNTRACKED,
    set_store_state,
)
from gatehouse_gateway.policy.quota.window import window_at
from gatehouse_gateway.redis_store import RedisJob

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from gatehouse_gateway.routing import Route

logger = logging.getLogger(__name__)

# Keys outlive their window by a day: a replica whose clock runs a little
# behind, or a flush delayed by an outage, still finds them.
KEEP_AFTER = 86_400
# Counts asked about in the last this many seconds are read back at every flush.
RECENT_SECONDS = 60.0
# The operator's top list keeps this many consumers per quota and window.
TOP_KEEP = 1000
# Consumers at or above this share of their quota are "near" it.
NEAR = 0.8
NEAR_SHOWN = 100


class QuotaKeeper(RedisJob):
    down_log = "quota flush cannot reach Redis (%s): counting here until it answers"
    up_log = "quota flush reaches Redis again: counts are shared"

    def __init__(
        self,
        redis_url: str | None,
        *,
        prefix: str,
        timeout: float,
        flush_interval: float,
        max_consumers: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.prefix = prefix
        self.clock = clock
        super().__init__("quota-flush", redis_url, timeout=timeout, interval=flush_interval)
        self._interval = flush_interval
        # A consumer asked about is read back for this many flushes (RECENT_SECONDS):
        # its next request, on any replica, is judged on totals at most a flush old.
        self._recent = max(3, math.ceil(RECENT_SECONDS / flush_interval))
        self._max = max_consumers
        # this process's field in the count hashes; a new serial when counts were let go
        self._process = uuid.uuid4().hex[:12]
        self._serial = 0
        self._states: dict[tuple[Any, ...], QuotaState] = {}
        # states a reload dropped, flushed once more before they are forgotten
        self._leaving: list[QuotaState] = []
        self.tracked = 0

    def _field(self) -> str:
        self._serial += 1
        return f"{self._process}.{self._serial}"

    # ---- the route table ------------------------------------------------

    def compile(self, routes: Iterable[Route]) -> None:
        """Give each route its quotas, before its table serves a request."""
        now = self.clock()
        live: dict[tuple[Any, ...], QuotaState] = {}
        for route in routes:
            states = []
            for config in route.config.quotas:
                identity = (route.name, config.name, config.period, config.key)
                state = self._states.get(identity)
                if state is None:
                    state = QuotaState(
                        route.name,
                        config,
                        prefix=self.prefix,
                        field=self._field(),
                        now=now,
                    )
                state.set_limit(config.limit)
                live[identity] = state
                states.append(state)
            route.quotas = RouteQuotas(states, self, self.clock) if states else None
        for identity, state in self._states.items():
            if identity not in live:
                state.retire()
                self._leaving.append(state)
        self._states = live

    def track(self, window: Window, consumer: str, field: str) -> Count | None:
        """A new count for ``consumer``; None (let through, uncounted) when at the cap."""
        if self.tracked >= self._max:
            QUOTA_UNTRACKED.inc()
            return None
        count = window.counts[consumer] = Count(field)
        self.tracked += 1
        return count

    # ---- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        if self._client is None:
            set_store_state("local")
        else:
            try:
                await self._client.ping()
            except self._errors as exc:
                await self._loop.failed(exc)
            else:
                set_store_state("redis")
        self._loop.start()

    async def close(self) -> None:
        await self._loop.stop()
        if self._client is not None:
            await self.flush()  # a graceful stop keeps what it counted
        await self._loop.close()

    # ---- flushing ----------------------------------------------------------

    def _all_states(self) -> list[QuotaState]:
        return [*self._states.values(), *self._leaving]

    async def _round(self) -> None:
        await self.flush()

    async def flush(self) -> None:
        """Write this process's counts, read every replica's totals back."""
        client = self._client
        if client is None:
            self._forget()
            return
        # (window, consumer, count, the value written or None: read only)
        batch: list[tuple[Window, str, Count, int | None]] = []
        for state in self._all_states():
            for window in state.windows():
                for consumer, count in window.counts.items():
                    asked = count.touched
                    if asked:
                        count.touched = False
                        count.recent = self._recent
                    if asked or count.mine != count.flushed:
                        batch.append((window, consumer, count, count.mine))
                    elif count.recent > 0:
                        count.recent -= 1
                        batch.append((window, consumer, count, None))
        try:
            if batch:
                tops = await self._exchange(client, batch)
                if tops:
                    await self._rank(client, tops)
            else:
                await client.ping()  # a probe, so the state tells the truth when idle
        except self._errors as exc:
            for _window, _consumer, count, _value in batch:
                count.touched = True  # read back at the next flush that gets through
            QUOTA_FLUSH_FAILURES.inc()
            await self._loop.failed(exc)  # state, log; a failed-over master's slots
        else:
            self._answered()
        self._forget()

    async def _exchange(
        self, client: Redis, batch: list[tuple[Window, str, Count, int | None]]
    ) -> dict[Window, dict[str, int]]:
        """Counts that changed or were asked about are written (``HSET``, ``EXPIREAT``)
        and read back; those asked about in the last minute only read back."""
        async with client.pipeline(transaction=False) as pipe:
            for window, consumer, count, value in batch:
                key = window.key(consumer)
                if value is not None:
                    pipe.hset(key, count.field, value)
                    pipe.expireat(key, int(window.bounds.end) + KEEP_AFTER)
                pipe.hvals(key)
            replies = await pipe.execute()
        tops: dict[Window, dict[str, int]] = {}
        index = 0
        for window, consumer, count, value in batch:
            if value is not None:
                index += 2
            total = sum(int(part) for part in replies[index])
            index += 1
            if value is not None:
                count.flushed = value
                tops.setdefault(window, {})[consumer] = total
            elif total < count.flushed:  # Redis lost this process's field: write it again
                count.flushed = -1
            count.others = max(0, total - count.flushed) if count.flushed >= 0 else total
        return tops

    async def _rank(self, client: Redis, tops: dict[Window, dict[str, int]]) -> None:
        async with client.pipeline(transaction=False) as pipe:
            for window, totals in tops.items():
                pipe.zadd(window.top_key, totals, gt=True)
                pipe.zremrangebyrank(window.top_key, 0, -TOP_KEEP - 1)
                pipe.expireat(window.top_key, int(window.bounds.end) + KEEP_AFTER)
            await pipe.execute()

    def _forget(self) -> None:
        """Let go of counts nobody needs any more; update the unflushed gauge.

        An ended window goes once Redis holds all of it (at once without
        Redis); a state a reload dropped goes with its last window. Near the
        cap, the current windows' flushed, idle counts go too: a consumer seen
        again starts a new count under a new field of this process (its old
        one stays in Redis, among the others), read back at the next flush.
        """
        for state in self._states.values():
            if state.ended:
                state.ended = [w for w in state.ended if not self._release(w)]
        for state in self._leaving:
            state.ended = [w for w in state.ended if not self._release(w)]
        self._leaving = [state for state in self._leaving if state.ended]
        if self.state == "redis" and self.tracked > self._max * 0.9:
            for state in self._states.values():
                counts = state.window.counts
                idle = [
                    k
                    for k, c in counts.items()
                    if c.mine == c.flushed and not c.touched and c.recent <= 0
                ]
                for consumer in idle:
                    del counts[consumer]
                if idle:
                    self.tracked -= len(idle)
                    state.field = self._field()
        QUOTA_UNFLUSHED.set(
            sum(
                count.mine - max(count.flushed, 0)
                for state in self._all_states()
                for window in state.windows()
                for count in window.counts.values()
            )
        )

    def _release(self, window: Window) -> bool:
        """True (and forgotten) once Redis holds all of an ended window, or without Redis."""
        if self._client is not None and any(
            count.mine != count.flushed for count in window.counts.values()
        ):
            return False
        self.tracked -= len(window.counts)
        return True

    def _report(self, up: bool) -> None:
        set_store_state("redis" if up else "unreachable")

    # ---- the operator's view --------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "store": "redis" if self.shared else "local",
            "state": self.state,
            "shared": self.shared,
            "flush_interval": self._interval,
            "last_flush": self.last_sync,
            "last_error": self.last_error,
            "tracked_consumers": self.tracked,
        }

    async def overview(self, routes: Iterable[Route], top: int) -> list[dict[str, Any]]:
        """Each route's quotas with this window's top consumers and those near their quota.

        Read from Redis (every replica's totals, as of their last flush); from
        this process's counts when there is no Redis or it does not answer.
        """
        now = self.clock()
        found: list[tuple[Route, QuotaState, str, Window | None]] = []
        for route in routes:
            if route.quotas is None:
                continue
            for state in route.quotas.states:
                bounds = window_at(state.period, now)
                window = state.window if state.window.bounds.id == bounds.id else None
                top_key = f"{self.prefix}quota-top:{route.name}/{state.name}/{bounds.id}"
                found.append((route, state, top_key, window))
        ranked: list[tuple[list[tuple[str, int]], list[tuple[str, int]]]] | None = None
        if self._client is not None and found:
            try:
                ranked = await self._ranked(self._client, found, top)
            except self._errors as exc:
                self._unreachable(exc)
        result = []
        for index, (route, state, _key, window) in enumerate(found):
            if ranked is not None:
                leaders, near = ranked[index]
            else:
                leaders, near = _local_ranking(window, state.limit, top)
            bounds = window_at(state.period, now)
            result.append(
                {
                    "route": route.name,
                    "name": state.name,
                    "limit": state.limit,
                    "period": state.period,
                    "key": state.key.model_dump(exclude_none=True),
                    "window": {
                        "id": bounds.id,
                        "start": bounds.start,
                        "end": bounds.end,
                        "resets_in": math.ceil(bounds.end - now),
                    },
                    "source": "redis" if ranked is not None else "local",
                    "top": [_consumer(name, used, state.limit) for name, used in leaders],
                    "near": [_consumer(name, used, state.limit) for name, used in near],
                }
            )
        return result

    async def _ranked(
        self, client: Redis, found: list[tuple[Route, QuotaState, str, Window | None]], top: int
    ) -> list[tuple[list[tuple[str, int]], list[tuple[str, int]]]]:
        async with client.pipeline(transaction=False) as pipe:
            for _route, state, key, _window in found:
                pipe.zrevrange(key, 0, top - 1, withscores=True)
                near_from = math.ceil(state.limit * NEAR)
                pipe.zrevrangebyscore(
                    key, "+inf", near_from, start=0, num=NEAR_SHOWN, withscores=True
                )
            replies = await pipe.execute()
        return [
            (_pairs(replies[2 * index]), _pairs(replies[2 * index + 1]))
            for index in range(len(found))
        ]


def _pairs(reply: list[tuple[bytes, float]]) -> list[tuple[str, int]]:
    return [(member.decode("utf-8", "replace"), int(score)) for member, score in reply]


def _local_ranking(
    window: Window | None, limit: int, top: int
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    if window is None:
        return [], []
    totals = sorted(
        ((name, count.others + count.mine) for name, count in window.counts.items()),
        key=lambda pair: pair[1],
        reverse=True,
    )
    near_from = math.ceil(limit * NEAR)
    return totals[:top], [pair for pair in totals if pair[1] >= near_from][:NEAR_SHOWN]


def _consumer(name: str, used: int, limit: int) -> dict[str, Any]:
    return {
        "consumer": name,
        "used": used,
        "remaining": max(0, limit - used),
        "share": round(used / limit, 4),
        "spent": used >= limit,
    }
