"""The quotas' Prometheus metrics (labels come from the config, never from consumers)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

STORE_STATES = ("redis", "unreachable", "local")

QUOTA_STORE_STATE = Gauge(
    "gateway_quota_store_state",
    "1 for where quota counts go: redis (shared), unreachable (counted here, flushed "
    "when Redis answers) or local (no REDIS_URL: this process only).",
    ["state"],
    multiprocess_mode="mostrecent",
)
QUOTA_UNFLUSHED = Gauge(
    "gateway_quota_unflushed_requests",
    "Requests counted against quotas here that Redis has not stored yet.",
    multiprocess_mode="livesum",
)
QUOTA_FLUSH_FAILURES = Counter(
    "gateway_quota_flush_failures_total",
    "Flushes of the quota counts to Redis that failed (they are retried).",
)
QUOTA_REFUSALS = Counter(
    "gateway_quota_refusals_total",
    "Requests refused with 429 because a quota was spent, by route and quota.",
    ["route", "quota"],
)
QUOTA_UNTRACKED = Counter(
    "gateway_quota_untracked_total",
    "Requests of a new consumer let through uncounted: the process tracks "
    "quota_max_consumers already and none could be let go.",
)


def set_store_state(state: str) -> None:
    for name in STORE_STATES:
        QUOTA_STORE_STATE.labels(state=name).set(1 if name == state else 0)
