"""The gateway's one way to reach Redis: a client that gives up quickly.

Everything the gateway shares across replicas through Redis (the round-robin
cursor, drains, the revocation list, and whatever comes later) takes its
client from :func:`connect_redis`. Short timeouts and no retries: on a dead
Redis the cursor must switch to its local counter at once, and neither an
operator's request nor the drain sync loop may wait on redis-py's default
retries.

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

import contextlib
from typing import TYPE_CHECKING

from gatehouse_common.redis_url import RedisErrors, connect_async

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisErrors", "connect_redis", "relearn_slots"]


def connect_redis(url: str, *, timeout: float) -> tuple[Redis, RedisErrors]:
    """A client for ``url`` (one server, Cluster or Sentinel), and the exceptions
    that mean Redis is unreachable."""
    return connect_async(url, timeout=timeout, retries=0)


async def relearn_slots(client: Redis, errors: RedisErrors) -> None:
    """After a pipeline failed as unreachable: on Redis Cluster, read the slot map anew.

    redis-py re-reads it when a single command hits a dead node, but a pipeline
    (``transaction=False``) with no retries only raises: a store that talks to
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
