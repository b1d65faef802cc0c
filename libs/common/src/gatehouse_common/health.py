"""Liveness and readiness endpoints.

Liveness (``/healthz``) says only that the process serves requests, so an
orchestrator restarts it when it does not. Readiness (``/readyz``) runs every
dependency check the service registered, concurrently and each with a timeout,
and answers 503 listing which one failed, so traffic is withheld until the
dependency is back without restarting anything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from gatehouse_common.errors import describe_error

HealthCheck = Callable[[], Awaitable[object]]


async def _run_check(check: HealthCheck, timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout)
    except TimeoutError:
        outcome: dict[str, Any] = {"ok": False, "error": f"timed out after {timeout:g}s"}
    except Exception as exc:  # a failing dependency is reported, not raised
        outcome = {"ok": False, "error": describe_error(exc)}
    else:
        outcome = {"ok": True}
    outcome["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return outcome


async def run_checks(
    checks: Mapping[str, HealthCheck], *, timeout: float = 2.0
) -> tuple[bool, dict[str, Any]]:
    """Run every check at once; returns (all passed, per-check outcome)."""
    names = list(checks)
    outcomes = await asyncio.gather(*(_run_check(checks[n], timeout) for n in names))
    results = dict(zip(names, outcomes, strict=True))
    return all(r["ok"] for r in outcomes), results


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
