"""The gateway's own endpoints, under the reserved ``/-/`` prefix (FastAPI).

Built on the first admin request other than ``GET /-/healthz`` and
``GET /-/readyz`` (:mod:`gatehouse_gateway.admin_front`), never at start.

Only these requests reach FastAPI; proxied traffic never does (see
:mod:`gatehouse_gateway.proxy`). Being under ``/-/``, which no route may
claim, they never shadow a proxied path.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from gatehouse_common.errors import error_response, install_error_handlers
from gatehouse_common.health import health_router
from gatehouse_gateway.admin_front import PREFIX, gateway_checks
from gatehouse_gateway.metrics import render_metrics
from gatehouse_gateway.operator.routers import install_operator
from gatehouse_gateway.runtime import Gateway
from gatehouse_gateway.state_view import gateway_view

__all__ = ["PREFIX", "create_admin_app"]


def create_admin_app(gateway: Callable[[], Gateway | None]) -> FastAPI:
    """``gateway`` returns the running gateway (None before the lifespan started it)."""
    app = FastAPI(
        title="Gatehouse gateway",
        summary="The gateway's own endpoints: health, metrics and the loaded config",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    install_error_handlers(app)

    # GET /-/healthz and /-/readyz are answered by admin_front.AdminFront before
    # this app exists; these routes document them and answer their other methods
    app.include_router(health_router(gateway_checks(gateway), prefix=PREFIX))
    install_operator(app, gateway)

    @app.get(f"{PREFIX}/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)

    @app.get(f"{PREFIX}/config", summary="Routes, backends and their state, cursor and JWKS")
    async def config() -> Response:
        running = gateway()
        if running is None:
            return error_response(503, "starting", "not started yet")
        return JSONResponse(gateway_view(running))

    return app
