"""Gateway fixtures: real gateway and fake backend processes on free ports.

``launcher`` (per test) and ``module_launcher`` (per module, for read-only
tests sharing processes) start fake backends and gateways; a gateway's config
document is written to a temporary directory and passed with ``--config``.
``backends`` are four fake backends (``backend-1`` .. ``backend-4``) shared
by the whole session, since starting processes dominates the suite's time;
faults a test injects into them are reset after it. Tests that kill a
backend start their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gateway.helpers import Launcher
from support.processes import ServiceProcess


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    started = Launcher(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def module_launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    started = Launcher(tmp_path_factory.mktemp("gateway"))
    yield started
    started.stop_all()


@pytest.fixture(scope="session")
def backend_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServiceProcess]]:
    started = Launcher(tmp_path_factory.mktemp("backends"))
    yield started.backends(4)
    started.stop_all()


@pytest.fixture
def backends(backend_pool: list[ServiceProcess]) -> Iterator[list[ServiceProcess]]:
    yield backend_pool
    for backend in backend_pool:
        httpx.post(backend.url + "/__backend/reset", timeout=10).raise_for_status()
