"""Drains under load across two gateway processes sharing one Redis.

Both gateways route ``app`` round robin over three backends of the session's
pool, with their own Redis key prefix. A drain asked of one gateway must
reach the other through Redis: from the moment both report it, neither sends
the drained backend a new request, requests already there finish, and no
request fails at any point. A restore asked of the other gateway brings it
back on both.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from gateway.operator_support import (
    admin_state,
    backend_of,
    bearer,
    drain_path,
    load,
    wait_until,
)
from support.databases import REDIS_URL, drop_redis_prefix, unique_redis_prefix
from support.gateway import HOST, GatewayProcess, Launcher, gateway_route, metric_value
from support.jwks import KeyServer
from support.processes import ServiceProcess
from support.redis_server import RedisServer

from gatehouse_gateway.balancing import LocalCursor
from gatehouse_gateway.config.schema import BackendConfig, GatewayConfig, RouteConfig
from gatehouse_gateway.operator.drain import DrainCoordinator
from gatehouse_gateway.routing import RouteTable, build_table

LATENCY_MS = 300


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    """This module's Redis keys; deleted afterwards."""
    chosen = unique_redis_prefix("operator-drain")
    yield chosen
    drop_redis_prefix(chosen)


@pytest.fixture(scope="module")
def admin_token(keys: KeyServer) -> str:
    return keys.token(roles=["admin"], email="ops@example.com")


@pytest.fixture(scope="module")
def pair(
    module_launcher: Launcher, keys: KeyServer, backend_pool: list[ServiceProcess], prefix: str
) -> list[GatewayProcess]:
    document = {
        "auth": {"jwks_url": keys.url},
        "cursor": {"store": "redis"},
        "routes": [gateway_route(backend_pool[:3])],
    }
    env = {
        "REDIS_URL": REDIS_URL,
        "GATEHOUSE_GATEWAY_REDIS_PREFIX": prefix,
        "GATEHOUSE_GATEWAY_DRAIN_SYNC_INTERVAL": "0.5",
    }
    with ThreadPoolExecutor(2) as pool:
        started = [
            pool.submit(module_launcher.gateway, document, env=env, name=f"gateway-{side}")
            for side in ("a", "b")
        ]
        return [future.result() for future in started]


def drained_everywhere(gateways: list[GatewayProcess], token: str, backend: ServiceProcess) -> bool:
    return all(backend_of(admin_state(g, token), "app", backend)["drained"] for g in gateways)


def restored_everywhere(
    gateways: list[GatewayProcess], token: str, backend: ServiceProcess
) -> bool:
    return not any(backend_of(admin_state(g, token), "app", backend)["drained"] for g in gateways)


def test_a_drain_reaches_both_gateways_under_load_without_a_failed_request(
    pair: list[GatewayProcess],
    admin_token: str,
    backends: list[ServiceProcess],
    prefix: str,
) -> None:
    first, second = pair
    target = backends[0]
    for backend in backends[:3]:
        httpx.put(backend.url + "/__backend/faults", json={"latency_ms": LATENCY_MS})
    store = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    key = f"{prefix}{{drain}}:app:127.0.0.1:{target.port}"
    before = [g.metrics() for g in pair]
    try:
        with load(pair, HOST) as traffic:
            wait_until(
                lambda: (
                    backend_of(admin_state(first, admin_token), "app", target)["in_flight"] >= 1
                ),
                "a request in flight on the backend about to be drained",
            )
            asked = time.monotonic()
            response = httpx.post(
                first.admin_url + drain_path("app", target, "drain"),
                headers=bearer(admin_token),
                timeout=10,
            )
            assert response.status_code == 200, response.text
            result = response.json()
            assert result["shared"] is True and result["stored_in_redis"] is True
            assert json.loads(store.get(key) or "{}")["by"] == "ops@example.com"

            wait_until(lambda: drained_everywhere(pair, admin_token, target), "both to drain")
            both_drained = time.monotonic()
            time.sleep(1.5)
            for gateway in pair:
                view = backend_of(admin_state(gateway, admin_token), "app", target)
                assert view["status"] == "drained" and view["in_flight"] == 0
                assert view["drain"]["by"] == "ops@example.com"
            drained_window = traffic.since(both_drained)

            response = httpx.post(
                second.admin_url + drain_path("app", target, "restore"),
                headers=bearer(admin_token),
                timeout=10,
            )
            assert response.status_code == 200, response.text
            assert store.get(key) is None
            wait_until(lambda: restored_everywhere(pair, admin_token, target), "both to restore")
            both_restored = time.monotonic()
            time.sleep(1.0)
        outcomes = list(traffic.outcomes)
    finally:
        store.close()

    assert traffic.errors == []
    assert [o for o in outcomes if o.status != 200] == []
    # requests the drained backend already had finished, after the drain was asked
    assert any(o.instance == target.name and o.sent < asked < o.done for o in outcomes)
    # no new request reached it from either gateway while both reported it drained
    window = [o for o in drained_window if o.done < both_restored]
    assert {o.gateway for o in window} == {first.url, second.url}
    assert [o for o in window if o.instance == target.name] == []
    # back on both after the restore
    after = [o for o in outcomes if o.sent > both_restored]
    assert {o.gateway for o in after if o.instance == target.name} == {first.url, second.url}

    # the dashboard's history: once the last busy 5 s bucket is complete, the
    # requests it holds per backend are exactly those the first gateway sent
    answered = {
        b.name: sum(1 for o in outcomes if o.gateway == first.url and o.instance == b.name)
        for b in backends[:3]
    }

    def history_totals() -> dict[str, int]:
        response = httpx.get(first.admin_url + "/-/admin/history", headers=bearer(admin_token))
        document = response.json()
        series = document["routes"]["app"]
        return {
            b.name: round(sum(series[f"127.0.0.1:{b.port}"]["requests_per_second"]) * 5)
            for b in backends[:3]
        }

    wait_until(lambda: history_totals() == answered, f"history to hold {answered}")
    errors = httpx.get(first.admin_url + "/-/admin/history", headers=bearer(admin_token)).json()
    assert errors["bucket_seconds"] == 5
    assert all(
        rate == 0.0
        for backend in errors["routes"]["app"].values()
        for rate in backend["error_rate"]
    )

    counted = [
        metric_value(g.metrics(), "gateway_drains_total", action=action)
        - metric_value(b, "gateway_drains_total", action=action)
        for g, b, action in ((first, before[0], "drain"), (second, before[1], "restore"))
    ]
    assert counted == [1, 1]
    assert "by another replica" in second.log_text()
    assert "by another replica" in first.log_text()


def test_a_drain_key_written_straight_to_redis_is_honoured_even_if_unreadable(
    pair: list[GatewayProcess], admin_token: str, backend_pool: list[ServiceProcess], prefix: str
) -> None:
    target = backend_pool[1]
    store = redis.Redis.from_url(REDIS_URL)
    key = f"{prefix}{{drain}}:app:127.0.0.1:{target.port}"
    try:
        store.set(key, b"\xff not json")
        wait_until(lambda: drained_everywhere(pair, admin_token, target), "both to drain")
        view = backend_of(admin_state(pair[0], admin_token), "app", target)
        assert view["drain"] == {"by": "unknown", "at": None}
        store.delete(key)
        wait_until(lambda: restored_everywhere(pair, admin_token, target), "both to restore")
    finally:
        store.delete(key)
        store.close()


def test_a_drain_while_redis_is_down_applies_here_and_is_stored_when_it_is_back(
    launcher: Launcher,
    keys: KeyServer,
    admin_token: str,
    backends: list[ServiceProcess],
    private_redis: RedisServer,
) -> None:
    port = private_redis.start().port
    gateway = launcher.gateway(
        {"auth": {"jwks_url": keys.url}, "routes": [gateway_route(backends[:2])]},
        env={
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "GATEHOUSE_GATEWAY_REDIS_PREFIX": "outage:",
            "GATEHOUSE_GATEWAY_DRAIN_SYNC_INTERVAL": "0.2",
        },
    )
    target, kept = backends[0], backends[1]
    assert admin_state(gateway, admin_token)["drains"]["state"] == "redis"
    private_redis.kill()

    response = httpx.post(
        gateway.admin_url + drain_path("app", target, "drain"),
        headers=bearer(admin_token),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["drained"] is True and result["shared"] is True
    assert result["stored_in_redis"] is False and "unreachable" in result["detail"]
    drains = admin_state(gateway, admin_token)["drains"]
    assert drains["state"] == "unreachable" and drains["unsent_changes"] == 1
    assert drains["last_error"]
    with gateway.client() as client:
        assert {client.get(f"/{i}").headers["x-backend-instance"] for i in range(6)} == {kept.name}

    private_redis.start()  # empty: it must not undo the drain
    wait_until(
        lambda: admin_state(gateway, admin_token)["drains"]["unsent_changes"] == 0,
        "the drain to reach Redis again",
    )
    store = redis.Redis(port=port)
    try:
        assert store.exists(f"outage:{{drain}}:app:127.0.0.1:{target.port}") == 1
    finally:
        store.close()
    state = admin_state(gateway, admin_token)
    assert state["drains"]["state"] == "redis"
    assert backend_of(state, "app", target)["drained"] is True
    log = gateway.log_text()
    assert log.count("drain sync cannot reach Redis") == 1
    assert log.count("drain sync reaches Redis again") == 1


def _replica(prefix: str) -> tuple[DrainCoordinator, RouteTable]:
    """One replica's drain coordinator and route table, in this process, on the real Redis."""
    config = GatewayConfig(
        routes=[
            RouteConfig(
                name="app",
                backends=[BackendConfig(url="http://127.0.0.1:1"), BackendConfig(url="http://b:2")],
            )
        ]
    )
    table = build_table(config, LocalCursor())
    coordinator = DrainCoordinator(
        lambda: table.routes, redis_url=REDIS_URL, prefix=prefix, timeout=2.0
    )
    return coordinator, table


async def test_drains_asked_while_replicas_sync_end_in_the_last_state_asked(
    redis_prefix: str,
) -> None:
    """Operator calls racing each other and both replicas' sync loops: no error, no flip back."""
    (here, here_table), (there, there_table) = _replica(redis_prefix), _replica(redis_prefix)
    route = here_table.routes[0]
    backend = route.backends[0]
    try:
        for round_number in range(15):
            wanted = round_number % 2 == 0
            await asyncio.gather(
                here.sync(),
                here.set_drained(route, backend, not wanted, actor="ops"),
                there.sync(),
                here.set_drained(route, backend, wanted, actor="ops"),
                here.sync(),
            )
            assert backend.drained is wanted  # the last call asked wins here at once
            await here.sync()
            await there.sync()
            assert backend.drained is wanted
            assert there_table.routes[0].backends[0].drained is wanted
            assert route.backends[1].drained is False
            assert here.snapshot()["unsent_changes"] == 0
    finally:
        await here.close()
        await there.close()
