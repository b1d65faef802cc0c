"""What the gateway's own endpoints show of its live state, as JSON-ready data.

Built from the live objects on each call (route table, backend states, cursor,
JWKS client, drains), so it is always the state this process routes with.
:func:`gateway_view` is the one per-route/per-backend view: ``/-/config``
answers it, and the admin API's state (:func:`admin_state`, which the
dashboard reads) regroups it and adds the operator's sections. With several
workers it is the answering worker's view; drains shared through Redis are the
same on all of them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gatehouse_gateway.auth import Authenticator
from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.canary.weights import CanaryWeights
from gatehouse_gateway.operator.drain import DrainCoordinator
from gatehouse_gateway.routing import Route
from gatehouse_gateway.runtime import Gateway

_CONFIG_KEYS = ("version", "source", "digest", "original_format", "loaded_at", "last_reload_error")


def backend_status(backend: BackendState) -> str:
    """One word for the dashboard's colour: drained, down, ejected or up."""
    if backend.drained:
        return "drained"
    if not backend.active_healthy:
        return "down"
    if backend.ejected:
        return "ejected"
    return "up"


def backend_view(route: Route, backend: BackendState, drains: DrainCoordinator) -> dict[str, Any]:
    view = backend.snapshot()
    check = route.config.health_check
    view["status"] = backend_status(backend)
    view["health"] = {
        "active": {
            "checked": check is not None and check.enabled,
            "healthy": backend.active_healthy,
            "consecutive_check_failures": backend.check_failures,
            "consecutive_check_successes": backend.check_successes,
        },
        "passive": {
            "enabled": route.config.passive_health.enabled,
            "consecutive_failures": backend.consecutive_failures,
            "ejected": backend.ejected,
            "ejected_for_seconds": view["ejected_for_seconds"],
            "ejections_in_a_row": backend.ejections_in_a_row,
        },
    }
    view["drain"] = drains.detail(route.name, backend.name) if backend.drained else None
    return view


def groups_view(route: Route) -> list[dict[str, Any]]:
    """Each backend group of ``route``: its strategy and backends (names, host:port)."""
    return [
        {
            "name": group.name,
            "strategy": group.strategy,
            "backends": [b.name for b in group.backends],
            "available_backends": sum(1 for b in group.backends if b.available),
        }
        for group in route.groups.values()
    ]


def route_view(
    route: Route,
    drains: DrainCoordinator,
    sockets: int = 0,
    canary: CanaryWeights | None = None,
) -> dict[str, Any]:
    group_of = {b.name: group.name for group in route.groups.values() for b in group.backends}
    backends = []
    for backend in route.backends:
        view = backend_view(route, backend, drains)
        view["group"] = group_of[backend.name]
        backends.append(view)
    return {
        "name": route.name,
        "hosts": route.config.hosts,
        "path_prefix": route.config.path_prefix,
        "auth": route.config.auth,
        "strategy": route.config.strategy,
        "available_backends": sum(1 for b in route.backends if b.available),
        # this worker's open WebSocket connections on the route
        "websocket": {"enabled": route.config.websocket, "active": sockets},
        "groups": groups_view(route),
        # weights, rules and any runtime override; None on a route without groups
        "split": canary.view(route) if canary is not None else None,
        "mirror": route.mirror.view() if route.mirror is not None else None,
        "backends": backends,
    }


def jwks_view(authenticator: Authenticator | None) -> dict[str, Any] | None:
    if authenticator is None:
        return None
    jwks = dataclasses.asdict(authenticator.jwks.snapshot())
    jwks["key_ids"] = list(jwks["key_ids"])
    return jwks


def gateway_view(gateway: Gateway) -> dict[str, Any]:
    """Config, cursor, JWKS, routes and backends: the ``/-/config`` endpoint."""
    drains = gateway.operator.drains
    sockets = gateway.websockets.count_by_route()
    return {
        "version": gateway.version,
        "source": gateway.loaded.source,
        "digest": gateway.loaded.digest,
        "original_format": gateway.loaded.original_format,
        "loaded_at": gateway.loaded_at,
        "last_reload_error": gateway.last_reload_error,
        "cursor": gateway.cursor.snapshot(),
        "jwks": jwks_view(gateway.authenticator),
        "routes": [
            route_view(route, drains, sockets.get(route.name, 0), gateway.operator.canary)
            for route in gateway.table.routes
        ],
    }


def admin_state(gateway: Gateway) -> dict[str, Any]:
    """:func:`gateway_view` regrouped for the admin API, with drains and cursor sharing."""
    view = gateway_view(gateway)
    cursor = gateway.cursor
    return {
        "config": {key: view[key] for key in _CONFIG_KEYS},
        "cursor": {
            "configured_store": gateway.loaded.config.cursor.store,
            "state": cursor.state,
            "shared": cursor.state == "redis",
            "last_error": cursor.last_error,
        },
        "jwks": view["jwks"],
        "drains": gateway.operator.drains.snapshot(),
        "canary_weights": gateway.operator.canary.snapshot(),
        "revocations": gateway.revocations.snapshot(),
        "rate_limits": gateway.rate_limits.view(),
        "routes": view["routes"],
    }
