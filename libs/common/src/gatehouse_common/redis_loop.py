"""The one background loop of every periodic Redis job: the wait, the failures, the stop.

The gateway keeps several things in step with Redis off the request path
(canary weights, drains, quota counts, the rate limits' replica count, the
round-robin cursor's probe, the revocation list) and auth writes again the
revocations Redis refused. Each used to write the same loop by hand;
:class:`RedisLoop` is that loop, and each job keeps only its one step:

- a round every ``interval`` seconds, which is also the backoff after a
  failure: a dead Redis is asked again one interval later, never in a tight
  loop;
- a round that finds Redis unreachable (the step raises one of ``errors``, or
  catches it to tidy up and hands it to :meth:`RedisLoop.failed`) is counted
  in ``gatehouse_redis_loop_failures_total{loop}``, told to the job
  (``on_failure``: its state, its log line, its gauge) and, on Redis Cluster,
  makes the client read the slot map anew (:func:`relearn_slots`);
- any other exception is logged and the loop goes on: a job that stopped
  would leave its replica out of step for good;
- a step that returns :data:`STOP` ends the loop (a probe whose Redis
  answered again); :meth:`RedisLoop.stop` ends it at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from prometheus_client import Counter

from gatehouse_common.redis_url import RedisErrors

logger = logging.getLogger(__name__)

LOOP_FAILURES = Counter(
    "gatehouse_redis_loop_failures_total",
    "Rounds of a background Redis job that found Redis unreachable.",
    ["loop"],
)

STOP: Final = "stop"
Step = Callable[[], Awaitable[object]]


async def relearn_slots(client: Any, errors: RedisErrors) -> None:
    """After a round failed as unreachable: on Redis Cluster, read the slot map anew.

    redis-py re-reads it when a single command hits a dead node, but a pipeline
    (``transaction=False``) with no retries only raises: a job that talks to
    Redis through pipelines alone would keep sending a failed master's slots to
    it long after a replica took over. Nothing on one server or Sentinel (they
    reconnect by themselves); a cluster that does not answer either is asked
    again after the next failure.
    """
    nodes = getattr(client, "nodes_manager", None)
    if nodes is None:
        return
    with contextlib.suppress(*errors):
        await nodes.initialize()


class RedisLoop:
    """Runs ``step`` every ``interval`` seconds in one task, from :meth:`start` to :meth:`stop`.

    ``wait_first`` False runs the first round at once (a subscriber that
    should connect as soon as it starts). ``client`` is the job's asyncio
    client, whose Cluster slot map a failure refreshes; None for a job that
    keeps no asyncio client (or none at all). ``any_error_fails`` also tells
    ``on_failure`` of an unexpected exception (logged either way): for a job
    whose state must not say "in step" after a round that broke off.
    :meth:`close` closes ``client`` too, so the loop lives exactly as long as it.
    """

    def __init__(
        self,
        name: str,
        step: Step,
        *,
        interval: float,
        errors: RedisErrors = (),
        on_failure: Callable[[BaseException], None] | None = None,
        client: Any = None,
        wait_first: bool = True,
        any_error_fails: bool = False,
    ) -> None:
        self.name = name
        self.interval = interval
        self._step = step
        self._errors = errors
        self._on_failure = on_failure
        self._client = client
        self._wait_first = wait_first
        self._any_error_fails = any_error_fails
        self._failures = LOOP_FAILURES.labels(loop=name)
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the loop (again, if it ended); nothing when it runs already."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self.run(), name=self.name)

    async def begin(self, *, repeat: bool = True) -> None:
        """One round now, so the job is in step before the first request; then,
        if ``repeat`` (a job with Redis to keep in step with), the loop."""
        await self.once()
        if repeat:
            self.start()

    async def stop(self) -> None:
        """End the loop and wait until it has (shutdown)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """:meth:`stop`, then close the job's client (the job's shutdown)."""
        await self.stop()
        if self._client is not None:
            await self._client.aclose()

    async def once(self) -> object:
        """One round, failures handled as in the loop: what the step returned, or None."""
        try:
            return await self._step()
        except self._errors as exc:
            await self.failed(exc)
        except Exception as exc:  # the loop must outlive any one bad round
            logger.exception("%s: background round failed", self.name)
            if self._any_error_fails and self._on_failure is not None:
                self._on_failure(exc)
        return None

    async def failed(self, exc: BaseException) -> None:
        """Redis was unreachable this round: count it, tell the job, relearn a cluster."""
        self._failures.inc()
        if self._on_failure is not None:
            self._on_failure(exc)
        if self._client is not None:
            await relearn_slots(self._client, self._errors)

    async def run(self) -> None:
        """The loop itself, for a caller that keeps its tasks (:meth:`start` otherwise)."""
        delay = self.interval if self._wait_first else 0.0
        while True:
            await asyncio.sleep(delay)
            delay = self.interval
            if await self.once() == STOP:
                return
