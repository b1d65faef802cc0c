"""Requests per second and error rate per backend over the last minutes, for the charts.

Each backend already counts its requests and errors per second over the last
minute (``BackendState.completed_seconds``); the operator loop copies the
seconds it has not seen yet into buckets of :data:`BUCKET_SECONDS`, keeping
:data:`BUCKETS` of them (ten minutes). Cheap: a few dozen additions per
backend per second, off the request path. Per process: with several workers
each one has its own history (as it has its own backend state).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from gatehouse_gateway.routing import Route

BUCKET_SECONDS = 5
BUCKETS = 120


class _Series:
    """Complete buckets (requests, errors) of one backend, oldest first."""

    __slots__ = ("buckets", "current", "current_index", "last_second")

    def __init__(self) -> None:
        self.buckets: deque[tuple[int, int]] = deque(maxlen=BUCKETS)
        self.current_index: int | None = None
        self.current = [0, 0]
        self.last_second: int | None = None

    def feed(self, second: int, requests: int, errors: int) -> None:
        index = second // BUCKET_SECONDS
        if self.current_index is not None and index != self.current_index:
            self.buckets.append((self.current[0], self.current[1]))
            # whole buckets nobody fed (the loop stalled) count as empty
            for _ in range(min(index - self.current_index - 1, BUCKETS)):
                self.buckets.append((0, 0))
            self.current = [0, 0]
        self.current_index = index
        self.current[0] += requests
        self.current[1] += errors
        self.last_second = second


class History:
    """The series of every backend of the running config, keyed by route and URL."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], _Series] = {}

    def sample(self, routes: Iterable[Route]) -> None:
        seen = set()
        for route in routes:
            for backend in route.backends:
                key = (route.name, backend.base_url)
                seen.add(key)
                series = self._series.get(key)
                if series is None:
                    series = self._series[key] = _Series()
                now, seconds = backend.completed_seconds()
                first = now - len(seconds)
                for offset, (requests, errors) in enumerate(seconds):
                    second = first + offset
                    if series.last_second is None or second > series.last_second:
                        series.feed(second, requests, errors)
        for key in set(self._series) - seen:  # backends a reload removed
            del self._series[key]

    def snapshot(self, routes: Iterable[Route]) -> dict[str, Any]:
        """Per route and backend name: requests/s and error rate per bucket, oldest first."""
        result: dict[str, dict[str, Any]] = {}
        for route in routes:
            backends: dict[str, Any] = {}
            for backend in route.backends:
                series = self._series.get((route.name, backend.base_url))
                buckets = list(series.buckets) if series is not None else []
                backends[backend.name] = {
                    "requests_per_second": [round(r / BUCKET_SECONDS, 3) for r, _ in buckets],
                    "error_rate": [round(e / r, 4) if r else 0.0 for r, e in buckets],
                }
            result[route.name] = backends
        return {"bucket_seconds": BUCKET_SECONDS, "buckets": BUCKETS, "routes": result}
