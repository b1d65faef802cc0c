"""Auth service fixtures: the real service as a process on a free port.

``auth_service`` is session-scoped and parametrized over both storage backends
(PostgreSQL in a database of its own, and an SQLite file), with real Redis
under a prefix of its own. ``start_auth`` starts extra instances with other
settings for the tests that need them (rate limits, keys, outages).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from auth.admin_support import AdminStack, admin_headers
from auth.admin_support import admin_stack as start_admin_stack
from support.auth import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    BACKENDS,
    AuthService,
    StartAuth,
    auth_env,
    launch,
    login_token,
)
from support.databases import drop_redis_prefix, temporary_database, unique_redis_prefix
from support.processes import stop_all


@pytest.fixture(scope="session", params=BACKENDS)
def auth_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthService]:
    """One auth process per backend for the session, with Redis and an admin.

    Shared safely: every test makes accounts with fresh unique names.
    """
    backend: str = request.param
    data_dir = tmp_path_factory.mktemp(f"auth-{backend}")
    prefix = unique_redis_prefix("auth")
    if backend == "postgres":
        with temporary_database("auth") as url:
            service = launch(
                data_dir, backend, auth_env(data_dir, database_url=url, redis_prefix=prefix)
            )
            yield service
            service.process.stop()
    else:
        service = launch(
            data_dir, backend, auth_env(data_dir, database_url=None, redis_prefix=prefix)
        )
        yield service
        service.process.stop()
    drop_redis_prefix(prefix)


@pytest.fixture
def start_auth(tmp_path: Path) -> Iterator[StartAuth]:
    """Start auth instances with extra settings (SQLite unless a database_url is given)."""
    started: list[AuthService] = []
    prefixes: list[str] = []

    def start(
        *,
        database_url: str | None = None,
        redis: bool = True,
        migrate: bool = True,
        name: str = "extra",
        data_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
        **settings: str,
    ) -> AuthService:
        prefix = unique_redis_prefix("auth") if redis else None
        if prefix:
            prefixes.append(prefix)
        directory = data_dir or tmp_path / f"{name}-{uuid.uuid4().hex[:6]}"
        env = auth_env(directory, database_url=database_url, redis_prefix=prefix, **settings)
        env.update(extra_env or {})
        service = launch(directory, name, env, migrate=migrate)
        started.append(service)
        return service

    yield start
    stop_all(service.process for service in started)
    for prefix in prefixes:
        drop_redis_prefix(prefix)


@pytest.fixture(scope="session")
def admin_token(auth_service: AuthService) -> str:
    with auth_service.client() as client:
        return login_token(client, ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.fixture
def client(auth_service: AuthService) -> Iterator[httpx.Client]:
    with auth_service.client() as http:
        yield http


RATE_WINDOW_SECONDS = 3.0
RATE_PER_EMAIL_CLIENT = 3
RATE_PER_CLIENT = 5


@pytest.fixture(scope="session")
def limited_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthService]:
    """SQLite and Redis with a short, tight login window."""
    data_dir = tmp_path_factory.mktemp("auth-limited")
    prefix = unique_redis_prefix("auth-limited")
    env = auth_env(
        data_dir,
        database_url=None,
        redis_prefix=prefix,
        rate_limit_window_seconds=str(RATE_WINDOW_SECONDS),
        rate_limit_per_email_client=str(RATE_PER_EMAIL_CLIENT),
        rate_limit_per_client=str(RATE_PER_CLIENT),
    )
    service = launch(data_dir, "limited", env)
    yield service
    service.process.stop()
    drop_redis_prefix(prefix)


@pytest.fixture(scope="module")
def admin_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminStack]:
    """Auth on PostgreSQL with Redis, revocations under a prefix of its own, a public URL
    for reset links and a tight per-address login limit (3), shared by a module."""
    with start_admin_stack(tmp_path_factory.mktemp("auth-admin"), "admin") as stack:
        yield stack


@pytest.fixture
def api(admin_stack: AdminStack) -> Iterator[httpx.Client]:
    """A client of the module's ``admin_stack``."""
    with admin_stack.client() as http:
        yield http


@pytest.fixture
def admin(api: httpx.Client) -> dict[str, str]:
    """The bootstrapped admin's bearer header on ``admin_stack``."""
    return admin_headers(api)
