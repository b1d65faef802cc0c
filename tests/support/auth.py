"""The auth service as a process on a free port, its environment, and accounts.

:func:`auth_env` is the one environment of a test's auth instance (its own
data folder, fast bcrypt, the admin it bootstraps; a caller's settings
override the rest); :func:`auth_process` builds the process, and
:func:`launch` starts one and wraps it in an :class:`AuthService`. The auth
suite's fixtures (tests/auth/conftest.py) and every other folder start auth
through these.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from support.databases import REDIS_URL
from support.processes import REPO_ROOT, ServiceProcess, free_port, python_module

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-test-password"
PASSWORD = "correct horse battery"
BACKENDS = ["postgres", "sqlite"]


@dataclass
class AuthService:
    """A running auth process and what a test needs to talk to it."""

    process: ServiceProcess
    backend: str
    data_dir: Path
    keys_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.process.url

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


StartAuth = Callable[..., AuthService]


def auth_env(
    data_dir: Path,
    *,
    database_url: str | None,
    redis_prefix: str | None,
    redis_url: str | None = None,
    admin_email: str = ADMIN_EMAIL,
    admin_password: str = ADMIN_PASSWORD,
    **settings: str,
) -> dict[str, str]:
    """The environment of one auth instance; nothing falls back to the repo's .data.

    Redis is the shared one under ``redis_prefix``, or ``redis_url`` (a server
    of the test's own, under the service's default prefix), or none (the
    in-process rate limiter). ``settings`` are ``GATEHOUSE_AUTH_<NAME>``
    values and win over the defaults here.
    """
    env = {
        "DATABASE_URL": database_url or "",
        "REDIS_URL": redis_url or (REDIS_URL if redis_prefix else ""),
        "GATEHOUSE_AUTH_DATA_DIR": str(data_dir),
        "GATEHOUSE_AUTH_KEYS_DIR": str(data_dir / "keys"),
        "GATEHOUSE_AUTH_BCRYPT_ROUNDS": "4",
        "GATEHOUSE_AUTH_RATE_LIMIT_PER_EMAIL": "1000",
        "GATEHOUSE_AUTH_RATE_LIMIT_PER_EMAIL_CLIENT": "1000",
        "GATEHOUSE_AUTH_RATE_LIMIT_PER_CLIENT": "100000",
        # the shared services take every test's sign-ups from one address
        "GATEHOUSE_AUTH_SIGNUP_RATE_LIMIT_PER_CLIENT": "100000",
        "GATEHOUSE_AUTH_LOG_LEVEL": "info",
        "GATEHOUSE_ADMIN_EMAIL": admin_email,
        "GATEHOUSE_ADMIN_PASSWORD": admin_password,
    }
    if redis_prefix is not None:
        env["GATEHOUSE_AUTH_REDIS_PREFIX"] = redis_prefix
        # the shared revocation keys too, so a test never writes the real ones
        env["GATEHOUSE_AUTH_REVOCATION_PREFIX"] = revocation_prefix(redis_prefix)
    env.update({f"GATEHOUSE_AUTH_{k.upper()}": v for k, v in settings.items()})
    return env


def revocation_prefix(redis_prefix: str) -> str:
    """The revocation keys of an auth instance started with ``redis_prefix``."""
    return f"{redis_prefix}revocation:"


def run_cli(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``python -m gatehouse_auth <args>`` with ``env``, as an operator would run it."""
    return subprocess.run(
        python_module("gatehouse_auth", *args),
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def auth_process(
    env: dict[str, str], *, name: str = "auth", migrate: bool = True, port: int | None = None
) -> ServiceProcess:
    """``gatehouse_auth serve`` (not started yet) with ``env``, ready when /readyz answers.

    ``--migrate`` applies the migrations first: one process start instead of
    two (``migrate`` on its own is tested in tests/auth/test_cli.py).
    """
    port = port or free_port()
    flags = ["--migrate"] if migrate else []
    return ServiceProcess(
        name=name,
        command=python_module("gatehouse_auth", "serve", "--port", str(port), *flags),
        port=port,
        env=env,
        ready_path="/readyz",
    )


def launch(
    data_dir: Path, backend: str, env: dict[str, str], *, migrate: bool = True
) -> AuthService:
    """Start :func:`auth_process` on a free port and wait for /readyz."""
    process = auth_process(env, name=f"auth-{backend}", migrate=migrate)
    process.start()
    return AuthService(process, backend, data_dir, Path(env["GATEHOUSE_AUTH_KEYS_DIR"]), env)


def new_account(**overrides: str) -> dict[str, str]:
    """A sign-up body nobody has used yet."""
    tag = uuid.uuid4().hex[:12]
    account = {"username": f"user_{tag}", "email": f"user.{tag}@example.com", "password": PASSWORD}
    account.update(overrides)
    return account


def signup(client: httpx.Client, **overrides: str) -> dict[str, str]:
    """Create an account through the API; returns its sign-up body."""
    account = new_account(**overrides)
    response = client.post("/account", json=account)
    assert response.status_code == 201, response.text
    return account


def login_token(client: httpx.Client, email: str, password: str) -> str:
    response = client.post("/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
