"""Liveness and readiness endpoints.

Liveness (``/healthz``) says only that the process serves requests, so an
orchestrator restarts it when it does not. Readiness (``/readyz``) runs every
dependency check the service registered, concurrently and each with a timeout,
and answers 503 listing which one failed, so traffic is withheld until the
dependency is back without restarting anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from gatehouse_common.health_checks import HealthCheck, run_checks

__all__ = ["HealthCheck", "health_router", "run_checks"]


def health_router(
    checks: Callable[[], Mapping[str, HealthCheck]] | Mapping[str, HealthCheck] | None = None,
    *,
    prefix: str = "",
    timeout: float = 2.0,
    alive: Callable[[], bool] | None = None,
) -> APIRouter:
    """``/healthz`` and ``/readyz`` under ``prefix``.

    ``checks`` may be a callable so a service can hand over checks bound to
    objects that exist only once its lifespan has started (a DB engine, say).
    ``alive``, when given, can turn liveness off (the fake backend's switch).
    """
    router = APIRouter(prefix=prefix, tags=["health"])

    @router.get(
        "/healthz",
        summary="Liveness: the process answers",
        responses={503: {"description": "The process reports itself unhealthy"}},
    )
    async def healthz() -> JSONResponse:
        if alive is not None and not alive():
            return JSONResponse({"status": "failing"}, status.HTTP_503_SERVICE_UNAVAILABLE)
        return JSONResponse({"status": "ok"})

    @router.get(
        "/readyz",
        summary="Readiness: every dependency answers",
        responses={503: {"description": "A dependency is down"}},
    )
    async def readyz() -> JSONResponse:
        current = checks() if callable(checks) else (checks or {})
        ok, results = await run_checks(current, timeout=timeout)
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": results},
            status_code=status.HTTP_200_OK if ok else status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    return router
