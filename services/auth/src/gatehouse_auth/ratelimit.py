"""Sliding windows of attempts, in Redis (shared by every replica) or in this process.

Each attempt is an entry with a timestamp and a member id; an attempt is
recorded while fewer than ``limit`` entries fall inside the last ``window``
milliseconds, and a refused attempt is told how long until the oldest entry
leaves the window (``Retry-After``). Refused attempts are not recorded, so a
client that waits is let in again. An entry can be forgotten again by its
member id: a login that succeeds takes back its failure-counting entries.

With Redis the window is a sorted set per key, trimmed, counted and added to
atomically in one Lua script that reads Redis's own clock, so replicas with
skewed clocks agree. Without Redis the windows live in this process only,
which is right for the single-process demo and nothing else.

A store also keeps *registries*: small sets of entries naming windows worth
finding again (the lockouts an admin may list and lift), which expire on
their own when nothing is added to them for ``ttl_ms``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import redis
from redis.exceptions import RedisClusterException

from gatehouse_common.redis_url import connect_sync

_NOW_MS = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
"""

_HIT = (
    _NOW_MS
    + """
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {0, count + 1}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {math.max(1, tonumber(oldest[2]) + window - now_ms), count}
"""
)

_PEEK = (
    _NOW_MS
    + """
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local since = '(' .. (now_ms - window)
if redis.call('ZCOUNT', KEYS[1], since, '+inf') < limit then
  return 0
end
local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], since, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
return math.max(1, tonumber(oldest[2]) + window - now_ms)
"""
)

REDIS_TIMEOUT_SECONDS = 2.0


# What a Redis that is down, or a Cluster between masters, raises: redis-py's
# cluster client raises RedisClusterException (not a RedisError) when no node
# it knows answers.
REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, RedisClusterException)


def connect_redis(url: str) -> redis.Redis:
    """A client that gives up quickly: one retry, short timeouts.

    redis-py retries with back-off by default, which would add seconds to
    every login while Redis is down; the limiter then lets logins through,
    so failing fast is what keeps login working. ``url`` is any form of
    ``gatehouse_common.redis_url``: one server, Redis Cluster or Sentinel.
    """
    client, _errors = connect_sync(
        url,
        timeout=REDIS_TIMEOUT_SECONDS,
        retries=1,
        backoff=0.05,
        health_check_interval=30,
    )
    return client


@dataclass(frozen=True)
class Hit:
    """The outcome of one attempt at a window."""

    wait_ms: int  # 0: recorded; else milliseconds until an attempt would be
    count: int  # entries in the window afterwards

    @property
    def refused(self) -> bool:
        return self.wait_ms > 0


@dataclass(frozen=True)
class Window:
    """A window to look at: its key, its limit and its length."""

    key: str
    limit: int
    window_ms: int


class WindowStore(Protocol):
    def hit(self, key: str, limit: int, window_ms: int, member: str) -> Hit:
        """Record the attempt ``member`` if the window has room."""
        ...

    def forget(self, key: str, member: str) -> None:
        """Take an attempt back (a login that succeeded)."""
        ...

    def peek(self, windows: Sequence[Window]) -> list[int]:
        """For each window, milliseconds until it has room (0: it has room now)."""
        ...

    def delete(self, keys: Sequence[str]) -> None: ...

    def note(self, registry: str, entry: str, ttl_ms: int) -> None:
        """Add ``entry`` to ``registry``, which expires ``ttl_ms`` after the last addition."""
        ...

    def entries(self, registry: str) -> list[str]: ...

    def unnote(self, registry: str, entries: Sequence[str]) -> None: ...

    def close(self) -> None: ...


class _LocalWindow:
    __slots__ = ("entries", "window_ms")

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self.entries: deque[tuple[float, str]] = deque()

    def trim(self, now: float) -> None:
        while self.entries and self.entries[0][0] <= now - self.window_ms:
            self.entries.popleft()


class LocalWindowStore:
    """In-process windows, for one process without Redis."""

    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self._windows: dict[str, _LocalWindow] = {}
        self._registries: dict[str, tuple[float, set[str]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _now() -> float:
        return time.monotonic() * 1000

    def hit(self, key: str, limit: int, window_ms: int, member: str) -> Hit:
        now = self._now()
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = _LocalWindow(window_ms)
            window.window_ms = window_ms
            window.trim(now)
            if len(window.entries) < limit:
                window.entries.append((now, member))
                if len(self._windows) > self.MAX_KEYS:
                    self._forget_idle(now)
                return Hit(0, len(window.entries))
            wait = max(1, int(window.entries[0][0] + window_ms - now))
            return Hit(wait, len(window.entries))

    def _forget_idle(self, now: float) -> None:
        """Bound memory under a flood of distinct keys: drop windows with nothing recent."""
        idle = [
            key
            for key, window in self._windows.items()
            if not window.entries or window.entries[-1][0] <= now - window.window_ms
        ]
        for key in idle:
            del self._windows[key]

    def forget(self, key: str, member: str) -> None:
        with self._lock:
            window = self._windows.get(key)
            if window is not None:
                window.entries = deque(e for e in window.entries if e[1] != member)

    def peek(self, windows: Sequence[Window]) -> list[int]:
        now = self._now()
        waits = []
        with self._lock:
            for wanted in windows:
                stored = self._windows.get(wanted.key)
                live = (
                    [t for t, _ in stored.entries if t > now - wanted.window_ms] if stored else []
                )
                full = len(live) >= wanted.limit
                waits.append(max(1, int(live[0] + wanted.window_ms - now)) if full else 0)
        return waits

    def delete(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._windows.pop(key, None)

    def note(self, registry: str, entry: str, ttl_ms: int) -> None:
        with self._lock:
            _, entries = self._registries.get(registry, (0.0, set()))
            entries.add(entry)
            self._registries[registry] = (self._now() + ttl_ms, entries)

    def entries(self, registry: str) -> list[str]:
        with self._lock:
            expires, entries = self._registries.get(registry, (0.0, set()))
            return sorted(entries) if expires > self._now() else []

    def unnote(self, registry: str, entries: Sequence[str]) -> None:
        with self._lock:
            if registry in self._registries:
                self._registries[registry][1].difference_update(entries)

    def close(self) -> None:
        self._windows.clear()
        self._registries.clear()


class RedisWindowStore:
    """Windows in Redis, shared by every replica of the service."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._hit = client.register_script(_HIT)
        self._peek = client.register_script(_PEEK)

    def hit(self, key: str, limit: int, window_ms: int, member: str) -> Hit:
        wait_ms, count = self._hit(keys=[key], args=[window_ms, limit, member])
        return Hit(int(wait_ms), int(count))

    def forget(self, key: str, member: str) -> None:
        self._client.zrem(key, member)

    def peek(self, windows: Sequence[Window]) -> list[int]:
        if isinstance(self._client, redis.RedisCluster):
            # redis-py's Cluster pipeline refuses scripts (and the windows' keys
            # sit in different slots anyway): one call per window, a login's two
            # or three.
            return [
                int(self._peek(keys=[window.key], args=[window.window_ms, window.limit]))
                for window in windows
            ]
        pipe = self._client.pipeline(transaction=False)
        for window in windows:
            self._peek(keys=[window.key], args=[window.window_ms, window.limit], client=pipe)
        return [int(wait) for wait in pipe.execute()]

    def delete(self, keys: Sequence[str]) -> None:
        if keys:
            self._client.delete(*keys)

    def note(self, registry: str, entry: str, ttl_ms: int) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.sadd(registry, entry)
        pipe.pexpire(registry, ttl_ms)
        pipe.execute()

    def entries(self, registry: str) -> list[str]:
        members = self._client.smembers(registry)
        return sorted(m.decode("utf-8") if isinstance(m, bytes) else str(m) for m in members)

    def unnote(self, registry: str, entries: Sequence[str]) -> None:
        if entries:
            self._client.srem(registry, *entries)

    def close(self) -> None:
        """The client is the app's; it is closed in the lifespan."""
