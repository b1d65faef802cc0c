"""Fixtures for the libs/common tests (see common/jwt_factories.py for the JWT test data)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from common.asgi import AsgiClientFactory, make_asgi_client
from common.jwt_factories import (
    AUDIENCE,
    ISSUER,
    FakeClock,
    JWKSEndpoint,
    JWKSHost,
    SigningKey,
    ed25519_key,
    shared_ssl_context,
)
from common.log_capture import configure_into, take_json_lines
from common.settings_factories import FIELDS, PREFIXES
from starlette.types import ASGIApp

from gatehouse_common.jwt import JWKSClient, TokenVerifier


@pytest.fixture(scope="session")
def jwks_host() -> Iterator[JWKSHost]:
    host = JWKSHost().start()
    yield host
    host.stop()


@pytest.fixture
def jwks_server(jwks_host: JWKSHost) -> Iterator[JWKSEndpoint]:
    """A JWKS endpoint of this test's own (no keys until the test publishes some)."""
    endpoint = jwks_host.endpoint()
    yield endpoint
    del jwks_host.endpoints[endpoint.name]


@pytest.fixture
def own_jwks_host() -> Iterator[JWKSHost]:
    """A JWKS host the test may stop, to play "auth is down"."""
    host = JWKSHost().start()
    yield host
    host.stop()


@pytest.fixture
def mono_clock() -> FakeClock:
    """The JWKS client's monotonic clock (TTL and refetch interval)."""
    return FakeClock(1_000.0)


@pytest.fixture
def wall_clock() -> FakeClock:
    """The verifier's wall clock (exp, nbf, iat and the cache)."""
    return FakeClock(time.time())


JWKSClientFactory = Callable[[str], JWKSClient]


@pytest.fixture
async def make_jwks_client(mono_clock: FakeClock) -> AsyncIterator[JWKSClientFactory]:
    """JWKS clients (TTL 300 s, refetch interval 10 s) on the test's clock, closed afterwards."""
    clients: list[JWKSClient] = []

    http_clients: list[httpx.AsyncClient] = []

    def make(url: str, **kwargs: Any) -> JWKSClient:
        # An HTTP client with a shared TLS context: building one per client
        # (httpx's default, loading the CA bundle) costs ~0.1 s on a busy CI box.
        http = httpx.AsyncClient(verify=shared_ssl_context())
        http_clients.append(http)
        options: dict[str, Any] = {
            "ttl": 300.0,
            "min_refetch_interval": 10.0,
            "clock": mono_clock,
            "client": http,
        }
        client = JWKSClient(url, **{**options, **kwargs})
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
    for http in http_clients:
        await http.aclose()


@pytest.fixture
def jwks_client(make_jwks_client: JWKSClientFactory, jwks_server: JWKSEndpoint) -> JWKSClient:
    return make_jwks_client(jwks_server.url)


VerifierFactory = Callable[..., TokenVerifier]


@pytest.fixture
def make_verifier(jwks_client: JWKSClient, wall_clock: FakeClock) -> VerifierFactory:
    """Verifiers for the auth service's issuer and audience, leeway 30 s, on the test's clock."""

    def make(jwks: JWKSClient | None = None, **kwargs: Any) -> TokenVerifier:
        options: dict[str, Any] = {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "leeway": 30.0,
            "clock": wall_clock,
        }
        return TokenVerifier(jwks or jwks_client, **{**options, **kwargs})

    return make


@pytest.fixture
def ed_key(jwks_server: JWKSEndpoint) -> SigningKey:
    """An Ed25519 key the JWKS server publishes."""
    key = ed25519_key("ed-1")
    jwks_server.publish(key)
    return key


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No GATEHOUSE_* variable of the outer environment, and no stray .env file, leaks in."""
    for prefix in PREFIXES:
        for name in FIELDS:
            monkeypatch.delenv(prefix + name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging rewires the process's loggers; put them back afterwards."""
    root = logging.getLogger()
    names = ("uvicorn", "uvicorn.error", "uvicorn.access")
    saved = (
        root.handlers[:],
        root.level,
        {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate) for n in names},
        logging.getLogger("uvicorn.access").disabled,
    )
    yield
    root.handlers[:], level, loggers, access_disabled = saved
    root.setLevel(level)
    for name, (handlers, propagate) in loggers.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate
    logging.getLogger("uvicorn.access").disabled = access_disabled


LogReader = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def json_logs(restore_logging: None, monkeypatch: pytest.MonkeyPatch) -> LogReader:
    """Logging configured as a service does (JSON, service "svc", debug); returns a
    reader of the lines written since the last read, each parsed as one JSON object."""
    stream = configure_into(monkeypatch, "svc", level="debug")
    return lambda: take_json_lines(stream)


@pytest.fixture
async def asgi_client() -> AsyncIterator[AsgiClientFactory]:
    """Clients for in-process apps (see common/asgi.py), closed at teardown."""
    clients: list[httpx.AsyncClient] = []

    def make(app: ASGIApp, **options: Any) -> httpx.AsyncClient:
        clients.append(make_asgi_client(app, **options))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()
