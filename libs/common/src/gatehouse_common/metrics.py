"""Prometheus wiring shared by every service.

``http_requests_total`` and ``http_request_duration_seconds`` follow the
prometheus-fastapi-instrumentator conventions, but with buckets from half a
millisecond to ten seconds: the library's default (0.1, 0.5, 1) cannot show a
p99 under 100 ms, which is where a healthy service lives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics

if TYPE_CHECKING:
    from fastapi import FastAPI
    from prometheus_fastapi_instrumentator import Instrumentator

# ``*_created`` series double every counter's cardinality and nothing here reads them.
disable_created_metrics()

# Counted by the HTTP protocol (gatehouse_common.edge_protocol), so it exists in every
# service's process-wide registry, which /metrics exposes (aggregated across workers
# in multiprocess mode like every other series).
CONNECTIONS_REFUSED = Counter(
    "gatehouse_connections_refused",
    "Client connections closed at once because the worker had max_connections open.",
)

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def instrument(
    app: FastAPI, *, metrics_path: str = "/metrics", registry: CollectorRegistry | None = None
) -> Instrumentator:
    """Count and time every request of ``app`` and serve the registry at ``metrics_path``.

    Handlers are labelled by route template, never the raw path, so label
    cardinality stays bounded whatever clients send. When the process runs
    several uvicorn workers, ``PROMETHEUS_MULTIPROC_DIR`` is set by
    :func:`gatehouse_common.server.serve` and the exposition aggregates them.

    ``registry`` defaults to the process-wide one, right for a service (one app
    per process). A process that builds several apps (tests) gives each its
    own: on a shared registry the instrumentator records nothing at all for
    every app after the first, without a word.

    The instrumentator is imported here, not at the top: the gateway's workers
    import this module for its counters and buckets and never build a FastAPI
    app on the request path (loadtest/README.md, "Memory").
    """
    from prometheus_fastapi_instrumentator import Instrumentator

    instrumentator = Instrumentator(
        registry=registry,
        should_group_status_codes=False,
        should_ignore_untemplated=False,
        should_group_untemplated=True,
        excluded_handlers=[metrics_path],
    )
    instrumentator.instrument(
        app,
        latency_lowr_buckets=LATENCY_BUCKETS,
        latency_highr_buckets=LATENCY_BUCKETS,
    )
    instrumentator.expose(app, endpoint=metrics_path, include_in_schema=False)
    return instrumentator
