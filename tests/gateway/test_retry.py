"""Failures on the way to a backend: retries elsewhere, timeouts, and what clients see."""

from __future__ import annotations

import threading
import time

import httpx
from support.gateway import Launcher, RawBackend, gateway_route, metric_value
from support.processes import ServiceProcess, free_port

from gatehouse_gateway.config.schema import RetriesConfig
from gatehouse_gateway.upstream.retry import RetryBudget


def test_killed_backend_costs_no_failed_get(launcher: Launcher) -> None:
    backends = launcher.backends(3)
    route = gateway_route(
        backends,
        retries={"attempts": 2},
        passive_health={"consecutive_failures": 2, "ejection_time": 30},
    )
    gateway = launcher.gateway({"routes": [route]})
    failures: list[str] = []
    answered: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        with gateway.client() as client:
            while not stop.is_set() and len(answered) < 20_000:
                try:
                    response = client.get("/work")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                else:
                    answered.append(response.json()["instance"])

    workers = [threading.Thread(target=traffic) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.7)
        backends[1].kill()
        killed_at = len(answered)
        time.sleep(1.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    assert failures == []
    assert len(answered) > killed_at + 50
    assert "backend-2" not in answered[killed_at + 20 :]
    metrics = gateway.metrics()
    assert metric_value(metrics, "gateway_retries_total", route="app") >= 1
    assert metric_value(metrics, "gateway_ejections_total", route="app") >= 1
    dead = backends[1].url.removeprefix("http://")
    assert metric_value(metrics, "gateway_backend_up", route="app", backend=dead) == 0
    state = httpx.get(gateway.admin_url + "/-/config").json()["routes"][0]["backends"][1]
    assert state["ejected"] and not state["available"]


def test_slow_backend_gives_504_within_the_read_timeout(
    launcher: Launcher, backends: list[ServiceProcess]
) -> None:
    backend = backends[0]
    httpx.put(backend.url + "/__backend/faults", json={"latency_ms": 5000}).raise_for_status()
    gateway = launcher.gateway(
        {"routes": [gateway_route([backend], timeouts={"connect": 1, "read": 0.5})]}
    )
    with gateway.client() as client:
        started = time.monotonic()
        response = client.get("/slow")
        elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json()["error"] == "upstream_timeout"
    assert response.json()["route"] == "app"
    assert elapsed < 3.0  # generous: the timeout is 0.5 s, the backend takes 5 s


def test_unreachable_backend_is_502_even_once_ejected(launcher: Launcher) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    route = gateway_route(
        [nowhere], passive_health={"consecutive_failures": 1}, health_check={"enabled": False}
    )
    gateway = launcher.gateway({"routes": [route]})
    with gateway.client() as client:
        for _ in range(3):  # ejected after the first, tried anyway (panic mode)
            response = client.get("/")
            assert response.status_code == 502
            assert response.json()["error"] == "upstream_unreachable"


def test_backend_found_down_by_active_checks_is_503_naming_the_route(launcher: Launcher) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    route = gateway_route(
        [nowhere], health_check={"interval": 0.2, "timeout": 0.5, "unhealthy_threshold": 1}
    )
    gateway = launcher.gateway({"routes": [route]})
    with gateway.client() as client:
        deadline = time.monotonic() + 10
        while (response := client.post("/", content=b"x")).status_code != 503:
            assert time.monotonic() < deadline, "the active check never marked it down"
            time.sleep(0.1)
    assert response.json() == {
        "error": "no_healthy_backend",
        "detail": "route 'app' has no healthy backend",
        "route": "app",
    }


def test_a_route_whose_every_backend_is_ejected_still_tries_them(
    launcher: Launcher, backends: list[ServiceProcess]
) -> None:
    """Panic mode: ejection alone never turns a recovered route into 503s."""
    backend = backends[0]
    faults = backend.url + "/__backend/faults"
    httpx.put(faults, json={"error_rate": 1, "error_status": 503}).raise_for_status()
    route = gateway_route(
        [backend],
        passive_health={"consecutive_failures": 2, "ejection_time": 60, "max_ejection_time": 60},
        retries={"attempts": 0},
    )
    gateway = launcher.gateway({"routes": [route]})
    try:
        with gateway.client() as client:
            assert [client.get("/").status_code for _ in range(3)] == [503, 503, 503]
            state = httpx.get(gateway.admin_url + "/-/config").json()["routes"][0]["backends"][0]
            assert state["ejected"]
            httpx.put(faults, json={"error_rate": 0}).raise_for_status()
            recovered = client.get("/")  # ejected for a minute, yet tried at once
            assert recovered.status_code == 200
            assert recovered.json()["path"] == "/"
    finally:
        httpx.post(backend.url + "/__backend/reset")


def test_backend_503_is_retried_for_get_but_not_for_post(
    launcher: Launcher, backends: list[ServiceProcess]
) -> None:
    failing, healthy = backends[:2]
    httpx.put(failing.url + "/__backend/faults", json={"error_rate": 1}).raise_for_status()
    route = gateway_route(
        [failing, healthy], strategy="round_robin", passive_health={"enabled": False}
    )
    gateway = launcher.gateway({"routes": [route]})
    with gateway.client() as client:
        gets = [client.get("/") for _ in range(6)]
        assert [r.status_code for r in gets] == [200] * 6
        posts = [client.post("/", content=b"p").status_code for _ in range(6)]
    assert posts.count(503) == 3 and posts.count(200) == 3
    assert metric_value(gateway.metrics(), "gateway_retries_total", route="app") == 3


def test_retry_budget_bounds_retries_to_a_share_of_requests() -> None:
    budget = RetryBudget(RetriesConfig(budget_ratio=0.5, budget_min_per_second=0))
    spent = 0
    while budget.withdraw():  # the initial allowance
        spent += 1
    assert spent == 10
    for _ in range(10):
        budget.deposit()
    allowed = sum(budget.withdraw() for _ in range(10))
    assert allowed == 5  # half a retry per request


def test_backend_hanging_up_mid_body_is_502_never_500(launcher: Launcher) -> None:
    broken = RawBackend(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
    try:
        route = gateway_route([broken.url], retries={"attempts": 0})
        gateway = launcher.gateway({"routes": [route]})
        with gateway.client() as client:
            response = client.get("/")
        assert response.status_code == 502
        assert response.json()["error"] == "upstream_failed"
    finally:
        broken.close()


def test_backend_hanging_up_before_a_small_body_is_retried_elsewhere(
    launcher: Launcher, backends: list[ServiceProcess]
) -> None:
    """A backend that dies between its head and its body costs a GET nothing.

    Nothing has reached the client yet, so the attempt is retried like a reset;
    a POST is not retried, and gets a 502 JSON answer.
    """
    broken = RawBackend(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
    try:
        route = gateway_route(
            [broken.url, backends[0].url],
            strategy="round_robin",
            retries={"attempts": 2},
            passive_health={"consecutive_failures": 1000, "ejection_time": 30},
        )
        gateway = launcher.gateway({"routes": [route]})
        with gateway.client() as client:
            statuses = [client.get(f"/item/{n}").status_code for n in range(10)]
            posted = [client.post("/item", content=b"x").status_code for _ in range(4)]
        assert statuses == [200] * 10
        assert 502 in posted and set(posted) <= {200, 502}
        assert metric_value(gateway.metrics(), "gateway_retries_total", route="app") >= 5
    finally:
        broken.close()
