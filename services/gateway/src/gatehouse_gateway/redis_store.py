"""The gateway's one way to reach Redis: a client that gives up quickly.

Everything the gateway shares across replicas through Redis (the round-robin
cursor, drains, and whatever comes later) takes its client from
:func:`connect_redis`. Short timeouts and no retries: on a dead Redis the
cursor must switch to its local counter at once, and neither an operator's
request nor the drain sync loop may wait on redis-py's default retries.

redis-py is imported only when a client is made: it costs ~19 MB of memory
per worker, which a gateway without ``REDIS_URL`` (the demo) should not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

RedisErrors = tuple[type[BaseException], ...]


def connect_redis(url: str, *, timeout: float) -> tuple[Redis, RedisErrors]:
    """A client for ``url``, and the exceptions that mean Redis is unreachable."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError

    client = Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    return client, (RedisError, OSError, TimeoutError)
