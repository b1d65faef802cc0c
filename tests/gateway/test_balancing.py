"""Strategies in-process: exact sequences where the strategy defines one."""

from __future__ import annotations

import asyncio
import collections

import redis
from support.databases import REDIS_URL
from support.processes import free_port

from gatehouse_gateway.balancing import LeastRequests, RandomBalancer, RoundRobin, SmoothWeighted
from gatehouse_gateway.balancing.cursor import LocalCursor, RedisCursor
from gatehouse_gateway.config.schema import PassiveHealthConfig
from gatehouse_gateway.upstream.backend import BackendState


def _backends(*weights: int) -> list[BackendState]:
    return [
        BackendState("unit", f"http://10.0.0.{i}:80", w, PassiveHealthConfig())
        for i, w in enumerate(weights, start=1)
    ]


async def test_smooth_weighted_interleaves_like_nginx() -> None:
    backends = _backends(5, 1, 1)
    balancer = SmoothWeighted(backends)
    picks = [(await balancer.pick()) for _ in range(7)]
    names = "".join("abc"[backends.index(b)] for b in picks if b)
    assert names == "aabacaa"


async def test_every_strategy_skips_unavailable_backends() -> None:
    backends = _backends(1, 1, 1)
    backends[1].active_healthy = False
    backends[2].drained = True
    for balancer in [
        RoundRobin(backends, cursor=LocalCursor(), key="k"),
        RandomBalancer(backends),
        SmoothWeighted(backends),
        LeastRequests(backends),
    ]:
        for _ in range(20):
            assert await balancer.pick() is backends[0]
    backends[0].active_healthy = False
    assert await RoundRobin(backends, cursor=LocalCursor(), key="k").pick() is None
    assert await RandomBalancer(backends).pick() is None
    assert await LeastRequests(backends).pick() is None


async def test_least_requests_prefers_the_idle_backend() -> None:
    backends = _backends(1, 1)
    backends[0].in_flight = 10
    balancer = LeastRequests(backends)
    picks = collections.Counter([await balancer.pick() for _ in range(50)])
    assert picks[backends[1]] == 50


async def test_passive_ejection_after_consecutive_failures() -> None:
    backend = _backends(1)[0]
    backend.passive = PassiveHealthConfig(consecutive_failures=2, ejection_time=30)
    backend.record_failure("connect_error")
    assert backend.available
    backend.record_failure("connect_error")
    assert not backend.available and backend.ejected


async def test_redis_cursor_coalesces_a_tick_into_one_incrby(redis_prefix: str) -> None:
    cursor = RedisCursor(REDIS_URL, prefix=redis_prefix)
    await cursor.start()
    try:
        values = await asyncio.gather(*(cursor.next("route") for _ in range(100)))
        assert sorted(values) == list(range(100))
        assert values == list(range(100))  # handed out in the order asked
        more = await asyncio.gather(*(cursor.next("route") for _ in range(5)))
        assert more == [100, 101, 102, 103, 104]
    finally:
        await cursor.close()
    client = redis.Redis.from_url(REDIS_URL)
    assert int(client.get(f"{redis_prefix}cursor:route") or 0) == 105
    client.close()


async def test_redis_cursor_falls_back_without_failing_when_redis_is_unreachable() -> None:
    cursor = RedisCursor(f"redis://127.0.0.1:{free_port()}/0", prefix="x:", retry_interval=0.1)
    await cursor.start()
    try:
        assert cursor.state == "fallback"
        values = [await cursor.next("route") for _ in range(4)]
        assert values == [0, 1, 2, 3]
    finally:
        await cursor.close()
