"""What a gateway worker imports at start: no FastAPI until the admin listener needs it.

Each module a worker imports stays resident for its life (code objects, class
dicts, pydantic schemas): FastAPI and the operator API cost ~10 MB per worker.
The admin listener answers ``GET /-/healthz`` and ``GET /-/readyz`` itself and
builds the FastAPI app on the first other admin request (admin_front.py).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
from support.gateway import Launcher, gateway_route
from support.processes import ServiceProcess

from gatehouse_gateway.admin import create_admin_app
from gatehouse_gateway.admin_front import AdminFront

# What `python -m gatehouse_gateway` imports before serving: the app and the server,
# and what serve() does before uvicorn starts (a single worker is this process).
_WORKER_IMPORTS = """
import sys
ADMIN_ONLY = ("api", "dashboard", "deps", "routers")
import gatehouse_gateway.app, gatehouse_gateway.__main__, gatehouse_common.server
gatehouse_common.server._check_certificates([])
heavy = sorted(
    name for name in sys.modules
    if name.split(".")[0] in ("fastapi", "prometheus_fastapi_instrumentator", "httpx", "websockets")
    or name in ("gatehouse_gateway.admin", "starlette.routing", "pydantic.v1", "h2")
    or name.startswith("gatehouse_common.h2_")
    or name.rpartition(".")[::2] in (("gatehouse_gateway.operator", m) for m in ADMIN_ONLY)
)
print(" ".join(heavy))
"""


def test_a_worker_starts_without_fastapi_httpx_or_http2() -> None:
    """No FastAPI until the admin listener needs it; no HTTP/2 or TLS listener code
    unless a listener speaks them; no httpx (the JWKS comes over the upstream
    client, the audit client is made on the first record); no `websockets` until
    the first WebSocket handshake."""
    done = subprocess.run(
        [sys.executable, "-c", _WORKER_IMPORTS], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


async def _call(app: Any, method: str, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "server": ("127.0.0.1", 9901),
        "client": ("127.0.0.1", 5000),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


async def test_health_answers_are_fastapis_own_bytes_without_building_it() -> None:
    """Same status, type and body as the FastAPI admin app's routes, which stay unbuilt."""
    running: list[object] = []
    front = AdminFront(lambda: running[0] if running else None)  # type: ignore[return-value]
    fastapi_app = create_admin_app(lambda: None)

    assert await _call(front, "GET", "/-/healthz") == await _call(fastapi_app, "GET", "/-/healthz")
    status, headers, body = await _call(front, "GET", "/-/readyz")
    expected = await _call(fastapi_app, "GET", "/-/readyz")
    assert (status, headers[b"content-type"]) == (503, b"application/json")
    assert (status, headers[b"content-type"]) == (expected[0], expected[1][b"content-type"])
    # the latency differs between the two runs; the rest is the same
    assert body.split(b'"latency_ms"')[0] == expected[2].split(b'"latency_ms"')[0]
    assert b'"error":"RuntimeError: the gateway has not started"' in body
    assert not front.built

    running.append(object())
    status, _, body = await _call(front, "GET", "/-/readyz")
    assert status == 200 and body.startswith(b'{"status":"ok","checks":{"gateway":{"ok":true')
    assert not front.built


async def test_other_admin_requests_build_the_fastapi_app_once() -> None:
    front = AdminFront(lambda: None)
    # not GET: FastAPI's own answer (405 in the shared error shape), not the front's
    status, headers, body = await _call(front, "POST", "/-/healthz")
    assert (status, headers[b"allow"]) == (405, b"GET")
    assert body.startswith(b'{"error":"method_not_allowed"')
    assert front.built
    app = front._app
    assert (await _call(front, "GET", "/-/config"))[0] == 503  # not started: FastAPI's answer
    assert front._app is app


def test_the_admin_listener_still_serves_everything(
    launcher: Launcher, backends: list[ServiceProcess]
) -> None:
    """A real gateway: health first (unbuilt), then the FastAPI endpoints on demand."""
    gateway = launcher.gateway({"routes": [gateway_route(backends[:1])]})
    admin = gateway.admin_url
    assert httpx.get(admin + "/-/healthz").json() == {"status": "ok"}
    ready = httpx.get(admin + "/-/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["gateway"]["ok"] is True
    config = httpx.get(admin + "/-/config")
    assert config.status_code == 200 and config.json()["routes"][0]["name"] == "app"
    assert httpx.post(admin + "/-/readyz").status_code == 405
    with gateway.client() as client:
        assert client.get("/").status_code == 200
    assert 'http_requests_total{handler="app"' in httpx.get(admin + "/-/metrics").text
