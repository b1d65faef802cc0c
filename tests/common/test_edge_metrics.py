"""``gatehouse_connections_refused_total`` reaches every service's /metrics.

The counter is registered in the process-wide registry by gatehouse_common,
which the FastAPI services expose through the instrumentator and the gateway
through its own ``render_metrics``; each exposes it from the first scrape,
before any refusal, so an alert on its rate has a series to read.
"""

from __future__ import annotations

import pytest
from common.asgi import AsgiClientFactory
from common.settings_factories import DemoSettings

from gatehouse_common.app import create_service_app
from gatehouse_gateway.metrics import render_metrics

pytestmark = pytest.mark.unit

SERIES = "gatehouse_connections_refused_total"


async def test_a_service_app_exposes_the_refusal_counter(
    asgi_client: AsgiClientFactory, clean_env: object, restore_logging: None
) -> None:
    client = asgi_client(create_service_app(DemoSettings()))
    assert SERIES in (await client.get("/metrics")).text


def test_the_gateway_exposes_the_refusal_counter() -> None:
    body, _ = render_metrics()
    assert SERIES.encode() in body
