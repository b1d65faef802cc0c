"""The rate limits' Prometheus metrics: decisions per route and limit, the store's state.

Label children of a limit are bound once, when its route is compiled
(:class:`LimitMetrics`), so the hot path does an ``inc``, not a label lookup.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

STORE_STATES = ("redis", "fallback", "local")

DECISIONS = Counter(
    "gateway_ratelimit_requests_total",
    "Requests a rate limit decided, by route, limit and decision (allowed or refused).",
    ["route", "limit", "decision"],
)
FALLBACK_DECISIONS = Counter(
    "gateway_ratelimit_fallback_total",
    "Rate limit decisions taken while Redis was unreachable, by route, limit and the "
    "limit's on_store_failure mode (local, open, closed).",
    ["route", "limit", "mode"],
)
STORE_STATE = Gauge(
    "gateway_ratelimit_store_state",
    "1 for the rate limits' store in use: redis (shared), fallback (Redis unreachable) "
    "or local (no REDIS_URL: per process).",
    ["state"],
    multiprocess_mode="mostrecent",
)
REPLICAS = Gauge(
    "gateway_ratelimit_replicas",
    "Gateway processes seen in Redis recently (the local fallback divides limits by it).",
    multiprocess_mode="mostrecent",
)
ROUND_TRIPS = Counter(
    "gateway_ratelimit_store_round_trips_total",
    "Round trips to Redis for lease refills (each carries every refill pending), by outcome.",
    ["outcome"],
)


def set_store_state(state: str) -> None:
    for name in STORE_STATES:
        STORE_STATE.labels(state=name).set(1 if name == state else 0)


class LimitMetrics:
    """The label children of one limit of one route."""

    __slots__ = ("allowed", "closed", "local", "open", "refused")

    def __init__(self, route: str, limit: str) -> None:
        self.allowed = DECISIONS.labels(route=route, limit=limit, decision="allowed")
        self.refused = DECISIONS.labels(route=route, limit=limit, decision="refused")
        self.local = FALLBACK_DECISIONS.labels(route=route, limit=limit, mode="local")
        self.open = FALLBACK_DECISIONS.labels(route=route, limit=limit, mode="open")
        self.closed = FALLBACK_DECISIONS.labels(route=route, limit=limit, mode="closed")
