"""Strategies: exact sequences in-process, distributions through a real gateway."""

from __future__ import annotations

import collections
from collections import Counter

import httpx
import pytest
from support.gateway import Launcher
from support.processes import ServiceProcess

from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.balancing import LeastRequests, RandomBalancer, RoundRobin, SmoothWeighted
from gatehouse_gateway.balancing.cursor import LocalCursor
from gatehouse_gateway.config.schema import PassiveHealthConfig


def _backends(*weights: int) -> list[BackendState]:
    return [
        BackendState("unit", f"http://10.0.0.{i}:80", w, PassiveHealthConfig())
        for i, w in enumerate(weights, start=1)
    ]


@pytest.mark.unit
async def test_smooth_weighted_interleaves_like_nginx() -> None:
    backends = _backends(5, 1, 1)
    balancer = SmoothWeighted(backends)
    picks = [(await balancer.pick()) for _ in range(7)]
    names = "".join("abc"[backends.index(b)] for b in picks if b)
    assert names == "aabacaa"


@pytest.mark.unit
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


@pytest.mark.unit
async def test_least_requests_prefers_the_idle_backend() -> None:
    backends = _backends(1, 1)
    backends[0].in_flight = 10
    balancer = LeastRequests(backends)
    picks = collections.Counter([await balancer.pick() for _ in range(50)])
    assert picks[backends[1]] == 50


@pytest.mark.unit
async def test_passive_ejection_after_consecutive_failures() -> None:
    backend = _backends(1)[0]
    backend.passive = PassiveHealthConfig(consecutive_failures=2, ejection_time=30)
    backend.record_failure("connect_error")
    assert backend.available
    backend.record_failure("connect_error")
    assert not backend.available and backend.ejected


def _instances(url: str, host: str, count: int, concurrency: int = 1) -> Counter[str]:
    """Send ``count`` GETs (``concurrency`` at a time); which instance answered each."""
    import concurrent.futures

    seen: Counter[str] = Counter()
    with httpx.Client(base_url=url, headers={"Host": host}, timeout=30) as client:

        def one(_: int) -> str:
            response = client.get("/")
            assert response.status_code == 200, response.text
            return str(response.json()["instance"])

        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            seen.update(pool.map(one, range(count)))
    return seen


def test_strategy_distributions_through_the_gateway(
    launcher: Launcher, backends: list[ServiceProcess]
) -> None:
    urls = [{"url": b.url} for b in backends]
    weighted = [{"url": b.url, "weight": w} for b, w in zip(backends, [1, 2, 3, 4], strict=True)]
    routes = [
        {"name": name, "hosts": [f"{name}.test"], "strategy": strategy, "backends": chosen}
        for name, strategy, chosen in [
            ("rr", "round_robin", urls),
            ("rand", "random", urls),
            ("wrr", "weighted_round_robin", weighted),
            ("least", "least_requests", urls),
        ]
    ]
    gateway = launcher.gateway({"routes": routes})
    names = [f"backend-{i}" for i in range(1, 5)]

    assert _instances(gateway.url, "rr.test", 100, concurrency=8) == dict.fromkeys(names, 25)
    assert _instances(gateway.url, "wrr.test", 100) == dict(
        zip(names, [10, 20, 30, 40], strict=True)
    )
    spread = _instances(gateway.url, "rand.test", 400, concurrency=8)
    assert set(spread) == set(names) and min(spread.values()) >= 50, spread

    # least_requests: a slow backend holds its requests longer, so it gets fewer.
    httpx.put(backends[0].url + "/__backend/faults", json={"latency_ms": 200}).raise_for_status()
    try:
        loaded = _instances(gateway.url, "least.test", 200, concurrency=12)
    finally:
        httpx.post(backends[0].url + "/__backend/reset").raise_for_status()
    fast = [loaded[n] for n in names[1:]]
    assert loaded["backend-1"] < min(fast) / 2, loaded
