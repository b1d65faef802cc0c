"""Drains recorded in auth's audit log: sent as the acting admin, never holding the drain up.

The gateway's ``auth_url`` points at the test's :class:`support.jwks.KeyServer`,
which takes ``POST /audit`` as auth does and can refuse or hang.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from gateway.operator_support import bearer, drain_path, wait_until
from support.gateway import GatewayProcess, Launcher, gateway_route, metric_value
from support.jwks import KeyServer
from support.processes import ServiceProcess


@pytest.fixture
def audit_keys() -> Iterator[KeyServer]:
    server = KeyServer()
    yield server
    server.close()


@pytest.fixture
def gateway(
    launcher: Launcher, audit_keys: KeyServer, backend_pool: list[ServiceProcess]
) -> GatewayProcess:
    document = {
        "auth": {"jwks_url": audit_keys.url},
        "routes": [gateway_route(backend_pool[:2])],
    }
    env = {
        "GATEHOUSE_GATEWAY_AUTH_URL": audit_keys.base_url,
        "GATEHOUSE_GATEWAY_OPERATOR_AUDIT_TIMEOUT": "1",
    }
    return launcher.gateway(document, env=env)


def failures(gateway: GatewayProcess) -> float:
    return metric_value(gateway.metrics(), "gateway_audit_records_total", outcome="failure")


def test_a_drain_is_recorded_as_the_admin_who_asked(
    gateway: GatewayProcess, audit_keys: KeyServer, backend_pool: list[ServiceProcess]
) -> None:
    token = audit_keys.token(roles=["admin"], sub="5", email="ops@example.com")
    for action in ("drain", "restore"):
        response = httpx.post(
            gateway.admin_url + drain_path("app", backend_pool[0], action),
            headers=bearer(token),
            timeout=10,
        )
        assert response.status_code == 200, response.text
    wait_until(lambda: len(audit_keys.audit) == 2, "two audit records")
    name = f"127.0.0.1:{backend_pool[0].port}"
    (auth1, drained), (auth2, restored) = audit_keys.audit
    assert auth1 == auth2 == f"Bearer {token}"
    assert drained["action"] == "backend_drained" and restored["action"] == "backend_undrained"
    assert drained["target"] == f"app/{name}"
    assert drained["detail"] == {"route": "app", "backend": name, "changed": True, "shared": False}
    text = gateway.metrics()
    assert metric_value(text, "gateway_audit_records_total", outcome="success") == 2


def test_an_audit_log_that_refuses_or_hangs_never_fails_the_drain(
    gateway: GatewayProcess, audit_keys: KeyServer, backend_pool: list[ServiceProcess]
) -> None:
    token = audit_keys.token(roles=["admin"])
    audit_keys.audit_status = 500
    drain = gateway.admin_url + drain_path("app", backend_pool[1], "drain")
    assert httpx.post(drain, headers=bearer(token), timeout=10).status_code == 200
    wait_until(lambda: failures(gateway) == 1, "the refused record to be counted")
    # Held: the drain answers while its record is still waiting on the audit log.
    audit_keys.audit_gate.clear()
    try:
        response = httpx.post(drain, headers=bearer(token), timeout=10)
        assert response.status_code == 200 and response.json()["drained"] is True
        wait_until(lambda: failures(gateway) == 2, "the hung record to time out")
    finally:
        audit_keys.audit_gate.set()
    assert "could not record backend_drained" in gateway.log_text()
