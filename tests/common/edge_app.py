"""A tiny service served by ``gatehouse_common.server.serve``, for the edge limit tests.

``python -m common.edge_app`` (with ``tests`` on the path) runs it like any
service: settings from ``GATEHOUSE_EDGE_APP_*``, an extra listener on
``GATEHOUSE_EDGE_APP_EXTRA_PORT`` when set.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic_settings import SettingsConfigDict

from gatehouse_common.app import create_service_app
from gatehouse_common.server import serve
from gatehouse_common.settings import ServiceSettings


class EdgeAppSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEHOUSE_EDGE_APP_")

    service_name: str = "edge-app"
    access_log: bool = False


def create_app() -> FastAPI:
    app = create_service_app(EdgeAppSettings())

    @app.post("/upload")
    async def refuse_upload(request: Request) -> JSONResponse:
        """Answers before reading a byte of the body, as a size check does."""
        close = request.query_params.get("close") == "1"
        return JSONResponse(
            {"error": "payload_too_large", "detail": "too large"},
            status_code=413,
            headers={"connection": "close"} if close else None,
        )

    @app.get("/port")
    async def port(request: Request) -> dict[str, int]:
        return {"port": request.scope["server"][1]}

    return app


def main() -> None:
    settings = EdgeAppSettings()
    extra = os.environ.get("GATEHOUSE_EDGE_APP_EXTRA_PORT")
    if extra:
        serve("common.edge_app:create_app", settings, extra_listeners=[("127.0.0.1", int(extra))])
    else:
        serve("common.edge_app:create_app", settings)


if __name__ == "__main__":
    main()
