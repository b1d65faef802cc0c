"""The fake backend's ASGI app: an echo on every path, plus a small admin surface.

A WebSocket at ``/ws`` echoes messages (:mod:`gatehouse_fake_backend.websocket_echo`);
an HTTP request to ``/ws`` is echoed like any other. Paths it keeps for
itself: ``/healthz``, ``/readyz``, ``/metrics`` and everything under
``/__backend/`` (faults, downloads, server-sent events). The prefix is not the
gateway's reserved ``/-/`` so a gateway in front can proxy to all of them, which
is why ``/__backend/`` answers only when the instance was started with
``--faults``: otherwise anyone allowed through a route could switch the
backend's health check off or make it fail every request. Switched off, the
prefix answers 404 on every method instead of being echoed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI, Path, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from prometheus_client import Counter

from gatehouse_common.app import create_service_app
from gatehouse_common.errors import error_response
from gatehouse_fake_backend.echo import describe_request
from gatehouse_fake_backend.faults import FaultInjector, Faults, FaultsUpdate
from gatehouse_fake_backend.settings import FakeBackendSettings, get_settings
from gatehouse_fake_backend.websocket_echo import websocket_router

ADMIN_PREFIX = "/__backend"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MAX_DOWNLOAD_BYTES = 1 << 30
_PATTERN = bytes(range(256)) * 256  # 64 KiB, so downloads are checkable by hash

REQUESTS = Counter(
    "fake_backend_requests_total",
    "Echo requests answered, by outcome (ok or injected_error).",
    ["instance", "outcome"],
)


def pattern_bytes(size: int) -> bytes:
    """The exact bytes ``/__backend/bytes/{size}`` sends, for tests to compare."""
    repeats, rest = divmod(size, len(_PATTERN))
    return _PATTERN * repeats + _PATTERN[:rest]


async def _stream_pattern(size: int) -> AsyncIterator[bytes]:
    remaining = size
    while remaining > 0:
        chunk = _PATTERN if remaining >= len(_PATTERN) else _PATTERN[:remaining]
        remaining -= len(chunk)
        yield chunk


async def _stream_events(count: int, interval: float) -> AsyncIterator[bytes]:
    for number in range(1, count + 1):
        if number > 1:
            await asyncio.sleep(interval)
        yield b"id: %d\ndata: event %d\n\n" % (number, number)


def admin_router(injector: FaultInjector) -> APIRouter:
    router = APIRouter(prefix=ADMIN_PREFIX, tags=["admin"])

    @router.get("/faults", summary="The faults being injected")
    async def read_faults() -> Faults:
        return injector.faults

    @router.put("/faults", summary="Change some of the faults")
    async def update_faults(change: FaultsUpdate) -> Faults:
        return injector.update(change)

    @router.post("/reset", summary="Back to the faults the instance started with")
    async def reset_faults() -> Faults:
        return injector.reset()

    @router.get("/bytes/{size}", summary="A streamed download of `size` bytes")
    async def download(size: int = Path(ge=0, le=MAX_DOWNLOAD_BYTES)) -> StreamingResponse:
        return StreamingResponse(
            _stream_pattern(size),
            media_type="application/octet-stream",
            headers={"content-length": str(size)},
        )

    @router.get("/sse", summary="Server-sent events: `events` of them, `interval_ms` apart")
    async def events(
        events: int = Query(default=5, ge=1, le=1000),
        interval_ms: int = Query(default=1000, ge=0, le=60_000),
    ) -> StreamingResponse:
        return StreamingResponse(
            _stream_events(events, interval_ms / 1000),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )

    return router


def closed_admin_router() -> APIRouter:
    """``/__backend/...`` without ``--faults``: 404, the same for every method and path."""
    router = APIRouter(prefix=ADMIN_PREFIX, include_in_schema=False)

    async def not_found() -> Response:
        return error_response(
            status.HTTP_404_NOT_FOUND, "not_found", "fault injection is off on this instance"
        )

    router.add_api_route("", not_found, methods=ALL_METHODS)
    router.add_api_route("/{path:path}", not_found, methods=ALL_METHODS)
    return router


def echo_router(injector: FaultInjector, instance: str) -> APIRouter:
    router = APIRouter(tags=["echo"])
    ok = REQUESTS.labels(instance=instance, outcome="ok")
    failed = REQUESTS.labels(instance=instance, outcome="injected_error")

    async def echo(request: Request) -> Response:
        """Echo the request."""
        await injector.delay()
        description = await describe_request(request, instance)
        if injector.should_fail():
            failed.inc()
            return error_response(
                injector.faults.error_status, "injected_error", "fault injected", instance=instance
            )
        ok.inc()
        return Response(
            json.dumps(description).encode(),
            status_code=status.HTTP_200_OK,
            media_type="application/json",
            headers={"x-backend-instance": instance},
        )

    # One route per method, so each has its own OpenAPI operation id.
    for method in ALL_METHODS:
        router.add_api_route(
            "/{path:path}",
            echo,
            methods=[method],
            name=f"echo_{method.lower()}",
            operation_id=f"echo_{method.lower()}",
            summary="Echo the request",
        )

    return router


def create_app(settings: FakeBackendSettings | None = None) -> FastAPI:
    """One backend instance; its name, starting faults and whether its fault
    endpoints are served (``settings.faults``) come from ``settings``."""
    settings = settings or get_settings()
    injector = FaultInjector(
        Faults(
            latency_ms=settings.latency_ms,
            error_rate=settings.error_rate,
            error_status=settings.error_status,
            healthy=settings.healthy,
        )
    )
    app = create_service_app(
        settings,
        alive=lambda: injector.faults.healthy,
        checks={},
        title="Gatehouse fake backend",
        summary=f"Instance {settings.instance}: echoes every request",
    )
    app.state.injector = injector
    app.include_router(admin_router(injector) if settings.faults else closed_admin_router())
    app.include_router(websocket_router(settings.instance))
    app.include_router(echo_router(injector, settings.instance))
    return app
