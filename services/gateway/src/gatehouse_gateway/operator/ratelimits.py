"""``GET /-/admin/ratelimits``: each route's limits, decisions and recent refusals (admin JWT).

The answering process's view: with several workers or replicas each counts
what it decided itself; the buckets they share live in Redis.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from gatehouse_gateway.operator.deps import AdminToken, RunningGateway

router = APIRouter(prefix="/-/admin", tags=["operator"])


@router.get("/ratelimits", summary="Each route's rate limits, the store's state, recent refusals")
async def ratelimits(gateway: RunningGateway, _: AdminToken, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "no-store"
    return gateway.rate_limits.view()
