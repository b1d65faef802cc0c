"""Attack 6: the gateway's own endpoints reached from the public listener.

``/-/config`` lists every backend's address and health, ``/-/docs`` and
``/-/openapi.json`` describe the operator API, ``/-/metrics`` leaks traffic
shapes, and ``/-/admin/*`` changes where traffic goes. The contract moves all
of ``/-/`` to a separate admin listener (127.0.0.1 by default); on the public
port ``/-/...`` is an ordinary path (proxied by a route that claims it, else
404 ``no_route``), and ``/metrics`` answers metrics only with
``public_metrics: true``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from adversarial.raw import RawResponse, get
from adversarial.support import admin_get, route
from support.gateway import HOST, GatewayProcess, Launcher

OWN = ["/-/config", "/-/docs", "/-/openapi.json", "/-/admin/state", "/-/metrics", "/-/healthz"]
UNMATCHED = "nobody.example"


@pytest.fixture(scope="module")
def backend(module_launcher: Launcher) -> Any:
    return module_launcher.backends(1, prefix="plane")[0]


@pytest.fixture(scope="module")
def gateway(
    module_launcher: Launcher, backend: Any, auth_section: dict[str, Any]
) -> GatewayProcess:
    document = {"auth": auth_section, "routes": [route("app", [backend], [HOST])]}
    return module_launcher.gateway(document)


def _not_the_gateways_own(response: RawResponse, what: str) -> None:
    if response.echo is not None:
        return  # proxied: the backend answered for the path, as for any other
    assert response.status == 404, f"{what}: the gateway answered {response.describe()[:300]}"
    assert response.json().get("error") == "no_route", f"{what}: {response.describe()[:300]}"


@pytest.mark.parametrize("path", OWN)
@pytest.mark.parametrize("host", [HOST, UNMATCHED])
def test_own_endpoints_are_not_on_the_public_port(
    gateway: GatewayProcess, path: str, host: str
) -> None:
    response = get(gateway.url, path, host)
    _not_the_gateways_own(response, f"{path} on the public port, Host {host}")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/-/healthz", 200),
        ("/-/config", 200),
        ("/-/metrics", 200),
        ("/-/docs", 200),
        ("/-/openapi.json", 200),
        ("/-/admin/state", 401),
    ],
)
def test_own_endpoints_answer_on_the_admin_listener(
    gateway: GatewayProcess, path: str, status: int
) -> None:
    response = admin_get(gateway, path)
    assert response.status_code == status, f"{path} on the admin listener: {response.text[:300]}"


def test_metrics_on_the_public_port_are_off_by_default(gateway: GatewayProcess) -> None:
    response = get(gateway.url, "/metrics", UNMATCHED)
    _not_the_gateways_own(response, "/metrics on the public port without public_metrics")
    assert b"gateway_" not in response.body, response.describe()[:300]


def test_public_metrics_true_answers_metrics(launcher: Launcher, backend: Any) -> None:
    gateway = launcher.gateway(
        {"public_metrics": True, "routes": [route("app", [backend], [HOST])]}
    )
    response = httpx.get(gateway.url + "/metrics", headers={"Host": UNMATCHED}, timeout=15)
    assert response.status_code == 200, response.text[:300]
    assert "http_requests_total" in response.text, response.text[:300]
