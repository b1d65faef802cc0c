"""The per-request metrics, counted in plain numbers and folded in at render time.

What /metrics shows must be what prometheus_client would show had every
update gone to it directly: a reference histogram and counter in a registry
of their own take the same updates.
"""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from gatehouse_common.metrics import LATENCY_BUCKETS
from gatehouse_gateway.metrics import BackendMetrics, RouteMetrics, render_metrics

# below the first bound, on a bound, between bounds, above the last finite one
DURATIONS = (0.0001, 0.0005, 0.0005, 0.003, 0.2, 1e9)


def _reference(durations: tuple[float, ...]) -> CollectorRegistry:
    registry = CollectorRegistry()
    histogram = Histogram("ref", "", buckets=LATENCY_BUCKETS, registry=registry)
    for seconds in durations:
        histogram.observe(seconds)
    return registry


def _samples(registry: CollectorRegistry, name: str, labels: dict[str, str]) -> dict[str, float]:
    """``name``'s samples with ``labels`` (the bucket bound kept), keyed without the name."""
    found = {}
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name.startswith(name) and labels.items() <= sample.labels.items():
                suffix = sample.name.removeprefix(name)
                if suffix != "_created":
                    found[suffix + sample.labels.get("le", "")] = sample.value
    return found


def test_a_routes_requests_show_as_if_observed_one_by_one() -> None:
    route = f"batch-{uuid.uuid4().hex[:8]}"
    metrics = RouteMetrics(route)
    for seconds in DURATIONS:
        metrics.observe("GET", 200, seconds)
    metrics.observe("GET", 404, 0.001)
    render_metrics()
    labels = {"handler": route, "method": "GET"}
    assert _samples(REGISTRY, "http_request_duration_seconds", labels) == _samples(
        _reference((*DURATIONS, 0.001)), "ref", {}
    )
    requests = {**labels, "status": "200"}
    assert REGISTRY.get_sample_value("http_requests_total", requests) == len(DURATIONS)
    assert REGISTRY.get_sample_value("http_requests_total", {**labels, "status": "404"}) == 1
    # folded once: a second render adds nothing, later requests add theirs
    render_metrics()
    assert REGISTRY.get_sample_value("http_requests_total", requests) == len(DURATIONS)
    metrics.observe("GET", 200, 0.001)
    render_metrics()
    assert REGISTRY.get_sample_value("http_requests_total", requests) == len(DURATIONS) + 1


def test_a_backends_answers_show_as_if_observed_one_by_one() -> None:
    route = f"batch-{uuid.uuid4().hex[:8]}"
    metrics = BackendMetrics(route, "http://b")
    for seconds in DURATIONS:
        metrics.duration.observe(seconds)
        metrics.count(200)
    metrics.count("timeout")
    text = render_metrics()[0].decode()
    labels = {"route": route, "backend": "http://b"}
    assert _samples(REGISTRY, "gateway_upstream_duration_seconds", labels) == _samples(
        _reference(DURATIONS), "ref", {}
    )
    assert REGISTRY.get_sample_value(
        "gateway_upstream_requests_total", {**labels, "code": "200"}
    ) == len(DURATIONS)
    assert (
        f'gateway_upstream_requests_total{{backend="http://b",code="timeout",route="{route}"}} 1.0'
        in text
    )


def test_several_workers_update_prometheus_client_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """With shared files any worker may render: nothing may wait in one worker's memory."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent")
    route = f"batch-{uuid.uuid4().hex[:8]}"
    metrics = RouteMetrics(route)
    metrics.observe("GET", 200, 0.001)
    labels = {"handler": route, "method": "GET", "status": "200"}
    assert REGISTRY.get_sample_value("http_requests_total", labels) == 1
