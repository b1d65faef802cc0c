"""Attack 12: the fake backend's fault switches, reached through the gateway.

``PUT /__backend/faults`` makes a backend fail every request; a route that
sends every path on (as the demo's do) hands that switch to any client, who
can take the service down with one request. The contract: fault endpoints
exist only when the backend starts with ``--faults``; a default start answers
404 there, and the service keeps answering.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from adversarial.support import route
from support.backends import fake_backend
from support.gateway import HOST, GatewayProcess, Launcher
from support.processes import ServiceProcess


@pytest.fixture
def plain_backend() -> Iterator[ServiceProcess]:
    """A fake backend started as in production: no ``--faults``."""
    process = fake_backend("plain", faults=False).start()
    yield process
    process.stop()


def test_fault_endpoints_are_off_by_default(
    launcher: Launcher, plain_backend: ServiceProcess
) -> None:
    gateway: GatewayProcess = launcher.gateway({"routes": [route("app", [plain_backend], [HOST])]})
    with gateway.client() as client:
        change = client.put("/__backend/faults", json={"error_rate": 1.0, "error_status": 500})
        after = [client.get(f"/after/{i}").status_code for i in range(5)]
        reset = client.post("/__backend/reset")
    assert after == [200] * 5, (
        f"after PUT /__backend/faults ({change.status_code}) the service answered {after}"
    )
    assert change.status_code == 404, (
        f"PUT /__backend/faults through the gateway: {change.status_code} {change.text[:300]}"
    )
    assert reset.status_code == 404, f"POST /__backend/reset: {reset.status_code}"
