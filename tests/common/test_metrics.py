"""Prometheus wiring: sub-millisecond buckets, handlers labelled by route template."""

from __future__ import annotations

import httpx
import pytest
from common.asgi import AsgiClientFactory
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from gatehouse_common.metrics import LATENCY_BUCKETS, instrument

pytestmark = pytest.mark.unit

Labels = tuple[tuple[str, str], ...]
ITEM = "/items/{item_id}"


@pytest.fixture
def client(asgi_client: AsgiClientFactory) -> httpx.AsyncClient:
    """An instrumented app with a registry of its own (see instrument's docstring)."""
    app = FastAPI()

    @app.get(ITEM)
    async def item(item_id: str) -> dict[str, str]:
        return {"item_id": item_id}

    instrument(app, registry=CollectorRegistry())
    return asgi_client(app)


async def samples(client: httpx.AsyncClient, name: str) -> dict[Labels, float]:
    text = (await client.get("/metrics")).text
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_requests_are_counted_by_route_template(client: httpx.AsyncClient) -> None:
    for item_id in ("1", "2", "three", "%E2%98%83%20x", "x" * 300):
        assert (await client.get(f"/items/{item_id}")).status_code == 200
    for path in ("/not-a-route/1", "/not-a-route/2", "/wp-admin.php"):
        assert (await client.get(path)).status_code == 404
    counts = await samples(client, "http_requests_total")
    assert counts == {
        (("handler", ITEM), ("method", "GET"), ("status", "200")): 5,
        (("handler", "none"), ("method", "GET"), ("status", "404")): 3,
    }


async def test_latency_buckets_start_at_half_a_millisecond(client: httpx.AsyncClient) -> None:
    await client.get("/items/1")
    buckets = await samples(client, "http_request_duration_seconds_bucket")
    bounds = [float(dict(labels)["le"]) for labels in buckets if dict(labels)["handler"] == ITEM]
    assert sorted(bounds) == [*LATENCY_BUCKETS, float("inf")]
    assert min(bounds) == 0.0005


async def test_scrapes_do_not_count_themselves_and_no_created_series(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/metrics")
    await client.get("/metrics")
    assert await samples(client, "http_requests_total") == {}
    assert "_created" not in (await client.get("/metrics")).text
