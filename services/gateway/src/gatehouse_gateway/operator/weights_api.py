"""The admin API's canary weights: read, set and reset a route's split (admin JWT).

``PUT /-/admin/routes/{route}/weights`` with ``{"weights": {"primary": 90,
"canary": 10}}`` overrides the config's weights on every replica (groups
left out get 0); ``DELETE`` goes back to the config's. Each change is
recorded in auth's audit log as ``canary_weights_changed``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, field_validator

from gatehouse_common.errors import ServiceError
from gatehouse_gateway.config.groups import GROUP_NAME_PATTERN, MAX_GROUPS, check_weights
from gatehouse_gateway.operator.deps import Admin, AdminToken, RunningGateway, RunningOperator
from gatehouse_gateway.routing import Route

router = APIRouter(prefix="/-/admin", tags=["operator"])

_NO_STORE = {"Cache-Control": "no-store"}
GroupName = Annotated[str, StringConstraints(pattern=GROUP_NAME_PATTERN)]


class WeightsChange(BaseModel):
    """New weights for some of a route's groups; the others get 0."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[GroupName, StrictInt] = Field(
        max_length=MAX_GROUPS, examples=[{"primary": 90, "canary": 10}]
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, int]) -> dict[str, int]:
        check_weights(value)
        return value


def _route_with_groups(gateway: RunningGateway, name: str) -> Route:
    route = gateway.table.by_name(name)
    if route is None:
        raise ServiceError(404, "unknown_route", "no route of that name in the running config")
    if route.split is None:
        raise ServiceError(
            409, "no_groups", f"route {route.name!r} has no groups besides primary to weigh"
        )
    return route


def _pairs(weights: dict[str, int]) -> list[dict[str, Any]]:
    """Weights as a list for the audit record: group names stay values, never keys."""
    return [{"group": group, "weight": weight} for group, weight in weights.items()]


def _audit(operator: RunningOperator, admin: Admin, result: dict[str, Any], reset: bool) -> None:
    operator.audit.record(
        admin.token,
        "canary_weights_changed",
        result["route"],
        {
            "route": result["route"],
            "weights": _pairs(result["weights"]),
            "previous": _pairs(result["previous_weights"]),
            "reset": reset,
            "shared": result["shared"],
        },
    )


@router.get("/routes/{route}/weights", summary="A route's groups, weights and any override")
async def get_weights(
    route: str,
    gateway: RunningGateway,
    operator: RunningOperator,
    _: AdminToken,
    response: Response,
) -> dict[str, Any]:
    response.headers.update(_NO_STORE)
    return operator.canary.view(_route_with_groups(gateway, route)) or {}


@router.put(
    "/routes/{route}/weights",
    summary="Override a route's canary weights on every replica (groups left out get 0)",
)
async def set_weights(
    route: str,
    change: WeightsChange,
    gateway: RunningGateway,
    operator: RunningOperator,
    admin: AdminToken,
) -> dict[str, Any]:
    found = _route_with_groups(gateway, route)
    unknown = sorted(set(change.weights) - set(found.groups))
    if unknown:
        raise ServiceError(
            422,
            "unknown_group",
            f"route {found.name!r} has no group {unknown}; it has {list(found.groups)}",
        )
    result = await operator.canary.set_weights(found, change.weights, actor=admin.name)
    _audit(operator, admin, result, reset=False)
    return result


@router.delete(
    "/routes/{route}/weights",
    summary="Drop a route's runtime weights on every replica: the config's apply again",
)
async def reset_weights(
    route: str, gateway: RunningGateway, operator: RunningOperator, admin: AdminToken
) -> dict[str, Any]:
    found = _route_with_groups(gateway, route)
    result = await operator.canary.set_weights(found, None, actor=admin.name)
    _audit(operator, admin, result, reset=True)
    return result
