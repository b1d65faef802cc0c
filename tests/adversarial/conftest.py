"""Fixtures of the adversarial suite: real gateways, fake backends, a JWKS.

Every test here attacks a real gateway process over real sockets. The
processes come from the gateway suite's :class:`Launcher`; a module shares one
gateway (``module_launcher``) where its tests only read, and a test that needs
other settings starts its own (``launcher``). ``keys`` serves a JWKS and signs
tokens for routes with ``auth: required``.
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway.helpers import Launcher
from gateway.test_auth import AUDIENCE, ISSUER, KeyServer


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    started = Launcher(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def module_launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    started = Launcher(tmp_path_factory.mktemp("adversarial"))
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def keys() -> Iterator[KeyServer]:
    server = KeyServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def auth_section(keys: KeyServer) -> dict[str, object]:
    """The gateway config's ``auth`` section for tokens ``keys`` signs."""
    return {"jwks_url": keys.url, "issuer": ISSUER, "audience": AUDIENCE, "leeway": 5}


@pytest.fixture(scope="session", autouse=True)
def enough_file_descriptors() -> None:
    """Slowloris tests hold hundreds of sockets; the default soft limit may be 1024 or less."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
