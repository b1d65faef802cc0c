"""The admin API over HTTP: admin JWT only, every field true, drain and restore.

One gateway for the module, verifying tokens signed here against a JWKS served
here (``KeyServer`` of the gateway's JWT tests). Its route ``app`` has two
backends of the session's pool and one dead URL (nothing listens there), so
the pool always has one backend down; route ``other`` is for drains.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gateway.operator_support import (
    ADMIN,
    admin_state,
    backend_of,
    bearer,
    drain_path,
    wait_until,
)
from support.gateway import HOST, GatewayProcess, Launcher, gateway_route, metric_value
from support.jwks import KID, KeyServer
from support.processes import ServiceProcess, free_port

OTHER_HOST = "other.gatehouse.test"
ADMIN_EMAIL = "root@example.com"


@pytest.fixture(scope="module")
def admin_token(keys: KeyServer) -> str:
    return keys.token(roles=["admin"], email=ADMIN_EMAIL, sub="1")


@pytest.fixture(scope="module")
def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def config(
    keys: KeyServer, pool: list[ServiceProcess], dead_url: str, *, timeout: float = 2.0
) -> dict[str, Any]:
    check = {"path": "/healthz", "interval": 0.2, "healthy_threshold": 1, "unhealthy_threshold": 1}
    return {
        "auth": {"jwks_url": keys.url},
        "cursor": {"store": "local"},
        "routes": [
            gateway_route(
                [pool[0], pool[1], dead_url],
                health_check=check,
                passive_health={"consecutive_failures": 3, "ejection_time": 60},
                timeouts={"connect": 2, "read": timeout},
            ),
            {
                "name": "other",
                "hosts": [OTHER_HOST],
                "strategy": "weighted_round_robin",
                "backends": [{"url": pool[2].url, "weight": 3}, {"url": pool[3].url}],
            },
        ],
    }


@pytest.fixture(scope="module")
def gateway(
    module_launcher: Launcher, keys: KeyServer, backend_pool: list[ServiceProcess], dead_url: str
) -> GatewayProcess:
    return module_launcher.gateway(config(keys, backend_pool, dead_url))


def refusals(keys: KeyServer) -> list[tuple[dict[str, str], int]]:
    other_key = Ed25519PrivateKey.generate()
    return [
        ({}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": "Bearer not.a.jwt"}, 401),
        ({"Authorization": "Basic cm9vdDpyb290"}, 401),
        (bearer(keys.token(roles=["admin"], exp=1_000_000)), 401),  # expired
        (bearer(keys.token(key=other_key, roles=["admin"])), 401),  # forged signature
        (bearer(keys.token(roles=["admin"], aud="someone-else")), 401),
        (bearer(keys.token(roles=["admin"], kid="no-such-key")), 401),
        (bearer(keys.token(roles=["user"])), 403),
        (bearer(keys.token(roles=["administrator", "Admin"])), 403),
        (bearer(keys.token(roles=[])), 403),
    ]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{ADMIN}/state"),
        ("GET", f"{ADMIN}/history"),
        ("POST", f"{ADMIN}/routes/app/backends/127.0.0.1:1/drain"),
        ("POST", f"{ADMIN}/routes/nope/backends/nope/restore"),
    ],
)
def test_admin_api_refuses_callers_without_an_admin_token(
    gateway: GatewayProcess, keys: KeyServer, method: str, path: str
) -> None:
    with httpx.Client(base_url=gateway.admin_url, timeout=10) as client:
        for headers, status in refusals(keys):
            response = client.request(method, path, headers=headers)
            assert response.status_code == status, (headers, response.text)
            body = response.json()
            assert body["error"] == ("unauthorized" if status == 401 else "forbidden")
            assert body["detail"]
            if status == 401:
                assert response.headers["www-authenticate"].startswith("Bearer ")
    # nothing was drained by any of those
    state = admin_state(gateway, keys.token(roles=["admin"]))
    assert not any(b["drained"] for r in state["routes"] for b in r["backends"])


def test_state_reports_every_field_against_a_pool_with_one_backend_down(
    gateway: GatewayProcess,
    keys: KeyServer,
    admin_token: str,
    backends: list[ServiceProcess],
    dead_url: str,
) -> None:
    first, second = backends[0], backends[1]
    dead_name = dead_url.removeprefix("http://")
    for path in ("state", "history"):
        response = httpx.get(f"{gateway.admin_url}{ADMIN}/{path}", headers=bearer(admin_token))
        assert response.headers["cache-control"] == "no-store"

    def dead_is_down() -> bool:
        views = admin_state(gateway, admin_token)["routes"][0]["backends"]
        return not next(b for b in views if b["name"] == dead_name)["active_healthy"]

    wait_until(dead_is_down, "the active check to mark the dead backend down")

    answered: dict[str, int] = {first.name: 0, second.name: 0}
    failures = 0
    with gateway.client() as client:
        for index in range(6):
            response = client.get(f"/ok/{index}")
            assert response.status_code == 200
            answered[response.headers["x-backend-instance"]] += 1
        httpx.put(second.url + "/__backend/faults", json={"error_rate": 1, "error_status": 504})
        for index in range(30):  # until the second backend is ejected
            response = client.get(f"/failing/{index}")
            if response.status_code == 504:  # a failure to the gateway, not retried
                failures += 1
            else:
                assert response.status_code == 200
                answered[response.headers["x-backend-instance"]] += 1
            if failures == 3:
                break
    assert failures == 3

    # one request held in flight on the first backend
    httpx.put(first.url + "/__backend/faults", json={"latency_ms": 1200})
    held: list[int] = []
    with gateway.client() as client:
        thread = threading.Thread(target=lambda: held.append(client.get("/slow").status_code))
        thread.start()
        wait_until(
            lambda: backend_of(admin_state(gateway, admin_token), "app", first)["in_flight"] == 1,
            "one request in flight on the first backend",
        )
        state = admin_state(gateway, admin_token)
        thread.join(timeout=30)
    assert held == [200]

    assert state["config"]["version"] == 1
    assert state["config"]["source"] == str(gateway.config_path)
    assert len(state["config"]["digest"]) >= 8
    assert state["config"]["original_format"] is False
    assert state["config"]["last_reload_error"] is None
    assert state["cursor"] == {
        "configured_store": "local",
        "state": "local",
        "shared": False,
        "last_error": None,
    }
    assert state["jwks"]["url"] == keys.url
    assert state["jwks"]["key_ids"] == [KID]
    assert state["jwks"]["fetched_at"] > 0
    assert state["jwks"]["last_error"] is None
    assert state["drains"]["store"] == "local"
    assert state["drains"]["shared"] is False

    app, other = state["routes"]
    assert (app["name"], app["strategy"], app["hosts"]) == ("app", "round_robin", [HOST])
    assert (other["name"], other["strategy"]) == ("other", "weighted_round_robin")
    assert [b["weight"] for b in other["backends"]] == [3, 1]
    assert app["available_backends"] == 1  # second ejected, third down

    up = backend_of(state, "app", first)
    assert up["status"] == "up" and up["available"] is True
    assert up["in_flight"] == 1
    assert up["recent_requests"] == answered[first.name]
    assert up["recent_errors"] == 0 and up["recent_error_rate"] == 0.0
    assert up["health"]["active"] == {
        "checked": True,
        "healthy": True,
        "consecutive_check_failures": 0,
        "consecutive_check_successes": up["health"]["active"]["consecutive_check_successes"],
    }
    assert up["health"]["passive"]["ejected"] is False
    assert up["weight"] == 1 and up["drained"] is False and up["drain"] is None

    ejected = backend_of(state, "app", second)
    assert ejected["status"] == "ejected" and ejected["available"] is False
    assert ejected["ejected"] is True and ejected["health"]["passive"]["ejected"] is True
    assert 0 < ejected["ejected_for_seconds"] <= 60
    assert ejected["health"]["passive"]["ejections_in_a_row"] == 1
    assert ejected["health"]["active"]["healthy"] is True  # its /healthz still answers
    assert ejected["recent_errors"] == 3
    assert ejected["recent_requests"] == answered[second.name] + 3
    assert ejected["recent_error_rate"] == round(3 / ejected["recent_requests"], 4)
    assert ejected["in_flight"] == 0

    down = next(b for b in app["backends"] if b["name"] == dead_name)
    assert down["status"] == "down" and down["available"] is False
    assert down["active_healthy"] is False
    assert down["health"]["active"]["consecutive_check_failures"] >= 1
    assert down["recent_requests"] == 0 and down["in_flight"] == 0


def test_drain_and_restore_without_redis_apply_here_and_say_so(
    gateway: GatewayProcess, admin_token: str, backend_pool: list[ServiceProcess]
) -> None:
    kept, drained = backend_pool[2], backend_pool[3]
    before = gateway.metrics()
    with httpx.Client(base_url=gateway.admin_url, headers=bearer(admin_token), timeout=10) as admin:
        response = admin.post(drain_path("other", drained, "drain"))
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["drained"] is True and result["changed"] is True
        assert result["shared"] is False and result["stored_in_redis"] is False
        assert "this gateway process only" in result["detail"]
        again = admin.post(drain_path("other", drained, "drain")).json()
        assert again["drained"] is True and again["changed"] is False

        view = backend_of(admin_state(gateway, admin_token), "other", drained)
        assert view["status"] == "drained" and view["available"] is False
        assert view["drain"]["by"] == ADMIN_EMAIL
        with gateway.client(headers={"Host": OTHER_HOST}) as client:
            instances = {client.get(f"/d/{i}").headers["x-backend-instance"] for i in range(12)}
        assert instances == {kept.name}

        restored = admin.post(drain_path("other", drained, "restore")).json()
        assert restored["drained"] is False and restored["changed"] is True
        with gateway.client(headers={"Host": OTHER_HOST}) as client:
            instances = {client.get(f"/r/{i}").headers["x-backend-instance"] for i in range(12)}
        assert instances == {kept.name, drained.name}
    after = gateway.metrics()
    for action, count in (("drain", 2), ("restore", 1)):
        grown = metric_value(after, "gateway_drains_total", action=action) - metric_value(
            before, "gateway_drains_total", action=action
        )
        assert grown == count
    assert "drained by root@example.com (operator)" in gateway.log_text()


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        (f"{ADMIN}/routes/nope/backends/127.0.0.1:1/drain", 404, "unknown_route"),
        (f"{ADMIN}/routes/other/backends/127.0.0.1:1/drain", 404, "unknown_backend"),
        (f"{ADMIN}/routes/other/backends/{'x' * 3000}/drain", 404, "unknown_backend"),
        (f"{ADMIN}/routes/other/backends/%3Cscript%3E/restore", 404, "unknown_backend"),
        (f"{ADMIN}/routes/other/backends/a%2Fb/drain", 404, "not_found"),
        (f"{ADMIN}/routes/other/backends/127.0.0.1:1/explode", 404, "not_found"),
    ],
)
def test_unknown_routes_and_backends_get_json_404(
    gateway: GatewayProcess, admin_token: str, path: str, status: int, error: str
) -> None:
    response = httpx.post(gateway.admin_url + path, headers=bearer(admin_token), timeout=10)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert "<script>" not in body["detail"]


def test_state_is_not_open_to_other_methods(gateway: GatewayProcess, admin_token: str) -> None:
    response = httpx.delete(gateway.admin_url + f"{ADMIN}/state", headers=bearer(admin_token))
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    drain_get = httpx.get(
        gateway.admin_url + f"{ADMIN}/routes/other/backends/127.0.0.1:1/drain",
        headers=bearer(admin_token),
    )
    assert drain_get.status_code == 405


@pytest.fixture
def reconfigure(
    gateway: GatewayProcess, keys: KeyServer, backend_pool: list[ServiceProcess], dead_url: str
) -> Iterator[Callable[..., dict[str, Any]]]:
    """Write a variant of the module's config; the original is written back afterwards."""

    def write(**changes: Any) -> dict[str, Any]:
        document = {**config(keys, backend_pool, dead_url, timeout=5.0), **changes}
        gateway.write_config(document)
        return document

    yield write
    gateway.write_config(config(keys, backend_pool, dead_url))


def test_a_drain_survives_a_config_reload_for_a_backend_that_stays(
    gateway: GatewayProcess,
    admin_token: str,
    backend_pool: list[ServiceProcess],
    reconfigure: Callable[..., dict[str, Any]],
) -> None:
    drained = backend_pool[3]
    with httpx.Client(base_url=gateway.admin_url, headers=bearer(admin_token), timeout=10) as admin:
        assert admin.post(drain_path("other", drained, "drain")).status_code == 200
        version = admin_state(gateway, admin_token)["config"]["version"]
        reconfigure()  # a longer read timeout
        wait_until(
            lambda: admin_state(gateway, admin_token)["config"]["version"] == version + 1,
            "the gateway to reload its config",
        )
        view = backend_of(admin_state(gateway, admin_token), "other", drained)
        assert view["drained"] is True and view["status"] == "drained"
        with gateway.client(headers={"Host": OTHER_HOST}) as client:
            instances = {client.get(f"/x/{i}").headers["x-backend-instance"] for i in range(8)}
        assert drained.name not in instances
        assert admin.post(drain_path("other", drained, "restore")).status_code == 200


def test_without_a_jwks_url_the_admin_api_is_unavailable_not_open(
    gateway: GatewayProcess,
    admin_token: str,
    backend_pool: list[ServiceProcess],
    reconfigure: Callable[..., dict[str, Any]],
) -> None:
    def status() -> int:
        response = httpx.get(gateway.admin_url + f"{ADMIN}/state", headers=bearer(admin_token))
        return response.status_code

    reconfigure(auth={})
    try:
        wait_until(lambda: status() == 503, "the reload without auth.jwks_url")
        response = httpx.post(
            gateway.admin_url + drain_path("other", backend_pool[3], "drain"),
            headers=bearer(admin_token),
        )
        assert response.status_code == 503
        assert response.json()["error"] == "admin_unavailable"
    finally:
        reconfigure()
        wait_until(lambda: status() == 200, "the reload with auth.jwks_url again")
    assert (
        backend_of(admin_state(gateway, admin_token), "other", backend_pool[3])["drained"] is False
    )
