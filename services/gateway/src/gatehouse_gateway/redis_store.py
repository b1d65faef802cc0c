"""The gateway's one way to reach Redis: a client that gives up quickly.

Everything the gateway shares across replicas through Redis (the round-robin
cursor, drains, the revocation list, and whatever comes later) takes its
client from :func:`connect_redis` (:func:`connect_optional` when Redis may be
unset), and keeps in step in the background with one
:class:`~gatehouse_common.redis_loop.RedisLoop` (its wait, failure count,
Cluster slot relearning and stop); :class:`RedisJob` is the two together,
the base of the jobs that share state when ``REDIS_URL`` is set.

Short timeouts and no retries: on a dead Redis the cursor must switch to its
local counter at once, and neither an operator's request nor the drain sync
loop may wait on redis-py's default retries.

``REDIS_URL`` may name one server (``redis://``, ``rediss://``, ``unix://``),
a Redis Cluster (``redis+cluster://h1:p1,h2:p2/``) or the master a Redis
Sentinel group watches (``redis+sentinel://h1:p1,h2:p2/<master>/<db>``);
``gatehouse_common.redis_url`` parses them, for auth too. On Cluster every
operation that touches several keys keeps them in one slot with a hash tag
(README, "Redis keys").

redis-py is imported only when a client is made: it costs ~19 MB of memory
per worker, which a gateway without ``REDIS_URL`` (the demo) should not pay.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, ClassVar

from gatehouse_common.error_shape import describe_error
from gatehouse_common.redis_loop import STOP, RedisLoop, relearn_slots
from gatehouse_common.redis_url import RedisErrors, connect_async

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "STOP",
    "RedisErrors",
    "RedisJob",
    "RedisLoop",
    "connect_optional",
    "connect_redis",
    "relearn_slots",
]

# What a job without Redis catches: it never talks to Redis, so nothing is raised.
NO_REDIS_ERRORS: RedisErrors = (OSError, TimeoutError)


def connect_redis(url: str, *, timeout: float) -> tuple[Redis, RedisErrors]:
    """A client for ``url`` (one server, Cluster or Sentinel), and the exceptions
    that mean Redis is unreachable."""
    return connect_async(url, timeout=timeout, retries=0)


def connect_optional(url: str | None, *, timeout: float) -> tuple[Redis | None, RedisErrors]:
    """:func:`connect_redis` when ``REDIS_URL`` is set; no client otherwise (the
    job is then this process's alone)."""
    if not url:
        return None, NO_REDIS_ERRORS
    return connect_redis(url, timeout=timeout)


class RedisJob:
    """The base of a background job that shares its state through Redis when
    ``REDIS_URL`` is set: its client (None without Redis) and the loop that
    runs its :meth:`_round` every ``interval`` seconds.

    :meth:`_unreachable` is told when a round finds Redis unreachable and
    :meth:`_answered` when one got through: ``state`` goes to
    ``"unreachable"`` and back to ``"redis"`` (``"local"`` without Redis),
    logged once each way in the job's words (:attr:`down_log`,
    :attr:`up_log`), and the job's gauge follows (:meth:`_report`).

    The loop's options are :class:`~gatehouse_common.redis_loop.RedisLoop`'s.
    A job starts its loop itself (``self._loop.start()``, or ``begin()`` to
    run a round first), as it needs; :meth:`close` ends the loop and closes
    the client.
    """

    # Logged once when Redis stops answering ("%s": why) and once when it answers again.
    down_log: ClassVar[str] = "%s"
    up_log: ClassVar[str] = ""

    def __init__(
        self,
        name: str,
        redis_url: str | None,
        *,
        timeout: float,
        interval: float,
        wait_first: bool = True,
        any_error_fails: bool = False,
    ) -> None:
        self._client, self._errors = connect_optional(redis_url, timeout=timeout)
        self._loop = RedisLoop(
            name,
            self._round,
            interval=interval,
            errors=self._errors,
            on_failure=self._unreachable,
            client=self._client,
            wait_first=wait_first,
            any_error_fails=any_error_fails,
        )
        self.state = "redis" if self._client is not None else "local"
        self.last_error: str | None = None
        self.last_sync: float | None = None  # when Redis last answered a round

    @property
    def shared(self) -> bool:
        """True when Redis shares this job's state with the other replicas."""
        return self._client is not None

    async def close(self) -> None:
        await self._loop.close()

    async def _round(self) -> object:
        """The job's one step; a Redis error it raises is the loop's failure."""
        raise NotImplementedError

    def _unreachable(self, exc: BaseException) -> None:
        """A round (or a write of the job's own) found Redis unreachable."""
        self.last_error = describe_error(exc)
        self._report(up=False)
        if self.state != "unreachable":
            logging.getLogger(type(self).__module__).warning(self.down_log, self.last_error)
        self.state = "unreachable"

    def _answered(self) -> None:
        """Redis answered a round: the job is in step again."""
        self.last_sync = time.time()
        if self.state != "redis":
            logging.getLogger(type(self).__module__).warning(self.up_log)
        self.state = "redis"
        self._report(up=True)

    def _report(self, up: bool) -> None:
        """The job's own gauge of whether Redis answers, if it has one."""
