"""Running readiness checks, with nothing but the standard library.

:mod:`gatehouse_common.health` serves them as FastAPI routes; this part is
apart so the gateway can answer ``/-/readyz`` without importing FastAPI into
every worker (its admin app is built on first use, loadtest/README.md, "Memory").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from gatehouse_common.error_shape import describe_error

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
