"""The gateway's Prometheus metrics.

The FastAPI instrumentator is not used: proxied traffic never reaches FastAPI,
so the raw ASGI app counts every request itself under the instrumentator's
names (``http_requests_total{handler,method,status}``,
``http_request_duration_seconds{handler,method}``), ``handler`` being the route
name (or the gateway endpoint), never a raw path. Label children are bound once
per route and backend (:class:`RouteMetrics`, :class:`BackendMetrics`) so the
hot path does a dictionary lookup and an ``inc``, not a label resolution.

With several uvicorn workers ``PROMETHEUS_MULTIPROC_DIR`` is set before any
worker imports this module, so prometheus_client keeps values in shared files
and :func:`render_metrics` aggregates them.

The four updates every proxied request makes (its request counter and
duration histogram, its backend's) are counted in plain numbers in one worker
and folded into the prometheus_client values when :func:`render_metrics`
renders them, so /metrics shows the same. A prometheus_client update takes
its lock, checks the metric is a labelled child and walks the buckets in
Python: the four cost about 31,000 instructions per request, the plain
numbers about 5,000 (loadtest/README.md, "make callgrind"). With several
workers each one's values live in the shared files, read by whichever
worker renders: there the updates go straight to prometheus_client.
"""

from __future__ import annotations

import os
from bisect import bisect_left

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from gatehouse_common.metrics import LATENCY_BUCKETS

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CURSOR_STATES = ("redis", "fallback", "local")

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "Requests answered by the gateway, by route (handler), method and status.",
    ["handler", "method", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer a request, by route (handler) and method.",
    ["handler", "method"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_REQUESTS = Counter(
    "gateway_upstream_requests_total",
    "Requests sent to backends, by route, backend and status code (or error kind).",
    ["route", "backend", "code"],
)
UPSTREAM_DURATION = Histogram(
    "gateway_upstream_duration_seconds",
    "Time from sending a request to a backend until its response headers arrived.",
    ["route", "backend"],
    buckets=LATENCY_BUCKETS,
)
BACKEND_UP = Gauge(
    "gateway_backend_up",
    "1 when the backend takes traffic (healthy and not ejected), else 0.",
    ["route", "backend"],
    multiprocess_mode="mostrecent",
)
RETRIES = Counter("gateway_retries_total", "Requests retried on another backend.", ["route"])
EJECTIONS = Counter(
    "gateway_ejections_total",
    "Backends ejected after consecutive failures.",
    ["route", "backend"],
)
CURSOR_STATE = Gauge(
    "gateway_cursor_state",
    "1 for the round-robin cursor store in use: redis, fallback (Redis down) or local.",
    ["state"],
    multiprocess_mode="mostrecent",
)
CURSOR_FALLBACKS = Counter(
    "gateway_cursor_fallbacks_total",
    "Round-robin picks served by the local cursor because Redis was unreachable.",
)
AUTH_FAILURES = Counter(
    "gateway_auth_failures_total", "Requests refused with 401, by reason.", ["reason"]
)
CONFIG_RELOADS = Counter("gateway_config_reloads_total", "Config reloads, by outcome.", ["outcome"])
DRAINS = Counter(
    "gateway_drains_total",
    "Operator drains and restores of a backend asked of this replica (admin API), by action.",
    ["action"],
)

# The revocation denylist (revocation.py). With several workers each keeps
# its own list: "up" is the worst worker's view, entries the fullest one's.
REVOCATION_STORE_UP = Gauge(
    "gatehouse_revocation_store_up",
    "1 while the revocation list is in step with Redis, 0 when Redis is unreachable or unset.",
    multiprocess_mode="livemin",
)
REVOCATION_ENTRIES = Gauge(
    "gatehouse_revocation_entries",
    "Revoked token ids (jti) and subjects (sub) this gateway refuses from memory.",
    ["kind"],
    multiprocess_mode="livemax",
)
REVOCATION_EVENTS = Counter(
    "gatehouse_revocation_events_total",
    "Revocation events received from auth through Redis and applied, by kind.",
    ["kind"],
)
REVOCATION_RESYNCS = Counter(
    "gatehouse_revocation_resyncs_total",
    "Full reads of the revocation sets from Redis (one per connect).",
)
REVOCATION_REFUSALS = Counter(
    "gatehouse_revocation_refusals_total",
    "Requests refused because their token was revoked, by what revoked it (token or subject).",
    ["reason"],
)

AUDIT_RECORDS = Counter(
    "gateway_audit_records_total",
    "Operator actions sent to auth's audit log (POST /audit), by outcome.",
    ["outcome"],
)


def method_label(method: str) -> str:
    """Methods outside the usual set share one label, so clients cannot add series."""
    return method if method in KNOWN_METHODS else "other"


class _BatchedCounter:
    """A counter child's increments, kept as an int until :func:`fold_pending`."""

    __slots__ = ("_child", "_dirty", "_pending")

    def __init__(self, child: Counter) -> None:
        self._child = child
        self._pending = 0
        self._dirty = False

    def inc(self) -> None:
        self._pending += 1
        if not self._dirty:
            self._dirty = True
            _PENDING.append(self)

    def fold(self) -> None:
        pending, self._pending, self._dirty = self._pending, 0, False
        if pending:
            self._child.inc(pending)


class _BatchedHistogram:
    """A histogram child's observations, kept as bucket counts and a sum until
    :func:`fold_pending`."""

    __slots__ = ("_bounds", "_child", "_counts", "_dirty", "_sum")

    def __init__(self, child: Histogram) -> None:
        self._child = child
        # the bucket of an observation is the first bound at or above it, as
        # Histogram.observe finds it (the last bound is +Inf)
        self._bounds: list[float] = child._upper_bounds
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._dirty = False

    def observe(self, amount: float) -> None:
        self._counts[bisect_left(self._bounds, amount)] += 1
        self._sum += amount
        if not self._dirty:
            self._dirty = True
            _PENDING.append(self)

    def fold(self) -> None:
        counts, total = self._counts, self._sum
        self._counts, self._sum, self._dirty = [0] * len(counts), 0.0, False
        child = self._child
        # prometheus_client (locked in uv.lock) has no public call for "n
        # observations in bucket i": its sum and bucket values take them directly
        child._sum.inc(total)
        for bucket, count in zip(child._buckets, counts, strict=True):
            if count:
                bucket.inc(count)


# The batched metrics with something to fold, each listed once until folded.
_PENDING: list[_BatchedCounter | _BatchedHistogram] = []


def fold_pending() -> None:
    """Move the batched counts into prometheus_client's values (before a render)."""
    pending = _PENDING[:]
    _PENDING.clear()
    for batched in pending:
        batched.fold()


def _counter(child: Counter) -> Counter | _BatchedCounter:
    """``child`` itself with several workers (shared files), else batched."""
    return child if _multiprocess() else _BatchedCounter(child)


def _histogram(child: Histogram) -> Histogram | _BatchedHistogram:
    return child if _multiprocess() else _BatchedHistogram(child)


def _multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class RouteMetrics:
    """The label children of one route, bound on first use."""

    __slots__ = ("_durations", "_requests", "name", "retries")

    def __init__(self, name: str) -> None:
        self.name = name
        self.retries = RETRIES.labels(route=name)
        self._requests: dict[tuple[str, int], Counter | _BatchedCounter] = {}
        self._durations: dict[str, Histogram | _BatchedHistogram] = {}

    def observe(self, method: str, status: int, seconds: float) -> None:
        key = (method, status)
        counter = self._requests.get(key)
        if counter is None:
            label = method_label(method)
            counter = self._requests[key] = _counter(
                HTTP_REQUESTS.labels(handler=self.name, method=label, status=str(status))
            )
        counter.inc()
        histogram = self._durations.get(method)
        if histogram is None:
            histogram = self._durations[method] = _histogram(
                HTTP_DURATION.labels(handler=self.name, method=method_label(method))
            )
        histogram.observe(seconds)


class BackendMetrics:
    """The label children of one backend of one route."""

    __slots__ = ("_codes", "backend", "duration", "ejections", "route", "up")

    def __init__(self, route: str, backend: str) -> None:
        self.route = route
        self.backend = backend
        self.duration = _histogram(UPSTREAM_DURATION.labels(route=route, backend=backend))
        self.up = BACKEND_UP.labels(route=route, backend=backend)
        self.ejections = EJECTIONS.labels(route=route, backend=backend)
        self._codes: dict[int | str, Counter | _BatchedCounter] = {}

    def count(self, code: int | str) -> None:
        counter = self._codes.get(code)
        if counter is None:
            counter = self._codes[code] = _counter(
                UPSTREAM_REQUESTS.labels(route=self.route, backend=self.backend, code=str(code))
            )
        counter.inc()


def set_cursor_state(state: str) -> None:
    for name in CURSOR_STATES:
        CURSOR_STATE.labels(state=name).set(1 if name == state else 0)


def render_metrics() -> tuple[bytes, str]:
    """The exposition body and its content type, across workers when there are several."""
    fold_pending()
    if _multiprocess():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
