"""The round-robin cursor: coalesced INCRBY, shared across gateways, Redis outages."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections import Counter

import httpx
import redis
from support.databases import REDIS_URL
from support.gateway import GatewayProcess, Launcher, gateway_route, metric_value
from support.processes import ServiceProcess, free_port
from support.redis_server import RedisServer

from gatehouse_gateway.balancing.redis_cursor import RedisCursor


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


def test_two_gateways_share_one_exact_round_robin(
    launcher: Launcher, backends: list[ServiceProcess], redis_prefix: str
) -> None:
    env = {"REDIS_URL": REDIS_URL, "GATEHOUSE_GATEWAY_REDIS_PREFIX": redis_prefix}
    document = {"routes": [gateway_route(backends)]}
    gateways = [launcher.gateway(document, env=env, name=f"gw{i}") for i in (1, 2)]
    for gateway in gateways:
        assert httpx.get(gateway.admin_url + "/-/config").json()["cursor"]["state"] == "redis"

    clients = [gateway.client() for gateway in gateways]

    def one(i: int) -> str:
        response = clients[i % 2].get("/")
        assert response.status_code == 200, response.text
        return str(response.json()["instance"])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        seen = Counter(pool.map(one, range(1000)))
    for client in clients:
        client.close()
    assert sum(seen.values()) == 1000
    assert all(abs(count - 250) <= 1 for count in seen.values()), seen
    assert len(seen) == 4


def _cursor_state(gateway: GatewayProcess) -> str:
    return str(httpx.get(gateway.admin_url + "/-/config").json()["cursor"]["state"])


def test_redis_outage_falls_back_without_failing_and_returns(
    launcher: Launcher,
    backends: list[ServiceProcess],
    private_redis: RedisServer,
) -> None:
    port = private_redis.start().port
    gateway = launcher.gateway(
        {"routes": [gateway_route(backends[:2])]},
        env={
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "GATEHOUSE_GATEWAY_REDIS_PREFIX": "outage:",
            "GATEHOUSE_GATEWAY_REDIS_RETRY_INTERVAL": "0.2",
        },
    )
    failures: list[str] = []
    sent = 0
    stop = threading.Event()

    def traffic() -> None:
        nonlocal sent
        with gateway.client() as client:
            while not stop.is_set() and sent < 20_000:
                try:
                    response = client.get("/")
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                sent += 1

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        time.sleep(0.5)
        assert _cursor_state(gateway) == "redis"
        private_redis.kill()
        _wait_for(lambda: _cursor_state(gateway) == "fallback")
        before = sent
        time.sleep(0.5)
        assert sent > before  # traffic kept flowing while Redis was down
        metrics = gateway.metrics()
        assert metric_value(metrics, "gateway_cursor_fallbacks_total") > 0
        assert metric_value(metrics, "gateway_cursor_state", state="fallback") == 1
        private_redis.start()
        _wait_for(lambda: _cursor_state(gateway) == "redis")
        time.sleep(0.3)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert failures == []
    assert metric_value(gateway.metrics(), "gateway_cursor_state", state="redis") == 1
    fresh = redis.Redis(port=port)
    assert int(fresh.get("outage:cursor:app") or 0) > 0  # the new Redis counts again
    fresh.close()
    log = gateway.log_text()
    assert log.count("Redis unreachable") == 1 and log.count("Redis is back") == 1


def _wait_for(condition: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")
