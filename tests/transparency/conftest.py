"""httpbin and a gateway in front of it (:mod:`transparency.routes`), shared by all the
transparency tests: they only read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.gateway import GatewayProcess, Launcher
from support.httpbin import httpbin_process
from support.processes import ServiceProcess
from transparency.routes import gateway_config


@pytest.fixture(scope="session")
def httpbin() -> Iterator[ServiceProcess]:
    with httpbin_process() as process:
        yield process


@pytest.fixture(scope="session")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, httpbin: ServiceProcess
) -> Iterator[GatewayProcess]:
    launcher = Launcher(tmp_path_factory.mktemp("transparency"))
    try:
        yield launcher.gateway(gateway_config(httpbin))
    finally:
        launcher.stop_all()
