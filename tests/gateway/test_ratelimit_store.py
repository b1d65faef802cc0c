"""The rate limits in process: the lease script, batched refills, fallback, memory, reloads."""

from __future__ import annotations

import asyncio
import time

import redis
from prometheus_client import REGISTRY
from support.databases import REDIS_URL
from support.processes import free_port
from support.redis_server import RedisServer

from gatehouse_gateway.balancing.cursor import LocalCursor
from gatehouse_gateway.config.ratelimit import RateLimitConfig
from gatehouse_gateway.config.schema import GatewayConfig
from gatehouse_gateway.policy.ratelimit import RateLimiter
from gatehouse_gateway.policy.ratelimit.limit import ALLOW, REFUSE, Limit
from gatehouse_gateway.policy.ratelimit.scripts import LEASE, bucket_key, replicas_key
from gatehouse_gateway.policy.ratelimit.store import LeaseStore
from gatehouse_gateway.routing import RouteTable, build_table


def lease(client: redis.Redis, key: str, debit: int, want: int) -> list[int]:
    # one token a second, burst 5
    return [int(x) for x in client.eval(LEASE, 1, key, 1000, 5, debit, want)]


def test_the_lease_script_grants_what_the_bucket_holds_and_charges_credit(
    redis_prefix: str,
) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    key = bucket_key(redis_prefix, "app", "per-user", "ada")
    # one slot per bucket: the hash tag is the whole bucket name
    assert key == f"{redis_prefix}rl:{{app:per-user:ada}}"
    assert replicas_key(redis_prefix) == f"{redis_prefix}rl:{{replicas}}"
    granted, left, wait_ms, full_ms = lease(client, key, 0, 3)
    assert (granted, left, wait_ms) == (3, 2, 0)
    assert 2900 <= full_ms <= 3000
    assert lease(client, key, 0, 3)[:2] == [2, 0]  # only 2 were left
    granted, left, wait_ms, _ = lease(client, key, 0, 1)
    assert granted == 0 and 900 <= wait_ms <= 1000
    # credit spent by a replica is charged even past empty, and paid back in waiting
    granted, left, wait_ms, full_ms = lease(client, key, 2, 1)
    assert granted == 0 and left < 0 and 2900 <= wait_ms <= 3000
    ttl = client.pttl(key)
    assert 0 < ttl <= full_ms  # the key is gone once the bucket is full again
    client.delete(key)
    client.close()


async def test_refills_of_many_consumers_ride_one_round_trip(redis_prefix: str) -> None:
    store = LeaseStore(REDIS_URL, prefix=redis_prefix, timeout=1.0, retry_interval=5.0,
                       limits=lambda: [])  # fmt: skip
    await store.start()
    limit = Limit("app", RateLimitConfig(name="l", rate=10, per="minute", lease=4), store, 1000)
    trips = (
        REGISTRY.get_sample_value("gateway_ratelimit_store_round_trips_total", {"outcome": "ok"})
        or 0.0
    )
    try:
        now = time.monotonic()
        for index in range(200):
            assert limit.admits(f"user-{index}", now, "redis") == ALLOW
            limit.take(f"user-{index}", now, "redis")
        for _ in range(100):  # bounded wait for the background refill
            if not any(lease.syncing for lease in limit.leases.values()):
                break
            await asyncio.sleep(0.02)
        after = REGISTRY.get_sample_value(
            "gateway_ratelimit_store_round_trips_total", {"outcome": "ok"}
        )
        assert after == trips + 1
        leases = list(limit.leases.values())
        # each consumer's one request on credit was charged, and 4 more were leased
        assert all(lease.tokens == 4 and lease.debt == 0 for lease in leases)
        client = redis.Redis.from_url(REDIS_URL)
        assert len(client.keys(f"{redis_prefix}rl:{{app:l:*")) == 200
        client.close()
    finally:
        await store.close()


async def test_credit_spent_while_a_refill_is_on_its_way_is_charged_by_the_next(
    redis_prefix: str,
) -> None:
    store = LeaseStore(REDIS_URL, prefix=redis_prefix, timeout=1.0, retry_interval=5.0,
                       limits=lambda: [])  # fmt: skip
    await store.start()
    limit = Limit("app", RateLimitConfig(name="l", rate=10, per="minute", lease=4), store, 1000)
    try:
        limit.take("ada", time.monotonic(), "redis")  # on credit; its refill is queued
        await asyncio.sleep(0)  # the refill is on its way with a debit of 1
        assert limit.admits("ada", time.monotonic(), "redis") == ALLOW
        limit.take("ada", time.monotonic(), "redis")  # on credit again, meanwhile
        lease = limit.leases["ada"]
        for _ in range(100):  # bounded wait: no request comes to trigger another refill
            if not lease.syncing and not lease.debt:
                break
            await asyncio.sleep(0.02)
        assert (lease.tokens, lease.debt) == (4, 0)
        client = redis.Redis.from_url(REDIS_URL)
        # 2 on credit + 4 leased charged: 4 of the 10 are left in Redis
        granted, left, _, _ = client.eval(LEASE, 1, limit.redis_key("ada"), 6000, 10, 0, 0)
        assert (granted, left) == (0, 4)
        client.close()
    finally:
        await store.close()


async def test_an_unreachable_redis_falls_back_and_the_local_share_is_enforced() -> None:
    store = LeaseStore(f"redis://127.0.0.1:{free_port()}/0", prefix="x:", timeout=0.2,
                       retry_interval=5.0, limits=lambda: [limit])  # fmt: skip
    limit = Limit("app", RateLimitConfig(name="l", rate=1, per="hour", burst=4), store, 1000)
    await store.start()
    try:
        assert store.state == "fallback"
        store.replicas = 2  # two replicas were seen: each keeps half of the burst
        now = time.monotonic()
        decisions = []
        for _ in range(4):
            decisions.append(limit.admits("ada", now, "fallback"))
            if decisions[-1] == ALLOW:
                limit.take("ada", now, "fallback")
        assert decisions == [ALLOW, ALLOW, REFUSE, REFUSE]
    finally:
        await store.close()


def test_hostile_consumer_counts_cannot_grow_memory_without_end() -> None:
    store = LeaseStore(None, prefix="x:", timeout=0.2, retry_interval=1.0, limits=lambda: [])
    limit = Limit("app", RateLimitConfig(name="l", rate=1, per="hour"), store, 100)
    assert len(limit.buckets) == 0
    now = time.monotonic()
    for index in range(5000):
        limit.take(f"value-{index}", now, "local")
    assert len(limit.buckets) <= 100
    for index in range(5000):
        limit.refuse(f"value-{index}", now, "local")
    assert len(limit.recent) <= 1000
    limit.take("active", now + 3603, "local")
    limit.sweep(now + 3601 + 2)  # refilled to the brim: forgotten, the active one kept
    assert list(limit.buckets) == ["active"]


def test_a_reload_keeps_the_state_of_limits_it_does_not_change() -> None:
    def table(rate: int, extra: bool) -> RouteTable:
        key = {"by": "client_address"}
        limits = [{"name": "kept", "rate": 1, "per": "hour", "key": key}]
        limits.append({"name": "changed", "rate": rate, "per": "hour", "key": key})
        routes = [
            {"name": "app", "backends": [{"url": "http://127.0.0.1:9"}], "rate_limits": limits}
        ]
        if extra:
            routes.append({"name": "other", "path_prefix": "/other",
                           "backends": [{"url": "http://127.0.0.1:9"}]})  # fmt: skip
        return build_table(GatewayConfig.model_validate({"routes": routes}), LocalCursor())

    limiter = RateLimiter(None, prefix="x:", timeout=0.2, retry_interval=1.0, max_consumers=100)
    limiter.update(table(1, extra=False).routes)
    before = {limit.name: limit for limit in limiter.routes["app"].limits}
    now = time.monotonic()
    for limit in before.values():
        limit.take("ada", now, "local")
    limiter.update(table(2, extra=True).routes)
    after = {limit.name: limit for limit in limiter.routes["app"].limits}
    assert after["kept"] is before["kept"] and "ada" in after["kept"].buckets
    assert after["changed"] is not before["changed"] and after["changed"].buckets == {}
    assert set(limiter.routes) == {"app"}  # a route without limits costs nothing


async def test_a_frozen_redis_never_holds_a_request_and_is_left_after_the_timeout(
    private_redis: RedisServer,
) -> None:
    private_redis.start()
    store = LeaseStore(private_redis.redis_url, prefix="x:", timeout=0.2, retry_interval=5.0,
                       limits=lambda: [limit])  # fmt: skip
    limit = Limit("app", RateLimitConfig(name="l", rate=10, per="minute", lease=4), store, 100)
    await store.start()
    try:
        assert store.state == "redis"
        private_redis.freeze()  # the port stays open; every call hangs
        now = time.monotonic()
        limit.take("ada", now, "redis")  # on credit; the refill hangs in the background
        for _ in range(3):  # decided from memory while the refill waits
            assert limit.admits("ada", now, "redis") == ALLOW
            limit.take("ada", now, "redis")
        assert limit.admits("ada", now, "redis") == REFUSE  # the credit (4) is spent
        for _ in range(100):  # bounded: the socket timeout ends the wait
            if store.state == "fallback":
                break
            await asyncio.sleep(0.05)
        assert store.state == "fallback"
    finally:
        private_redis.thaw()
        await store.close()
