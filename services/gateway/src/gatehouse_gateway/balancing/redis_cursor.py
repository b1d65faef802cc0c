"""The round-robin cursor: Redis shared by every replica, a local counter as fallback.

Redis: one ``INCRBY key n`` per route for all the picks that arrived while the
previous round trip was under way (at least one event-loop tick's worth),
handing the n consecutive values to the waiting picks in order; since every
value is handed out exactly once, requests from all replicas interleave in
exact round-robin order. With one round trip in flight at a time, the batch
grows with the load, so Redis costs a roughly constant number of round trips
per second instead of one per request (loadtest/README.md has the figures).

When Redis fails (refused, reset, or slower than the socket timeout) the
cursor switches to its local counter at once, so no request fails or waits
on a dead Redis, counts each local pick in ``gateway_cursor_fallbacks_total``,
logs the change once, and probes Redis in the background until it answers,
then switches back (logging that too). The probe reads the key whose
``INCRBY`` failed: on Redis Cluster other nodes answer while that key's slot
has no master (its master died and no replica took over yet), and a ``PING``
there would switch back too soon, to fail again.
"""

from __future__ import annotations

import asyncio
import logging

from gatehouse_common.error_shape import describe_error
from gatehouse_gateway.balancing.cursor import LocalCursor
from gatehouse_gateway.metrics import CURSOR_FALLBACKS, set_cursor_state
from gatehouse_gateway.redis_store import STOP, RedisLoop, connect_redis

logger = logging.getLogger(__name__)


class RedisCursor:
    """``INCRBY`` in Redis, coalesced per loop tick, with a local fallback."""

    def __init__(
        self, url: str, *, prefix: str, timeout: float = 0.25, retry_interval: float = 1.0
    ) -> None:
        # No retries: a failure switches to the local cursor at once.
        self._client, self._errors = connect_redis(url, timeout=timeout)
        self._prefix = f"{prefix}cursor:"
        self._local = LocalCursor()
        self._pending: dict[str, list[asyncio.Future[int]]] = {}
        self._flush_scheduled = False
        self._flushing = False
        # Runs only while the cursor is on its fallback: asks Redis until it answers.
        self._probe = RedisLoop(
            "cursor-probe",
            self._probe_round,
            interval=retry_interval,
            errors=self._errors,
            on_failure=self._fall_back,
            client=self._client,
        )
        # The key whose INCRBY failed: the probe asks for it, so on Redis Cluster
        # "back" means its slot has a master again, not that some node answers.
        self._probe_key: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.state = "redis"
        self.last_error: str | None = None

    async def start(self) -> None:
        try:
            await self._client.ping()
        except self._errors as exc:
            self._fall_back(exc)
        else:
            set_cursor_state("redis")

    async def close(self) -> None:
        await self._probe.stop()
        for task in list(self._tasks):
            task.cancel()
        await self._probe.close()

    async def next(self, key: str) -> int:
        if self.state != "redis":
            CURSOR_FALLBACKS.inc()
            return self._local.take(key)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        waiters = self._pending.get(key)
        if waiters is None:
            self._pending[key] = [future]
        else:
            waiters.append(future)
        if not self._flush_scheduled and not self._flushing:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._start_flush)
        return await future

    def _start_flush(self) -> None:
        self._flush_scheduled = False
        if self._flushing or not self._pending:
            return
        pending, self._pending = self._pending, {}
        self._flushing = True
        task = asyncio.get_running_loop().create_task(self._flush(pending))
        self._tasks.add(task)
        task.add_done_callback(self._flush_done)

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._flushing = False
        if self._pending and not task.cancelled():
            self._start_flush()  # the picks that arrived meanwhile, in one go

    async def _incrby(self, pending: dict[str, list[asyncio.Future[int]]]) -> list[int]:
        """The counters' new values, one per key, in ``pending``'s order."""
        if len(pending) == 1:  # the usual case: no pipeline object to build
            ((key, waiters),) = pending.items()
            return [int(await self._client.incrby(self._prefix + key, len(waiters)))]
        async with self._client.pipeline(transaction=False) as pipe:
            for key, waiters in pending.items():
                pipe.incrby(self._prefix + key, len(waiters))
            return [int(end) for end in await pipe.execute()]

    async def _flush(self, pending: dict[str, list[asyncio.Future[int]]]) -> None:
        try:
            results = await self._incrby(pending)
        except self._errors as exc:
            self._probe_key = self._prefix + next(iter(pending))
            self._fall_back(exc)
            for key, waiters in pending.items():
                for waiter in waiters:
                    if not waiter.done():
                        CURSOR_FALLBACKS.inc()
                        waiter.set_result(self._local.take(key))
            return
        except BaseException as exc:  # cancelled: no pick may hang
            for waiters in pending.values():
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(RuntimeError(f"cursor flush aborted: {exc!r}"))
            raise
        for (_key, waiters), end in zip(pending.items(), results, strict=True):
            value = end - len(waiters)
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(value)
                value += 1

    def _fall_back(self, exc: BaseException) -> None:
        self.last_error = describe_error(exc)
        if self.state == "fallback":
            return
        self.state = "fallback"
        set_cursor_state("fallback")
        logger.warning(
            "Redis unreachable (%s): round robin uses the local cursor until it is back",
            self.last_error,
        )
        self._probe.start()

    async def _probe_round(self) -> str:
        """One probe (the loop's failure while Redis does not answer); STOP once it does."""
        if self._probe_key is None:
            await self._client.ping()
        else:  # routed to the key's slot, like the INCRBY that failed
            # (GET, not EXISTS: redis-py's Cluster client splits EXISTS
            # into a pipeline, which does not relearn the layout when
            # it fails, so it would fail on after a failover.)
            await self._client.get(self._probe_key)
        self.state = "redis"
        set_cursor_state("redis")
        logger.warning("Redis is back: round robin uses the shared cursor again")
        return STOP

    def snapshot(self) -> dict[str, object]:
        return {"store": "redis", "state": self.state, "last_error": self.last_error}
