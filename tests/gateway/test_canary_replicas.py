"""Canary weights shared by two gateway processes through one real Redis.

Weights set through one replica reach the other (it polls one Redis hash
every ``canary_sync_interval``), survive a reload of either, and a reset
through the other replica reaches the first. A value written to Redis by
anything else is checked like API input: a bad one is ignored, with the
reason in the admin state, and never breaks routing.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis
from gateway.operator_support import ADMIN, bearer, wait_until
from support.databases import drop_redis_prefix, unique_redis_prefix
from support.gateway import GatewayProcess, Launcher, gateway_route, metric_value
from support.jwks import KeyServer
from support.processes import ServiceProcess

HOST = "weighted.test"


def document(keys: KeyServer, pool: list[ServiceProcess], version: int = 1) -> dict[str, Any]:
    route = gateway_route(
        pool[:1],
        name="weighted",
        hosts=[HOST, f"v{version}.weighted.test"],  # a change to the file, the same routing
        groups=[{"name": "canary", "backends": [{"url": pool[1].url}]}],
        split={"weights": {"primary": 1}},
    )
    return {"auth": {"jwks_url": keys.url}, "routes": [route]}


@pytest.fixture(scope="module")
def redis_prefix() -> Iterator[str]:
    """This module's Redis keys (its two gateways are shared by its tests); deleted after."""
    chosen = unique_redis_prefix("canary")
    yield chosen
    drop_redis_prefix(chosen)


@pytest.fixture(scope="module")
def pair(
    module_launcher: Launcher,
    keys: KeyServer,
    backend_pool: list[ServiceProcess],
    redis_url: str,
    redis_prefix: str,
) -> list[GatewayProcess]:
    env = {"REDIS_URL": redis_url, "GATEHOUSE_GATEWAY_REDIS_PREFIX": redis_prefix}
    with ThreadPoolExecutor(2) as pool:
        started = [
            pool.submit(
                module_launcher.gateway,
                document(keys, backend_pool),
                env=env,
                name=f"gateway-{side}",
            )
            for side in ("a", "b")
        ]
        return [future.result() for future in started]


def weights_url(gateway: GatewayProcess) -> str:
    return f"{gateway.admin_url}{ADMIN}/routes/weighted/weights"


def split_of(gateway: GatewayProcess, token: str) -> dict[str, Any]:
    view: dict[str, Any] = httpx.get(weights_url(gateway), headers=bearer(token)).json()
    return view


def instances(gateway: GatewayProcess, count: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    with gateway.client(headers={"Host": HOST}) as client:
        for n in range(count):
            response = client.get(f"/replica/{n}")
            assert response.status_code == 200, response.text
            seen[response.headers["x-backend-instance"]] += 1
    return seen


def version(gateway: GatewayProcess) -> int:
    return int(httpx.get(gateway.admin_url + "/-/config", timeout=5).json()["version"])


def test_weights_set_through_one_replica_reach_the_other_and_survive_a_reload(
    pair: list[GatewayProcess],
    keys: KeyServer,
    backend_pool: list[ServiceProcess],
    redis_url: str,
    redis_prefix: str,
) -> None:
    first, second = pair
    token = keys.token(roles=["admin"], email="ops@example.com")
    store = redis.Redis.from_url(redis_url)
    try:
        assert instances(second, 10) == {"backend-1": 10}
        response = httpx.put(
            weights_url(first), json={"weights": {"canary": 1}}, headers=bearer(token)
        )
        assert response.status_code == 200, response.text
        assert response.json()["stored_in_redis"] is True
        asked = time.monotonic()
        stored = json.loads(store.hget(f"{redis_prefix}canary:weights", "weighted") or b"{}")
        assert stored["weights"] == {"canary": 1} and stored["by"] == "ops@example.com"

        wait_until(
            lambda: split_of(second, token)["weights"] == {"primary": 0, "canary": 1},
            "the other replica to apply the weights",
            timeout=10,
        )
        reached = time.monotonic() - asked
        assert instances(second, 20) == {"backend-2": 20}, f"applied after {reached:.2f}s"
        assert split_of(second, token)["override"]["by"] == "ops@example.com"

        # a reload of either replica keeps the override from its first request on
        for gateway in pair:
            gateway.write_config(document(keys, backend_pool, version=2))
        wait_until(lambda: all(version(g) == 2 for g in pair), "both to reload")
        for gateway in pair:
            assert instances(gateway, 20) == {"backend-2": 20}

        # a reset through the second replica reaches the first
        assert httpx.delete(weights_url(second), headers=bearer(token)).status_code == 200
        assert store.hget(f"{redis_prefix}canary:weights", "weighted") is None
        wait_until(
            lambda: split_of(first, token)["override"] is None, "the reset to reach the first"
        )
        assert instances(first, 20) == {"backend-1": 20}
        assert "by another replica" in first.log_text()
        assert "by another replica" in second.log_text()
        assert metric_value(first.metrics(), "gateway_canary_weights_store_up") == 1
    finally:
        store.close()


def test_a_value_written_to_redis_is_checked_before_it_is_used(
    pair: list[GatewayProcess], keys: KeyServer, redis_url: str, redis_prefix: str
) -> None:
    token = keys.token(roles=["admin"])
    key = f"{redis_prefix}canary:weights"
    store = redis.Redis.from_url(redis_url)
    try:
        store.hset(key, "weighted", json.dumps({"weights": {"primary": -3, "canary": 5}}))
        wait_until(
            lambda: all(split_of(g, token)["redis_value_ignored"] for g in pair),
            "both replicas to ignore the bad value",
        )
        view = split_of(pair[0], token)
        assert "must be 0..1000000" in view["redis_value_ignored"]
        assert view["weights"] == {"primary": 1, "canary": 0} and view["override"] is None
        assert instances(pair[0], 10) == {"backend-1": 10}

        # a good value written by another tool is used, even for a group-less name
        store.hset(key, "weighted", json.dumps({"weights": {"canary": 2, "gone": 5}}))
        wait_until(
            lambda: all(split_of(g, token)["weights"]["canary"] == 2 for g in pair),
            "both replicas to take the written value",
        )
        assert instances(pair[1], 10) == {"backend-2": 10}
        # one that names none of the route's groups leaves the file's weights
        store.hset(key, "weighted", json.dumps({"weights": {"gone": 5}}))
        wait_until(
            lambda: all(split_of(g, token)["override_unusable"] for g in pair),
            "both replicas to refuse an override for other groups",
        )
        assert instances(pair[1], 10) == {"backend-1": 10}
    finally:
        store.close()
