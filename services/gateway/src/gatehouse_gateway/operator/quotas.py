"""``GET /-/admin/quotas``: each route's quotas, top consumers and those near their quota."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from gatehouse_gateway.operator.deps import AdminToken, RunningGateway

router = APIRouter(prefix="/-/admin", tags=["operator"])


@router.get(
    "/quotas",
    summary="Per route and quota: this window's top consumers and those at 80% or more",
)
async def quotas(
    gateway: RunningGateway,
    _: AdminToken,
    response: Response,
    top: Annotated[int, Query(ge=1, le=100, description="consumers listed per quota")] = 10,
) -> dict[str, Any]:
    response.headers["Cache-Control"] = "no-store"
    keeper = gateway.quotas
    return {
        "store": keeper.snapshot(),
        "quotas": await keeper.overview(gateway.table.routes, top),
    }
