"""The canary metrics: requests per route and group, fallbacks, weights, the weight store.

The split binds its label children once per route and group when a table is
built, so a request costs one ``inc``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

GROUP_REQUESTS = Counter(
    "gateway_group_requests_total",
    "Requests sent to a backend group of a route with groups (the group that got them).",
    ["route", "group"],
)
GROUP_FALLBACKS = Counter(
    "gateway_group_fallbacks_total",
    "Requests a split chose a group for that had no backend to pick, sent to primary instead.",
    ["route", "group"],
)
GROUP_WEIGHT = Gauge(
    "gateway_group_weight",
    "The weight a route's split gives a group now (a runtime override, else the config's).",
    ["route", "group"],
    multiprocess_mode="mostrecent",
)
WEIGHT_STORE_UP = Gauge(
    "gateway_canary_weights_store_up",
    "1 while runtime canary weights are in step with Redis, 0 when Redis is unreachable or unset.",
    multiprocess_mode="livemin",
)
WEIGHT_CHANGES = Counter(
    "gateway_canary_weight_changes_total",
    "Runtime weight changes applied by this replica, by source (operator: its admin API; "
    "replica: read from Redis).",
    ["source"],
)
