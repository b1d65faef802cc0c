"""The WebSocket metrics: open sockets per route, messages and bytes by direction, refusals.

Label children are bound once per route (:func:`route_metrics`), so a message
costs two ``inc`` calls. ``direction`` is ``upstream`` (client to backend) or
``downstream`` (backend to client).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ACTIVE = Gauge(
    "gateway_websocket_active",
    "WebSocket connections open through the gateway, by route.",
    ["route"],
    multiprocess_mode="livesum",
)
MESSAGES = Counter(
    "gateway_websocket_messages_total",
    "WebSocket messages relayed, by route and direction (upstream: client to backend).",
    ["route", "direction"],
)
BYTES = Counter(
    "gateway_websocket_bytes_total",
    "WebSocket message payload bytes relayed, by route and direction.",
    ["route", "direction"],
)
REFUSALS = Counter(
    "gateway_websocket_refusals_total",
    "WebSocket handshakes refused before the upgrade, by reason.",
    ["reason"],
)
CLOSES = Counter(
    "gateway_websocket_closes_total",
    "WebSocket connections ended, by route and who or what ended them.",
    ["route", "by"],
)


class RouteSocketMetrics:
    """One route's label children."""

    __slots__ = ("active", "bytes_down", "bytes_up", "messages_down", "messages_up", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.active = ACTIVE.labels(route=name)
        self.messages_up = MESSAGES.labels(route=name, direction="upstream")
        self.messages_down = MESSAGES.labels(route=name, direction="downstream")
        self.bytes_up = BYTES.labels(route=name, direction="upstream")
        self.bytes_down = BYTES.labels(route=name, direction="downstream")

    def closed(self, by: str) -> None:
        CLOSES.labels(route=self.name, by=by).inc()


_BY_ROUTE: dict[str, RouteSocketMetrics] = {}


def route_metrics(name: str) -> RouteSocketMetrics:
    """The children of route ``name``, made on its first socket (routes are few)."""
    metrics = _BY_ROUTE.get(name)
    if metrics is None:
        metrics = _BY_ROUTE[name] = RouteSocketMetrics(name)
    return metrics


def refused(reason: str) -> None:
    REFUSALS.labels(reason=reason).inc()
