"""Config reloads: SIGHUP under traffic fails no request; a bad file keeps the old config."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import httpx
from support.gateway import GatewayProcess, Launcher, gateway_route
from support.processes import ServiceProcess


def _version(gateway: GatewayProcess) -> int:
    return int(httpx.get(gateway.admin_url + "/-/config").json()["version"])


def _wait_version(gateway: GatewayProcess, version: int) -> None:
    deadline = time.monotonic() + 15
    while _version(gateway) < version:
        if time.monotonic() > deadline:
            raise AssertionError(f"config version {version} never loaded")
        time.sleep(0.05)


def test_sighup_reload_under_traffic_fails_no_request(
    launcher: Launcher, backends: list[ServiceProcess]
) -> None:
    old, new = backends[:2]
    gateway = launcher.gateway(
        {"routes": [gateway_route([old])]}, env={"GATEHOUSE_GATEWAY_WATCH_CONFIG": "false"}
    )
    failures: list[str] = []
    seen: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        with gateway.client() as client:
            while not stop.is_set() and len(seen) < 50_000:
                try:
                    response = client.get("/__backend/faults" if len(seen) % 2 else "/x")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                seen.append(response.headers.get("x-backend-instance", "faults"))

    workers = [threading.Thread(target=traffic) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.5)
        # a bad file first: the running config stays, the reason is logged
        gateway.config_path.write_text("routes:\n  - name: broken\n    backends: [{url: nope}]\n")
        gateway.signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while "config reload (SIGHUP) failed" not in gateway.log_text():
            assert time.monotonic() < deadline, gateway.log_tail()
            time.sleep(0.05)
        config = httpx.get(gateway.admin_url + "/-/config").json()
        assert config["version"] == 1
        assert "routes[0].backends[0].url" in config["last_reload_error"]
        # then a good one that moves the route to the other backend
        gateway.write_config({"routes": [gateway_route([new])]})
        gateway.signal(signal.SIGHUP)
        _wait_version(gateway, 2)
        switched_at = len(seen)
        time.sleep(0.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    assert failures == []
    after = Counter(seen[switched_at + 10 :])
    assert after["backend-2"] > 0 and after["backend-1"] == 0, after
    assert httpx.get(gateway.admin_url + "/-/config").json()["last_reload_error"] is None


def test_file_change_reloads_without_a_signal(
    launcher: Launcher, backends: list[ServiceProcess]
) -> None:
    backend = backends[0]
    gateway = launcher.gateway({"routes": [gateway_route([backend])]})
    with gateway.client() as client:
        assert client.get("/", headers={"Host": "second.test"}).status_code == 404
        gateway.write_config(
            {
                "routes": [
                    gateway_route([backend]),
                    gateway_route([backend], name="second", hosts=["second.test"]),
                ]
            }
        )
        _wait_version(gateway, 2)
        assert client.get("/", headers={"Host": "second.test"}).status_code == 200


def test_request_in_flight_during_a_reload_finishes_on_the_old_backend(
    launcher: Launcher, backends: list[ServiceProcess]
) -> None:
    slow, other = backends[2], backends[3]
    httpx.put(slow.url + "/__backend/faults", json={"latency_ms": 1500}).raise_for_status()
    gateway = launcher.gateway(
        {"routes": [gateway_route([slow])]}, env={"GATEHOUSE_GATEWAY_WATCH_CONFIG": "false"}
    )
    outcome: list[httpx.Response] = []

    def slow_request() -> None:
        with gateway.client() as client:
            outcome.append(client.get("/slow"))

    worker = threading.Thread(target=slow_request)
    worker.start()
    time.sleep(0.4)
    gateway.write_config({"routes": [gateway_route([other])]})
    gateway.signal(signal.SIGHUP)
    _wait_version(gateway, 2)
    worker.join(timeout=30)
    (response,) = outcome
    assert response.status_code == 200 and response.json()["instance"] == "backend-3"
    with gateway.client() as client:
        assert client.get("/").json()["instance"] == "backend-4"
