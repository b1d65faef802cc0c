"""/healthz and /readyz: liveness, and readiness that lists every dependency check."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from common.asgi import AsgiClientFactory
from fastapi import FastAPI

from gatehouse_common.health import HealthCheck, health_router

pytestmark = pytest.mark.unit


async def ok() -> None:
    return None


async def refused() -> None:
    raise ConnectionRefusedError("connection refused by 127.0.0.1:5432")


async def hangs() -> None:
    await asyncio.sleep(30)


def client_for(asgi_client: AsgiClientFactory, *args, **kwargs) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(health_router(*args, **kwargs))
    return asgi_client(app)


async def test_ready_when_every_check_passes(asgi_client: AsgiClientFactory) -> None:
    client = client_for(asgi_client, {"database": ok, "redis": ok})
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis"}
    for outcome in body["checks"].values():
        assert outcome["ok"] is True and outcome["latency_ms"] >= 0


async def test_one_failing_check_makes_it_503_and_names_the_culprit(
    asgi_client: AsgiClientFactory,
) -> None:
    client = client_for(asgi_client, {"database": refused, "redis": ok, "jwks": ok})
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert set(body["checks"]) == {"database", "redis", "jwks"}
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["error"] == (
        "ConnectionRefusedError: connection refused by 127.0.0.1:5432"
    )
    assert body["checks"]["redis"] == {
        "ok": True,
        "latency_ms": body["checks"]["redis"]["latency_ms"],
    }


async def test_a_hanging_check_times_out_as_a_failure(asgi_client: AsgiClientFactory) -> None:
    client = client_for(asgi_client, {"slow": hangs, "fast": ok}, timeout=0.2)
    started = time.monotonic()
    response = await client.get("/readyz")
    assert time.monotonic() - started < 10  # bounded by the timeout, not by the check
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["slow"]["ok"] is False and checks["slow"]["error"] == "timed out after 0.2s"
    assert checks["fast"]["ok"] is True


async def test_long_errors_are_cut(asgi_client: AsgiClientFactory) -> None:
    async def verbose() -> None:
        raise ValueError("x" * 5000)

    response = await client_for(asgi_client, {"verbose": verbose}).get("/readyz")
    assert len(response.json()["checks"]["verbose"]["error"]) == 300


async def test_checks_may_be_supplied_late_by_a_callable(asgi_client: AsgiClientFactory) -> None:
    current: dict[str, HealthCheck] = {}
    client = client_for(asgi_client, lambda: current)
    assert (await client.get("/readyz")).json() == {"status": "ok", "checks": {}}
    current["database"] = refused
    assert (await client.get("/readyz")).status_code == 503


async def test_liveness_and_its_switch(asgi_client: AsgiClientFactory) -> None:
    alive = True
    client = client_for(asgi_client, None, alive=lambda: alive)
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    alive = False
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (503, {"status": "failing"})


@pytest.mark.parametrize("path", ["/-/healthz", "/-/readyz"])
async def test_prefix(asgi_client: AsgiClientFactory, path: str) -> None:
    client = client_for(asgi_client, {"a": ok}, prefix="/-")
    assert (await client.get(path)).status_code == 200
    assert (await client.get(path.removeprefix("/-"))).status_code == 404
