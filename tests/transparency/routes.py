"""The gateway's routes to httpbin in the transparency tests.

``HOST`` keeps the route defaults (``preserve_host`` on, so httpbin sees the
Host the client sent, exactly as when asked directly); ``OWN_HOST`` has
``preserve_host: false`` (httpbin sees its own address, and builds URLs with it).
"""

from __future__ import annotations

from typing import Any

from support.gateway import HOST, gateway_route
from support.processes import ServiceProcess

OWN_HOST = "own.gatehouse.test"


def gateway_config(httpbin: ServiceProcess) -> dict[str, Any]:
    return {
        "cursor": {"store": "local"},
        "routes": [
            gateway_route([httpbin], name="httpbin", hosts=[HOST]),
            gateway_route([httpbin], name="own-host", hosts=[OWN_HOST], preserve_host=False),
        ],
    }
