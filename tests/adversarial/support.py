"""What several attack modules share: the admin listener, metrics, config documents."""

from __future__ import annotations

from typing import Any

import httpx
from support.gateway import GatewayProcess, metric_value
from support.processes import ServiceProcess


def admin_url(gateway: GatewayProcess) -> str:
    """The admin listener's URL: ``/-/...`` answers only there (AttributeError before it exists)."""
    return str(gateway.admin_url)  # type: ignore[attr-defined]


def admin_get(gateway: GatewayProcess, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(admin_url(gateway) + path, timeout=15, **kwargs)


def admin_metric(gateway: GatewayProcess, name: str, **labels: str) -> float:
    return metric_value(admin_get(gateway, "/-/metrics").text, name, **labels)


def route(
    name: str,
    backends: list[ServiceProcess] | list[str],
    hosts: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A route document; ``hosts`` None means any host."""
    document: dict[str, Any] = {
        "name": name,
        "backends": [{"url": b if isinstance(b, str) else b.url} for b in backends],
        **extra,
    }
    if hosts is not None:
        document["hosts"] = hosts
    return document
