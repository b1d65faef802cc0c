"""create_service_app: everything wired together, as every service gets it."""

from __future__ import annotations

import httpx
import pytest
from common.asgi import AsgiClientFactory
from fastapi import FastAPI

from gatehouse_common.app import create_service_app
from gatehouse_common.settings import ServiceSettings

pytestmark = pytest.mark.unit


def make_app() -> FastAPI:
    app = create_service_app(ServiceSettings(service_name="svc", log_level="debug"))

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("database password is hunter2")

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.fixture
def client(asgi_client: AsgiClientFactory, restore_logging) -> httpx.AsyncClient:
    return asgi_client(make_app())


async def test_health_metrics_and_json_errors_are_wired(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ok", "checks": {}}
    assert (await client.get("/ok")).headers["x-request-id"]
    assert "http_requests_total" in (await client.get("/metrics")).text
    assert (await client.get("/missing")).json()["error"] == "not_found"


async def test_a_crash_is_a_json_500_with_the_request_id(
    client: httpx.AsyncClient, json_logs
) -> None:
    json_logs()
    response = await client.get("/crash", headers={"X-Request-ID": "crash-1"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "detail": "an unexpected error occurred"}
    assert "hunter2" not in response.text
    assert response.headers.get("x-request-id") == "crash-1"


async def test_a_crash_is_logged_once_with_the_traceback_and_request_id(
    client: httpx.AsyncClient, json_logs
) -> None:
    await client.get("/crash", headers={"X-Request-ID": "crash-2"})
    errors = [line for line in json_logs() if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "crash-2"
    assert "hunter2" in errors[0]["exc_info"]  # the operator sees what the client does not
