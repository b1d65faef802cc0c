"""The admin API under ``/-/admin/``: state, history, drain and restore (admin JWT)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Response

from gatehouse_common.errors import ServiceError
from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.operator.deps import AdminToken, RunningGateway, RunningOperator
from gatehouse_gateway.routing import Route
from gatehouse_gateway.state_view import admin_state

router = APIRouter(prefix="/-/admin", tags=["operator"])

_NO_STORE = {"Cache-Control": "no-store"}


@router.get("/state", summary="Config, routes, backends and their health, cursor, JWKS, drains")
async def state(gateway: RunningGateway, _: AdminToken, response: Response) -> dict[str, Any]:
    response.headers.update(_NO_STORE)
    return admin_state(gateway)


@router.get("/history", summary="Requests/s and error rate per backend over the last minutes")
async def history(
    gateway: RunningGateway, operator: RunningOperator, _: AdminToken, response: Response
) -> dict[str, Any]:
    response.headers.update(_NO_STORE)
    return operator.history.snapshot(gateway.table.routes)


def _find(gateway: RunningGateway, route: str, backend: str) -> tuple[Route, list[BackendState]]:
    found = gateway.table.by_name(route)
    if found is None:
        raise ServiceError(404, "unknown_route", "no route of that name in the running config")
    states = [b for b in found.backends if b.name == backend]
    if not states:
        raise ServiceError(
            404,
            "unknown_backend",
            f"route {found.name!r} has no backend of that name (names are host:port)",
        )
    return found, states


async def _set(
    gateway: RunningGateway,
    operator: RunningOperator,
    admin: AdminToken,
    route: str,
    backend: str,
    drained: bool,
) -> dict[str, Any]:
    found, states = _find(gateway, route, backend)
    result: dict[str, Any] = {}
    for state in states:  # one, unless the config lists the same backend twice
        result = await operator.drains.set_drained(found, state, drained, actor=admin.name)
    operator.audit.record(
        admin.token,
        "backend_drained" if drained else "backend_undrained",
        f"{found.name}/{backend}",
        {
            "route": found.name,
            "backend": backend,
            "changed": result.get("changed"),
            "shared": result.get("shared"),
        },
    )
    return result


_SUMMARIES = {
    "drain": "Stop sending new requests to a backend (in-flight ones finish), on every replica",
    "restore": "Send requests to a drained backend again, on every replica",
}


def _endpoint(drained: bool) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def endpoint(
        route: str,
        backend: str,
        gateway: RunningGateway,
        operator: RunningOperator,
        admin: AdminToken,
    ) -> dict[str, Any]:
        return await _set(gateway, operator, admin, route, backend, drained)

    return endpoint


for _action, _summary in _SUMMARIES.items():
    router.add_api_route(
        f"/routes/{{route}}/backends/{{backend}}/{_action}",
        _endpoint(_action == "drain"),
        methods=["POST"],
        summary=_summary,
        name=_action,
    )
