"""The admin API's view of the running gateway, as JSON-ready data.

Built from the live objects on each call (route table, backend states, cursor,
JWKS client, drains), so it is always the state this process routes with.
With several workers it is the answering worker's view; drains shared through
Redis are the same on all of them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.operator.service import Operator
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


def backend_view(route: Route, backend: BackendState, operator: Operator) -> dict[str, Any]:
    view = dict(backend.snapshot())
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
    view["drain"] = operator.drains.detail(route.name, backend.name) if backend.drained else None
    return view


def admin_state(gateway: Gateway, operator: Operator) -> dict[str, Any]:
    config = gateway.loaded.config
    jwks: dict[str, Any] | None = None
    if gateway.authenticator is not None:
        jwks = dataclasses.asdict(gateway.authenticator.jwks.snapshot())
        jwks["key_ids"] = list(jwks["key_ids"])
    cursor_state = gateway.cursor.state
    summary = gateway.snapshot()
    return {
        "config": {key: summary[key] for key in _CONFIG_KEYS},
        "cursor": {
            "configured_store": config.cursor.store,
            "state": cursor_state,
            "shared": cursor_state == "redis",
            "last_error": getattr(gateway.cursor, "last_error", None) or None,
        },
        "jwks": jwks,
        "drains": operator.drains.snapshot(),
        "routes": [
            {
                **view,
                "available_backends": sum(1 for b in route.backends if b.available),
                "backends": [backend_view(route, b, operator) for b in route.backends],
            }
            # the same table, read in the same step: the lists match one to one
            for route, view in zip(gateway.table.routes, summary["routes"], strict=True)
        ],
    }
