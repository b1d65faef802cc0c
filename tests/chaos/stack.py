"""The whole system on free ports, as the chaos suite runs it.

PostgreSQL and Redis of the suite's own (:mod:`chaos.stores`,
:mod:`support.redis_server`), the real auth
service on that PostgreSQL, four fake backends, a fifth that answers slowly
(for the in-flight requests of a rolling restart), and two gateway processes
sharing the Redis cursor. Routes (all on the same backends):

- ``chaos.test``: round_robin, auth required, fast active health checks and
  passive ejection: the steady GET load goes here.
- ``slow.test``: least_requests with a short read timeout: the slow backend fault.
- ``drain.test``: the lingering fifth backend, for requests in flight during a SIGTERM.
- anything else under ``/account``, ``/login``, ``/.well-known/``, ``/accounts``,
  ``/me``: the auth service.
"""

from __future__ import annotations

import contextlib
import importlib.util
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from support import gateway as support_gateway
from support.auth import auth_env, auth_process
from support.backends import fake_backend
from support.processes import ServiceProcess, start_all
from support.redis_server import RedisServer

from chaos.front import get_load
from chaos.load import SenderFactory
from chaos.metrics import scrape, total
from chaos.stores import OwnPostgres

CHAOS_HOST = "chaos.test"
SLOW_HOST = "slow.test"
DRAIN_HOST = "drain.test"
AUTH_PATHS = ["/account", "/login", "/.well-known/", "/accounts", "/me"]

# The thresholds the checks hold the gateway to.
HEALTH_INTERVAL = 0.5
UNHEALTHY_THRESHOLD = 2
HEALTHY_THRESHOLD = 2
CONSECUTIVE_FAILURES = 3
EJECTION_TIME = 1.0
AUTH_MAX_EJECTION = 2.0
SLOW_READ_TIMEOUT = 0.5
DRAIN_LATENCY_MS = 1500


def missing_services() -> list[str]:
    """The services the stack needs whose entry points are not there yet."""
    return [
        name
        for name in ("gatehouse_gateway.__main__", "gatehouse_auth.__main__")
        if importlib.util.find_spec(name.split(".")[0]) is None
        or importlib.util.find_spec(name) is None
    ]


def gateway_config(
    auth_url: str, backends: list[str], lingering: str, *, demo_auth_ejection: bool = False
) -> dict[str, Any]:
    """The gateway YAML the chaos stack runs (see the module docstring).

    ``demo_auth_ejection`` leaves the auth route's passive health at the
    defaults the demo runs with, for the check of the known issue about them.
    """
    pool = [{"url": url} for url in backends]
    health = {
        "path": "/healthz",
        "interval": HEALTH_INTERVAL,
        "timeout": 0.5,
        "healthy_threshold": HEALTHY_THRESHOLD,
        "unhealthy_threshold": UNHEALTHY_THRESHOLD,
    }
    passive = {
        "consecutive_failures": CONSECUTIVE_FAILURES,
        "ejection_time": EJECTION_TIME,
        "max_ejection_time": 4.0,
    }
    auth_route: dict[str, Any] = {
        "name": "auth",
        "path_prefix": AUTH_PATHS,
        "auth": "none",
        "backends": [{"url": auth_url}],
        "timeouts": {"connect": 1.0, "read": 15.0},
        "retries": {"attempts": 0},
    }
    if not demo_auth_ejection:
        # The auth service's own 503s (database down) count as failures and
        # eject it, the route's only backend: recovery then waits out the
        # ejection. Kept short here and bounded by the checks (the demo's
        # defaults, 5 s doubling up to 60 s, hold the route at 503 for up to a
        # minute after the database is back: tests/chaos/README.md).
        auth_route["passive_health"] = {
            "consecutive_failures": CONSECUTIVE_FAILURES,
            "ejection_time": EJECTION_TIME,
            "max_ejection_time": AUTH_MAX_EJECTION,
        }
    return {
        "listen": {"address": "127.0.0.1", "port": 0},
        "auth": {"jwks_url": f"{auth_url}/.well-known/jwks.json", "algorithms": ["EdDSA"]},
        "cursor": {"store": "redis"},
        "routes": [
            {
                "name": "chaos",
                "hosts": [CHAOS_HOST],
                "auth": "required",
                "strategy": "round_robin",
                "backends": pool,
                "timeouts": {"connect": 0.5, "read": 5.0},
                "retries": {"attempts": 3, "budget_ratio": 0.5, "budget_min_per_second": 50},
                "health_check": health,
                "passive_health": passive,
            },
            {
                "name": "slow",
                "hosts": [SLOW_HOST],
                "auth": "none",
                "strategy": "least_requests",
                "backends": pool,
                "timeouts": {"connect": 0.5, "read": SLOW_READ_TIMEOUT},
                "health_check": health,
                "passive_health": passive,
            },
            {
                "name": "drain",
                "hosts": [DRAIN_HOST],
                "auth": "none",
                "backends": [{"url": lingering}],
                "timeouts": {"connect": 0.5, "read": 10.0},
                "retries": {"attempts": 0},
            },
            auth_route,
        ],
    }


def backend_label(backend: ServiceProcess) -> str:
    """How the gateway's metrics name a backend (``host:port``)."""
    return f"127.0.0.1:{backend.port}"


def gateway_process(name: str, config_path: Path, redis_url: str) -> ServiceProcess:
    """A gateway on a free port with ``config_path``, its cursor in ``redis_url``."""
    return support_gateway.gateway_process(
        config_path, name=name, env={"REDIS_URL": redis_url}, ready_path="/-/readyz"
    )


@dataclass
class ChaosStack:
    postgres: OwnPostgres
    redis: RedisServer
    auth: ServiceProcess
    backends: list[ServiceProcess]
    lingering: ServiceProcess
    gateways: list[ServiceProcess]
    config_path: Path
    workdir: Path
    admin_email: str
    admin_password: str

    @property
    def gateway_urls(self) -> list[str]:
        return [g.url for g in self.gateways]

    def client(self, gateway: int = 0, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.gateways[gateway].url, timeout=15.0, **kwargs)

    def signup(self, username: str, password: str = "chaos-pass-1") -> httpx.Response:
        with self.client() as client:
            return client.post(
                "/account",
                json={
                    "username": username,
                    "password": password,
                    "email": f"{username}@example.com",
                },
            )

    def token(self, email: str, password: str) -> str:
        with self.client() as client:
            response = client.post("/login", json={"email": email, "password": password})
        if response.status_code != 200:
            raise RuntimeError(f"login of {email} failed: {response.status_code} {response.text}")
        return str(response.json()["access_token"])

    def user_token(self) -> str:
        """A fresh account's token (each call signs up a new account)."""
        name = f"load{secrets.token_hex(4)}"
        created = self.signup(name)
        if created.status_code != 201:
            raise RuntimeError(f"signup failed: {created.status_code} {created.text}")
        return self.token(f"{name}@example.com", "chaos-pass-1")

    def admin_token(self) -> str:
        return self.token(self.admin_email, self.admin_password)

    def gateway_metrics_urls(self) -> list[str]:
        return [f"{g.admin_url}/-/metrics" for g in self.gateways]

    def metric(self, name: str, labels: dict[str, str] | None = None) -> list[float]:
        """``name`` summed over matching labels, one value per gateway."""
        return [total(scrape(url), name, labels) for url in self.gateway_metrics_urls()]

    def chaos_load(self, token: str) -> SenderFactory:
        """GETs on the ``chaos.test`` route (auth required) through the gateway front."""
        headers = {"Host": CHAOS_HOST, "Authorization": f"Bearer {token}"}
        return get_load(self.gateway_urls, "/chaos", headers=headers)

    def all_processes(self) -> list[ServiceProcess]:
        return [self.redis, self.auth, *self.backends, self.lingering, *self.gateways]

    def dead(self) -> list[str]:
        """Processes that have exited (a fault left something down)."""
        return [
            p.name
            for p in self.all_processes()
            if p.process is None or p.process.poll() is not None
        ]


@contextlib.contextmanager
def running_stack() -> Iterator[ChaosStack]:
    """Start everything, yield the stack, stop everything (whatever state it is in)."""
    workdir = Path(tempfile.mkdtemp(prefix="gatehouse-chaos-"))
    postgres = OwnPostgres()
    redis_server = RedisServer.create(name="chaos-redis")
    backends = [fake_backend(f"chaos-backend-{i}") for i in range(1, 5)]
    lingering = fake_backend("chaos-lingering", "--latency-ms", str(DRAIN_LATENCY_MS))
    started: list[ServiceProcess] = []
    try:
        postgres.init().start()
        started.append(redis_server)
        redis_server.start()
        admin_email, admin_password = "chaos-admin@example.com", secrets.token_urlsafe(12)
        auth = auth_process(
            auth_env(
                workdir,
                database_url=postgres.url,
                redis_prefix=None,
                redis_url=redis_server.redis_url,
                admin_email=admin_email,
                admin_password=admin_password,
                rate_limit_per_email="0",
                rate_limit_per_client="0",
                rate_limit_per_email_client="0",
                signup_rate_limit_per_client="0",
                access_log="false",
            ),
            name="chaos-auth",
        )
        started += [auth, *backends, lingering]
        start_all([auth, *backends, lingering])
        config = gateway_config(auth.url, [b.url for b in backends], lingering.url)
        config_path = workdir / "gateway.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        gateways = [
            gateway_process(f"chaos-gateway-{i}", config_path, redis_server.redis_url)
            for i in (1, 2)
        ]
        started += gateways
        start_all(gateways)
        yield ChaosStack(
            postgres=postgres,
            redis=redis_server,
            auth=auth,
            backends=backends,
            lingering=lingering,
            gateways=gateways,
            config_path=config_path,
            workdir=workdir,
            admin_email=admin_email,
            admin_password=admin_password,
        )
    finally:
        redis_server.thaw()  # a frozen Redis would ignore SIGTERM
        for process in reversed(started):
            process.stop(timeout=10)
        postgres.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
