"""A service's WebSocket limits, apart from the protocol that enforces them.

:mod:`gatehouse_common.server` puts them in every worker's uvicorn config; the
protocol itself (:mod:`gatehouse_common.websocket_protocol`, with `websockets`
and uvicorn's implementation, ~0.9 MB) is imported on the first upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gatehouse_common.settings import ServiceSettings


@dataclass(frozen=True, slots=True)
class WebSocketLimits:
    """A service's WebSocket settings, carried to every worker in the uvicorn config."""

    max_message_bytes: int = 1024 * 1024
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    per_message_deflate: bool = False
    drain_timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> WebSocketLimits:
        return cls(
            max_message_bytes=settings.ws_max_message_bytes,
            ping_interval=settings.ws_ping_interval or None,
            ping_timeout=settings.ws_ping_timeout or None,
            per_message_deflate=settings.ws_per_message_deflate,
            drain_timeout=settings.ws_drain_timeout,
        )


DEFAULT_WEBSOCKET_LIMITS = WebSocketLimits()
