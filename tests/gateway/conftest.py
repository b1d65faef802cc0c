"""Gateway fixtures: real gateway and fake backend processes on free ports.

``launcher`` (per test) and ``module_launcher`` (per module, for read-only
tests sharing processes) start fake backends and gateways; a gateway's config
document is written to a temporary directory and passed with ``--config``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway.helpers import Launcher


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
