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

from typing import TYPE_CHECKING

from gatehouse_common.redis_url import RedisErrors, connect_async

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisErrors", "connect_redis"]


def connect_redis(url: str, *, timeout: float) -> tuple[Redis, RedisErrors]:
    """A client for ``url`` (one server, Cluster or Sentinel), and the exceptions
    that mean Redis is unreachable."""
    return connect_async(url, timeout=timeout, retries=0)
