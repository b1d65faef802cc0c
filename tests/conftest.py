"""Fixtures shared by the whole suite, built on the one test-support layer (tests/support).

Databases and Redis: a PostgreSQL database per session or per test, a Redis
key prefix per test (the shared servers), ``private_redis`` (a redis-server
of the test's own, to take away), and a real Redis Cluster (``redis_cluster``)
and Sentinel group (``redis_sentinel``) per session. Processes: fake backends
(``start_fake_backend``, the session's ``backend_pool`` and ``backends``),
gateways and backends started per test or per module (``launcher``,
``module_launcher``), and a JWKS the gateway trusts (``keys``). A folder's
conftest adds only what that folder alone uses; no test module imports from
another folder's modules.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import httpx._transports.default as httpx_transports
import pytest
from support.backends import fake_backend
from support.databases import (
    REDIS_URL,
    drop_redis_prefix,
    temporary_database,
    unique_redis_prefix,
)
from support.gateway import Launcher
from support.jwks import KeyServer
from support.processes import ServiceProcess, stop_all
from support.redis_cluster import (
    RedisClusterProcesses,
    RedisSentinelGroup,
    started_cluster,
    started_sentinel,
)
from support.redis_server import RedisServer


@pytest.fixture(scope="session", autouse=True)
def _one_default_tls_context() -> Iterator[None]:
    """Every httpx client left to httpx's default TLS settings shares one context.

    httpx builds a new context for each client from the CA bundle (~35 ms of
    CPU), and the suite makes thousands of clients, nearly all for plain HTTP
    to 127.0.0.1: minutes of a CI run's two cores. A client given a ``verify``
    or ``cert`` of its own still gets a context of its own.
    """
    shared = httpx.create_ssl_context()
    original = httpx_transports.create_ssl_context

    def create(
        verify: ssl.SSLContext | str | bool = True,
        cert: object = None,
        trust_env: bool = True,
    ) -> ssl.SSLContext:
        if verify is True and cert is None and trust_env:
            return shared
        return original(verify=verify, cert=cert, trust_env=trust_env)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx_transports, "create_ssl_context", create)
        yield


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test session's own (dropped at the end)."""
    with temporary_database("session") as url:
        yield url


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this one test's own."""
    with temporary_database("test") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix only this test uses; its keys are deleted afterwards."""
    prefix = unique_redis_prefix()
    yield prefix
    drop_redis_prefix(prefix, redis_url)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own on a free port, not started yet.

    The test starts it (and may stop, kill, freeze or restart it on the same
    port); whatever is left is thawed and stopped after the test.
    """
    server = RedisServer.create()
    yield server
    server.thaw()
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """A Redis Cluster of this session's own: 3 masters with a replica each, on free ports.

    Started when a test first asks for it. A test that kills a node starts it
    again and waits for :meth:`RedisClusterProcesses.wait_healthy` before it
    ends, so the next test finds the cluster whole. Use a key prefix of the
    test's own (``unique_redis_prefix``) on it too.
    """
    with started_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinelGroup]:
    """A master, its replica and a sentinel watching them (``redis+sentinel://`` URL)."""
    with started_sentinel(tmp_path_factory.mktemp("redis-sentinel")) as group:
        yield group


FakeBackendFactory = Callable[..., ServiceProcess]


@pytest.fixture
def start_fake_backend() -> Iterator[FakeBackendFactory]:
    """Start fake backend processes on free ports; all are stopped at teardown."""
    started: list[ServiceProcess] = []

    def start(
        *args: str, name: str | None = None, port: int | None = None, faults: bool = True
    ) -> ServiceProcess:
        process = fake_backend(name, *args, port=port, faults=faults)
        started.append(process)
        return process.start()

    yield start
    stop_all(started)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    """Fake backends and gateways for this test; a gateway's config goes to ``tmp_path``."""
    started = Launcher(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def module_launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    """The same, shared by a module's tests (read-only ones: starting processes dominates)."""
    started = Launcher(tmp_path_factory.mktemp("launcher"))
    yield started
    started.stop_all()


@pytest.fixture(scope="session")
def backend_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServiceProcess]]:
    """Four fake backends (``backend-1`` .. ``backend-4``) for the whole session."""
    started = Launcher(tmp_path_factory.mktemp("backends"))
    yield started.backends(4)
    started.stop_all()


@pytest.fixture
def backends(backend_pool: list[ServiceProcess]) -> Iterator[list[ServiceProcess]]:
    """The session's pool; the faults a test injects into it are reset after the test.

    Tests that kill a backend start their own.
    """
    yield backend_pool
    for backend in backend_pool:
        httpx.post(backend.url + "/__backend/reset", timeout=10).raise_for_status()


@pytest.fixture(scope="module")
def keys() -> Iterator[KeyServer]:
    """A signing key and its JWKS on a free port, for routes with ``auth: required``."""
    server = KeyServer()
    yield server
    server.close()
