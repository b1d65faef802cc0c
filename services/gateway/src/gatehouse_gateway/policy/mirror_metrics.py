"""Prometheus metrics of request mirroring, bound once per route.

Labels are the route's name and fixed reasons, never anything a client sends,
so the number of series is bounded by the config.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

MIRROR_REQUESTS = Counter(
    "gateway_mirror_requests_total",
    "Copies of requests sent to a route's mirror group.",
    ["route"],
)
MIRROR_DROPPED = Counter(
    "gateway_mirror_dropped_total",
    "Requests sampled for mirroring but not copied, by reason (concurrency, "
    "body_too_large, body_not_buffered, no_backend, upstream_busy).",
    ["route", "reason"],
)
MIRROR_RESPONSES = Counter(
    "gateway_mirror_responses_total",
    "Answers of the mirror group, read and dropped, by status class (2xx .. 5xx).",
    ["route", "code"],
)
MIRROR_FAILURES = Counter(
    "gateway_mirror_failures_total",
    "Copies that got no whole answer, by reason (connect_error, timeout, reset, "
    "tls_error, pool_timeout, error).",
    ["route", "reason"],
)
MIRROR_IN_FLIGHT = Gauge(
    "gateway_mirror_in_flight",
    "Copies under way now (never above the route's mirror.max_concurrent per worker).",
    ["route"],
    multiprocess_mode="livesum",
)

DROP_REASONS = ("concurrency", "body_too_large", "body_not_buffered", "no_backend", "upstream_busy")
FAILURE_REASONS = ("connect_error", "timeout", "reset", "tls_error", "pool_timeout", "error")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


class MirrorMetrics:
    """The label children of one route's mirror; every one bound at load."""

    __slots__ = ("dropped", "failures", "in_flight", "requests", "responses")

    def __init__(self, route: str) -> None:
        self.requests = MIRROR_REQUESTS.labels(route=route)
        self.in_flight = MIRROR_IN_FLIGHT.labels(route=route)
        self.dropped = {r: MIRROR_DROPPED.labels(route=route, reason=r) for r in DROP_REASONS}
        self.failures = {r: MIRROR_FAILURES.labels(route=route, reason=r) for r in FAILURE_REASONS}
        self.responses = {c: MIRROR_RESPONSES.labels(route=route, code=c) for c in STATUS_CLASSES}

    def answered(self, status: int) -> None:
        self.responses[STATUS_CLASSES[min(max(status // 100, 1), 5) - 1]].inc()

    def failed(self, reason: str) -> None:
        self.failures.get(reason, self.failures["error"]).inc()
