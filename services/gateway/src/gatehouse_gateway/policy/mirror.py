"""Request mirroring: a sampled share of a route's requests copied to another backend group.

The copy is a fire-and-forget background task: the real request never waits
for it and never sees how it went. Everything that could make a copy cost the
real request something is bounded, and what does not fit is dropped and
counted (:mod:`.mirror_metrics`), never queued:

- **concurrency**: at most ``max_concurrent`` copies per worker are under way
  (a count kept across reloads, so a reload does not double the bound); one
  more is dropped (``concurrency``);
- **memory**: only a body the gateway buffered anyway (a ``Content-Length`` up
  to the route's ``limits.buffer_body_bytes``) and within ``max_body_bytes``
  is copied; the bytes are shared with the real request, not duplicated. A
  streamed body is never read for the copy (``body_not_buffered``): the
  client's stream is the real backend's alone. The copy's answer is read in
  chunks and dropped, at most :data:`DRAIN_LIMIT` bytes, then its connection
  is closed;
- **time**: the whole copy, connect to last byte, within ``timeout``;
- **connections**: copies go through the gateway's one upstream client, so its
  connection caps hold; a copy never queues for a connection (``upstream_busy``
  when its backend's pool or the gateway's is at its cap), so it never takes a
  place a real request waits for.

The mirror backend's health is not touched by copies (they are not its real
traffic); the group's balancer still skips backends that are down or drained.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.balancing import Balancer
from gatehouse_gateway.config.mirror import MirrorConfig
from gatehouse_gateway.outcome import outcome_of
from gatehouse_gateway.policy.mirror_metrics import MirrorMetrics
from gatehouse_gateway.request_body import RequestBody
from gatehouse_gateway.upstream.h1 import UpstreamClient, UpstreamError

logger = logging.getLogger(__name__)

# The copy's answer is read and dropped up to this many bytes; past it the
# connection is closed rather than spend bandwidth on an answer nobody reads.
DRAIN_LIMIT = 1024 * 1024


# has_room said a connection is free at once; should that ever not hold, the
# copy gives up (pool_timeout) instead of waiting in line with real requests
_NO_WAIT = 0.001


class _Drained(Exception):
    """The copy's answer ran past :data:`DRAIN_LIMIT`: the rest is not read."""


class MirrorSource(Protocol):
    """What a request offers to be copied (``ProxyRequest`` has all of it)."""

    @property
    def method(self) -> str: ...

    @property
    def target(self) -> bytes: ...

    @property
    def headers(self) -> Sequence[tuple[bytes, bytes]]: ...

    @property
    def body(self) -> RequestBody | None: ...

    @property
    def host(self) -> bytes | None: ...


class MirrorGate:
    """Copies under way for one route; shared by the route's mirrors across reloads."""

    __slots__ = ("in_flight",)

    def __init__(self) -> None:
        self.in_flight = 0


async def _once(payload: bytes) -> AsyncIterator[bytes]:
    yield payload


def has_room(client: UpstreamClient, backend: BackendState) -> bool:
    """Whether a request to ``backend`` would get a connection without queueing.

    Mirrors the first steps of :meth:`BackendPool.acquire` (no request queued
    ahead; a place under both caps, or a live idle connection, the most recent
    first as acquire takes them), read in the same loop step as the request
    that follows, so the answer holds.
    """
    pool = client.pool(backend.base_url, backend.tls)
    if pool.waiters:
        return False
    if pool.connections < client.backend_limit and client.connections < client.limit:
        return True
    # at a cap: only a live idle connection (the one acquire would take) will do
    oldest = pool.loop.time() - client.keepalive
    for conn in reversed(pool.idle):
        transport = conn.transport
        if not conn.closed and transport is not None and not transport.is_closing():
            return conn.idle_since >= oldest
    return False


class Mirror:
    """One route's mirror, compiled at load; :meth:`offer` is the hot path's one call."""

    __slots__ = (
        "_tasks",
        "gate",
        "group",
        "max_body_bytes",
        "max_concurrent",
        "metrics",
        "percent",
        "rng",
        "route",
        "target",
        "timeout",
    )

    def __init__(
        self,
        config: MirrorConfig,
        route: str,
        target: Balancer,
        *,
        gate: MirrorGate | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.route = route
        self.target = target
        self.group = config.group
        self.percent = config.percent
        self.max_concurrent = config.max_concurrent
        self.max_body_bytes = config.max_body_bytes
        self.timeout = config.timeout
        self.gate = gate if gate is not None else MirrorGate()
        self.rng = rng if rng is not None else random.Random()
        self.metrics = MirrorMetrics(route)
        # strong references: the loop keeps only weak ones to running tasks
        self._tasks: set[asyncio.Task[None]] = set()

    def view(self) -> dict[str, object]:
        """The operator's view (``/-/config``): the settings and this worker's copies under way."""
        return {
            "group": self.group,
            "percent": self.percent,
            "max_concurrent": self.max_concurrent,
            "max_body_bytes": self.max_body_bytes,
            "timeout": self.timeout,
            "in_flight": self.gate.in_flight,
        }

    def sampled(self) -> bool:
        """Whether this request is one of the ``percent`` copied."""
        percent = self.percent
        if percent >= 100.0:
            return True
        return percent > 0.0 and self.rng.random() * 100.0 < percent

    def offer(self, client: UpstreamClient, request: MirrorSource) -> None:
        """Copy ``request`` in the background if sampled and within bounds; never waits."""
        if not self.sampled():
            return
        payload: bytes | None = None
        body = request.body
        if body is not None:
            payload = body.buffered
            if payload is None:
                self.metrics.dropped["body_not_buffered"].inc()
                return
            if len(payload) > self.max_body_bytes:
                self.metrics.dropped["body_too_large"].inc()
                return
        gate = self.gate
        if gate.in_flight >= self.max_concurrent:
            self.metrics.dropped["concurrency"].inc()
            return
        gate.in_flight += 1
        self.metrics.in_flight.inc()
        # the header list is copied: the real request's may still be added to
        task = asyncio.get_running_loop().create_task(
            self._copy(
                client, request.method, request.target, list(request.headers), payload, request.host
            )
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _copy(
        self,
        client: UpstreamClient,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        payload: bytes | None,
        host: bytes | None,
    ) -> None:
        metrics = self.metrics
        try:
            backend = await self.target.pick()
            if backend is None:
                metrics.dropped["no_backend"].inc()
                return
            if not has_room(client, backend):
                metrics.dropped["upstream_busy"].inc()
                return
            metrics.requests.inc()
            timeout = self.timeout
            async with asyncio.timeout(timeout):
                response = await client.request(
                    backend.base_url,
                    method,
                    target,
                    headers,
                    _once(payload) if payload is not None else None,
                    connect_timeout=timeout,
                    read_timeout=timeout,
                    pool_timeout=_NO_WAIT,
                    tls=backend.tls,
                    host=host,
                )
                try:
                    drained = 0
                    async for chunk in response.aiter_bytes():
                        drained += len(chunk)
                        if drained > DRAIN_LIMIT:  # close it; the loop ends on _Drained
                            response.abort(_Drained())
                except _Drained:
                    pass
                finally:
                    response.release()
            metrics.answered(response.status)
        except (UpstreamError, TimeoutError) as exc:
            metrics.failed(outcome_of(exc).label)
        except Exception:  # a copy must never take anything down with it
            logger.debug("mirror copy failed", exc_info=True)
            metrics.failed("error")
        finally:
            self.gate.in_flight -= 1
            metrics.in_flight.dec()
