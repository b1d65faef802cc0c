"""Active health checks: GET each backend's health path on an interval.

One task per route that has ``health_check``; a backend turns unhealthy after
``unhealthy_threshold`` failed checks in a row and healthy again after
``healthy_threshold`` passes. The tasks read the route table each round, so
after a reload they follow the new backends (their state objects are kept
for backends the reload did not change).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gatehouse_common.http_protocol import SMALL_BODY
from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.routing import Route
from gatehouse_gateway.upstream.h1 import UpstreamClient, UpstreamError, UpstreamPoolTimeout

logger = logging.getLogger(__name__)


class HealthMonitor:
    """Runs the checks of every route; :meth:`sync` follows config reloads."""

    def __init__(self, client: UpstreamClient, routes: Callable[[], list[Route]]) -> None:
        self._client = client
        self._routes = routes
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def sync(self) -> None:
        """Start, stop or restart tasks so each route with a health check has one."""
        wanted = {r.name: r for r in self._routes() if r.config.health_check is not None}
        for name in list(self._tasks):
            task = self._tasks.pop(name)
            task.cancel()
        for name, route in wanted.items():
            self._tasks[name] = asyncio.get_running_loop().create_task(
                self._run(route.name), name=f"health-{name}"
            )

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _route(self, name: str) -> Route | None:
        return next((r for r in self._routes() if r.name == name), None)

    async def _run(self, name: str) -> None:
        while True:
            route = self._route(name)
            if route is None or route.config.health_check is None:
                return
            check = route.config.health_check
            if check.enabled:
                await asyncio.gather(*(self._check(b, route) for b in route.backends))
            else:
                for backend in route.backends:
                    backend.set_active_health(True)
            for backend in route.backends:
                backend.refresh_gauge()
            await asyncio.sleep(check.interval)

    async def _check(self, backend: BackendState, route: Route) -> None:
        check = route.config.health_check
        if check is None:
            return
        ok = False
        try:
            # The client bounds each step by the check's timeout (pool wait, connect,
            # the whole response head); the body read is bounded here.
            response = await self._client.request(
                backend.base_url,
                "GET",
                check.path.encode(),
                (),
                None,
                connect_timeout=check.timeout,
                read_timeout=check.timeout,
                pool_timeout=check.timeout,
                tls=backend.tls,
            )
            try:
                ok = 200 <= response.status < 300
                length = response.content_length
                if length is not None and length <= SMALL_BODY:
                    async with asyncio.timeout(check.timeout):
                        await response.read()  # read whole, the connection is reused
            finally:
                response.release()
        except UpstreamPoolTimeout:
            # every connection this worker may open to the backend is busy: the
            # check never reached it, so it says nothing about its health
            return
        except (UpstreamError, TimeoutError, OSError):
            ok = False
        if ok:
            backend.check_successes += 1
            backend.check_failures = 0
            if not backend.active_healthy and backend.check_successes >= check.healthy_threshold:
                backend.set_active_health(True)
        else:
            backend.check_failures += 1
            backend.check_successes = 0
            if backend.active_healthy and backend.check_failures >= check.unhealthy_threshold:
                backend.set_active_health(False)
