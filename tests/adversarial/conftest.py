"""Fixtures of the adversarial suite alone: the auth section, file descriptors.

Every test here attacks a real gateway process over real sockets. The
processes come from the suite's ``launcher`` fixtures (tests/conftest.py); a
module shares one gateway (``module_launcher``) where its tests only read,
and a test that needs other settings starts its own (``launcher``). ``keys``
(tests/conftest.py) serves a JWKS and signs tokens for routes with ``auth:
required``; ``auth_section`` is the gateway config that trusts it.
"""

from __future__ import annotations

import resource

import pytest
from support.jwks import AUDIENCE, ISSUER, KeyServer


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
