"""One backend of one route, and everything the gateway knows about it.

These objects are the gateway's live state: strategies read ``available`` and
``in_flight``, the proxy records outcomes, the health checker flips
``active_healthy``, and an operator view (the admin API) reads them all. They
survive config reloads when the route keeps the backend, so a reload does not
forget that a backend is down.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from gatehouse_gateway.config.schema import PassiveHealthConfig
from gatehouse_gateway.metrics import BackendMetrics
from gatehouse_gateway.upstream.tls import UpstreamTLS

logger = logging.getLogger(__name__)

_WINDOW_SECONDS = 60


class BackendState:
    """Health, load and recent outcomes of one backend, cheap to update per request."""

    __slots__ = (
        "_bucket_second",
        "_errors",
        "_requests",
        "active_healthy",
        "base_url",
        "check_failures",
        "check_successes",
        "consecutive_failures",
        "drained",
        "ejected_until",
        "ejections_in_a_row",
        "in_flight",
        "metrics",
        "name",
        "passive",
        "route",
        "tls",
        "weight",
    )

    def __init__(self, route: str, url: str, weight: int, passive: PassiveHealthConfig) -> None:
        parts = urlsplit(url)
        self.route = route
        self.base_url = url
        # host:port is the backend's label: bounded (from config), and readable.
        self.name = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        self.weight = weight
        self.passive = passive
        # how an https:// backend is reached (the route's tls block); None for http://
        self.tls: UpstreamTLS | None = None
        self.in_flight = 0
        self.consecutive_failures = 0
        self.ejections_in_a_row = 0
        self.ejected_until = 0.0
        self.active_healthy = True
        self.check_successes = 0
        self.check_failures = 0
        self.drained = False
        self.metrics = BackendMetrics(route, self.name)
        self.metrics.up.set(1)
        self._requests = [0] * _WINDOW_SECONDS
        self._errors = [0] * _WINDOW_SECONDS
        self._bucket_second = 0

    @property
    def available(self) -> bool:
        """Whether a strategy may pick this backend now."""
        return (
            self.active_healthy
            and not self.drained
            and (self.ejected_until == 0.0 or self.ejected_until <= time.monotonic())
        )

    @property
    def ejected(self) -> bool:
        return self.ejected_until > time.monotonic()

    def _roll(self) -> int:
        """Clear the per-second slots that went stale since the last update."""
        second = int(time.monotonic())
        if second != self._bucket_second:
            gap = min(second - self._bucket_second, _WINDOW_SECONDS)
            for offset in range(1, gap + 1):
                slot = (self._bucket_second + offset) % _WINDOW_SECONDS
                self._requests[slot] = 0
                self._errors[slot] = 0
            self._bucket_second = second
        return second % _WINDOW_SECONDS

    def _tick(self, ok: bool) -> None:
        slot = self._roll()
        self._requests[slot] += 1
        if not ok:
            self._errors[slot] += 1

    def record_success(self) -> None:
        self._tick(True)
        if self.consecutive_failures:
            self.consecutive_failures = 0
        if self.ejections_in_a_row and not self.ejected:
            self.ejections_in_a_row = 0
            self.ejected_until = 0.0
            self._publish()

    def record_failure(self, reason: str) -> None:
        """A connect error, reset, timeout or 5xx; enough in a row eject the backend."""
        self._tick(False)
        self.consecutive_failures += 1
        passive = self.passive
        if (
            passive.enabled
            and self.consecutive_failures >= passive.consecutive_failures
            and not self.ejected
        ):
            seconds = min(
                passive.ejection_time * (2**self.ejections_in_a_row), passive.max_ejection_time
            )
            self.ejected_until = time.monotonic() + seconds
            self.ejections_in_a_row += 1
            self.consecutive_failures = 0
            self.metrics.ejections.inc()
            self._publish()
            logger.warning(
                "backend %s of route %s ejected for %.1fs after repeated failures (%s)",
                self.name,
                self.route,
                seconds,
                reason,
                extra={"route": self.route, "backend": self.name, "reason": reason},
            )

    def set_active_health(self, healthy: bool) -> None:
        if healthy != self.active_healthy:
            self.active_healthy = healthy
            self._publish()
            logger.warning(
                "backend %s of route %s is now %s (active check)",
                self.name,
                self.route,
                "healthy" if healthy else "unhealthy",
                extra={"route": self.route, "backend": self.name, "healthy": healthy},
            )

    def _publish(self) -> None:
        self.metrics.up.set(1 if self.active_healthy and not self.ejected else 0)

    def refresh_gauge(self) -> None:
        """Ejections end by the clock; the health checker calls this to show it."""
        self._publish()

    def recent(self) -> tuple[int, int]:
        """(requests, errors) over the last minute."""
        self._roll()
        return sum(self._requests), sum(self._errors)

    def completed_seconds(self) -> tuple[int, list[tuple[int, int]]]:
        """(this second, [(requests, errors)] of each whole second before it, oldest first).

        The window's per-second slots for the operator dashboard's history
        (gatehouse_gateway.operator.history); never called per request.
        """
        self._roll()
        second = self._bucket_second
        slots = [(second - age) % _WINDOW_SECONDS for age in range(_WINDOW_SECONDS - 1, 0, -1)]
        return second, [(self._requests[slot], self._errors[slot]) for slot in slots]

    def snapshot(self) -> dict[str, object]:
        """A JSON-ready view for the gateway's own endpoints."""
        requests, errors = self.recent()
        now = time.monotonic()
        return {
            "url": self.base_url,
            "name": self.name,
            "weight": self.weight,
            "available": self.available,
            "active_healthy": self.active_healthy,
            "ejected": self.ejected,
            "ejected_for_seconds": round(max(0.0, self.ejected_until - now), 3),
            "consecutive_failures": self.consecutive_failures,
            "drained": self.drained,
            "in_flight": self.in_flight,
            "recent_requests": requests,
            "recent_errors": errors,
            "recent_error_rate": round(errors / requests, 4) if requests else 0.0,
        }
