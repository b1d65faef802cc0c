"""A FastAPI application with everything a Gatehouse service needs wired in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI

from gatehouse_common.errors import install_error_handlers
from gatehouse_common.health import HealthCheck, health_router
from gatehouse_common.logs import configure_logging
from gatehouse_common.metrics import instrument
from gatehouse_common.middleware import RequestContextMiddleware
from gatehouse_common.settings import ServiceSettings


def create_service_app(
    settings: ServiceSettings,
    *,
    checks: Callable[[], Mapping[str, HealthCheck]] | Mapping[str, HealthCheck] | None = None,
    health_prefix: str = "",
    alive: Callable[[], bool] | None = None,
    metrics_path: str = "/metrics",
    **fastapi_kwargs: Any,
) -> FastAPI:
    """FastAPI app with JSON logs, request ids, JSON errors, metrics and health endpoints.

    The service adds its own routers and lifespan (passed through
    ``fastapi_kwargs``) on top.
    """
    configure_logging(
        settings.service_name,
        level=settings.log_level,
        json=settings.log_json,
        health_checks=settings.log_health_checks,
    )
    app = FastAPI(**fastapi_kwargs)
    install_error_handlers(app)
    app.include_router(health_router(checks, prefix=health_prefix, alive=alive))
    instrument(app, metrics_path=metrics_path)
    app.add_middleware(RequestContextMiddleware, access_log=settings.access_log)
    return app
