"""The admin listener's front: health answered here, the FastAPI admin app built on first use.

Every worker serves the admin listener, but almost all it ever gets there is
an orchestrator's ``GET /-/healthz`` and ``GET /-/readyz``. Building the
FastAPI app (the operator API, the dashboard, their pydantic models) in each
worker at start cost ~10 MB of resident memory per worker for that, so those two
answers are written here with the standard library, the same bytes FastAPI
would write, and :func:`gatehouse_gateway.admin.create_admin_app` is imported
and built the first time anything else arrives on the admin listener
(loadtest/README.md, "Memory").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

from gatehouse_common.health_checks import HealthCheck, run_checks

if TYPE_CHECKING:
    from gatehouse_gateway.runtime import Gateway

PREFIX = "/-"
HEALTHZ = PREFIX + "/healthz"
READYZ = PREFIX + "/readyz"
_ALIVE = json.dumps({"status": "ok"}, separators=(",", ":")).encode()


def gateway_checks(gateway: Callable[[], Gateway | None]) -> Mapping[str, HealthCheck]:
    """The readiness checks of ``/-/readyz``: the gateway has started."""

    async def started() -> None:
        if gateway() is None:
            raise RuntimeError("the gateway has not started")

    return {"gateway": started}


class AdminFront:
    """``await front(scope, receive, send)`` for every ``http`` scope of the admin listener."""

    def __init__(self, gateway: Callable[[], Gateway | None]) -> None:
        self._gateway = gateway
        self._checks = gateway_checks(gateway)
        self._app: ASGIApp | None = None

    @property
    def built(self) -> bool:
        """Whether the FastAPI admin app has been imported and built (tests read it)."""
        return self._app is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "GET":
            path = scope["path"]
            if path == HEALTHZ:
                await _send_json(send, 200, _ALIVE)
                return
            if path == READYZ:
                ok, results = await run_checks(self._checks)
                body = {"status": "ok" if ok else "unavailable", "checks": results}
                await _send_json(send, 200 if ok else 503, _compact(body))
                return
        app = self._app
        if app is None:
            # imported here, not at the top: the reason this module exists
            from gatehouse_gateway.admin import create_admin_app

            app = self._app = create_admin_app(self._gateway)
        await app(scope, receive, send)


def _compact(body: Mapping[str, Any]) -> bytes:
    """As Starlette's ``JSONResponse`` renders it."""
    return json.dumps(
        body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-length", b"%d" % len(body)),
                (b"content-type", b"application/json"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
