"""Plugging the operator view into the gateway's FastAPI app (``admin.py``)."""

from __future__ import annotations

from fastapi import FastAPI

from gatehouse_gateway.operator import api, dashboard, quotas, ratelimits, weights_api
from gatehouse_gateway.operator.deps import GatewayGetter


def install_operator(app: FastAPI, gateway: GatewayGetter) -> None:
    """Add the admin API and the dashboard; ``gateway`` returns the running gateway."""
    app.state.operator_gateway = gateway
    app.include_router(api.router)
    app.include_router(quotas.router)
    app.include_router(weights_api.router)
    app.include_router(ratelimits.router)
    app.include_router(dashboard.router)
