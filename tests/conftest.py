"""Fixtures shared by the whole suite: real databases, Redis prefixes, fake backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from support.databases import (
    REDIS_URL,
    drop_redis_prefix,
    temporary_database,
    unique_redis_prefix,
)
from support.processes import ServiceProcess, free_port, python_module


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


FakeBackendFactory = Callable[..., ServiceProcess]


@pytest.fixture
def start_fake_backend() -> Iterator[FakeBackendFactory]:
    """Start fake backend processes on free ports; all are stopped at teardown."""
    started: list[ServiceProcess] = []

    def start(
        *args: str, name: str | None = None, port: int | None = None, faults: bool = True
    ) -> ServiceProcess:
        port = port or free_port()
        extra = ["--name", name] if name else []
        if faults:  # tests change faults at run time through /__backend/
            extra.append("--faults")
        process = ServiceProcess(
            name=name or f"fake-backend-{port}",
            command=python_module("gatehouse_fake_backend", "--port", str(port), *extra, *args),
            port=port,
            # /readyz for a backend started --unhealthy: it is up all the same
            ready_path="/readyz" if "--unhealthy" in args else "/healthz",
        )
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
