"""Login rate limiting: a sliding window per email and per client address.

Each attempt is a timestamped entry; an attempt is allowed while fewer than
``limit`` entries fall inside the last ``window`` seconds, and a refused attempt
is told how long until the oldest entry leaves the window (``Retry-After``).
Refused attempts are not recorded, so a client that waits is let in again.

With Redis (shared by every replica) the window is a sorted set per key,
trimmed and counted atomically in one Lua script that reads Redis's own clock,
so replicas with skewed clocks agree. Without Redis the window lives in this
process only, which is right for the single-process demo and nothing else.
If Redis fails mid-flight the limiter lets the attempt through and logs it:
an outage of the limiter must not lock every user out.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import deque
from typing import Protocol

import redis
from redis.backoff import ConstantBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

_SLIDING_WINDOW = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now_ms)
"""


REDIS_TIMEOUT_SECONDS = 2.0


def connect_redis(url: str) -> redis.Redis:
    """A client that gives up quickly: one retry, short timeouts.

    redis-py retries with back-off by default, which would add seconds to
    every login while Redis is down; the limiter then lets logins through,
    so failing fast is what keeps login working.
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        retry=Retry(ConstantBackoff(0.05), 1),
        health_check_interval=30,
    )


class WindowStore(Protocol):
    def hit(self, key: str, limit: int, window_ms: int) -> int:
        """Record an attempt if allowed: 0, else milliseconds until one is allowed."""
        ...

    def close(self) -> None: ...


class LocalWindowStore:
    """In-process windows, for one process without Redis."""

    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self._windows: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int, window_ms: int) -> int:
        now = time.monotonic() * 1000
        with self._lock:
            window = self._windows.setdefault(key, deque())
            while window and window[0] <= now - window_ms:
                window.popleft()
            if len(window) < limit:
                window.append(now)
                if len(self._windows) > self.MAX_KEYS:
                    self._forget_idle(now, window_ms)
                return 0
            return max(1, int(window[0] + window_ms - now))

    def _forget_idle(self, now: float, window_ms: int) -> None:
        """Bound memory under a flood of distinct keys: drop windows with nothing recent."""
        idle = [k for k, w in self._windows.items() if not w or w[-1] <= now - window_ms]
        for key in idle:
            del self._windows[key]

    def close(self) -> None:
        self._windows.clear()


class RedisWindowStore:
    """Windows in Redis, shared by every replica of the service."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._script = client.register_script(_SLIDING_WINDOW)

    def hit(self, key: str, limit: int, window_ms: int) -> int:
        result = self._script(keys=[key], args=[window_ms, limit, uuid.uuid4().hex])
        return int(result)

    def close(self) -> None:
        """The client is the app's; it is closed in the lifespan."""


class LoginRateLimiter:
    """Checks one login attempt against the per-client and per-email windows."""

    def __init__(
        self,
        store: WindowStore,
        *,
        prefix: str,
        window_seconds: float,
        per_email: int,
        per_client: int,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.window_ms = max(1, int(window_seconds * 1000))
        self.per_email = per_email
        self.per_client = per_client

    def _key(self, kind: str, value: str) -> str:
        # Hashed: keys then hold no email address and no attacker-chosen bytes.
        digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]
        return f"{self.prefix}login:{kind}:{digest}"

    def check(self, *, email: str, client: str) -> float:
        """0 when the attempt may proceed, else seconds to wait."""
        for kind, value, limit in (
            ("client", client, self.per_client),
            ("email", email, self.per_email),
        ):
            if limit <= 0:
                continue
            try:
                wait_ms = self.store.hit(self._key(kind, value), limit, self.window_ms)
            except redis.RedisError as exc:
                logger.warning("rate limit store unavailable, attempt allowed: %s", exc)
                return 0.0
            if wait_ms:
                return wait_ms / 1000
        return 0.0
