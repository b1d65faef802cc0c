"""Active health checks: a failing backend leaves the rotation and comes back."""

from __future__ import annotations

import time
from collections import Counter

import httpx
from support.gateway import GatewayProcess, Launcher, gateway_route, metric_value
from support.processes import ServiceProcess


def _wait_until(gateway: GatewayProcess, index: int, available: bool) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        route = httpx.get(gateway.admin_url + "/-/config").json()["routes"][0]
        if route["backends"][index]["available"] is available:
            return
        time.sleep(0.1)
    raise AssertionError(f"backend {index} never became available={available}")


def test_unhealthy_backend_is_skipped_until_it_recovers(
    launcher: Launcher, backends: list[ServiceProcess]
) -> None:
    sick, well = backends[:2]
    httpx.put(sick.url + "/__backend/faults", json={"healthy": False}).raise_for_status()
    check = {"path": "/healthz", "interval": 0.2, "healthy_threshold": 2, "unhealthy_threshold": 2}
    gateway = launcher.gateway({"routes": [gateway_route([sick, well], health_check=check)]})
    _wait_until(gateway, 0, available=False)
    sick_name = sick.url.removeprefix("http://")
    assert metric_value(gateway.metrics(), "gateway_backend_up", backend=sick_name) == 0
    with gateway.client() as client:
        seen = Counter(client.get("/").json()["instance"] for _ in range(10))
    assert seen == {"backend-2": 10}

    httpx.put(sick.url + "/__backend/faults", json={"healthy": True}).raise_for_status()
    _wait_until(gateway, 0, available=True)
    with gateway.client() as client:
        seen = Counter(client.get("/").json()["instance"] for _ in range(10))
    assert seen == {"backend-1": 5, "backend-2": 5}
    assert metric_value(gateway.metrics(), "gateway_backend_up", backend=sick_name) == 1
    assert "is now unhealthy" in gateway.log_text()
