"""Active health checks and the pool: a check that cannot get a connection
(all of them busy) says nothing about the backend's health."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from gateway.test_upstream_pool import KeepAliveBackend, finish, get, shut

from gatehouse_gateway.config.schema import HealthCheckConfig, PassiveHealthConfig
from gatehouse_gateway.upstream.backend import BackendState
from gatehouse_gateway.upstream.h1 import UpstreamClient
from gatehouse_gateway.upstream.health import HealthMonitor


async def test_a_check_that_finds_every_connection_busy_gives_no_verdict() -> None:
    backend = await KeepAliveBackend().start()
    client = UpstreamClient(backend_limit=1)
    state = BackendState("health-pool-test", backend.url, 1, PassiveHealthConfig())
    check = HealthCheckConfig(timeout=0.3, unhealthy_threshold=1, healthy_threshold=1)
    route: Any = SimpleNamespace(config=SimpleNamespace(health_check=check))
    monitor = HealthMonitor(client, lambda: [])
    try:
        held = await get(client, backend.url)  # the only connection allowed, busy
        await monitor._check(state, route)
        assert state.active_healthy
        assert state.check_failures == 0 and state.check_successes == 0
        await finish(held)
        await monitor._check(state, route)  # the raw backend answers 200 to any path
        assert state.check_successes == 1
    finally:
        await shut(client, backend)
