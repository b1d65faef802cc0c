"""The round-robin cursor: the store's interface, the local counter, and the choice.

Redis, shared by every replica, lives in
:mod:`gatehouse_gateway.balancing.redis_cursor` and falls back to a
:class:`LocalCursor` while Redis is unreachable; without REDIS_URL the local
cursor is the store.
"""

from __future__ import annotations

from typing import Protocol

from gatehouse_gateway.metrics import set_cursor_state


class Cursor(Protocol):
    """What balancing and the gateway's own endpoints use of a cursor store."""

    # "local", "redis", or "fallback" (Redis configured but unreachable)
    state: str
    # Why Redis last failed (None when it never has, or there is no Redis)
    last_error: str | None

    async def next(self, key: str) -> int: ...

    def snapshot(self) -> dict[str, object]:
        """The store, its state and its last error, JSON-ready."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LocalCursor:
    """An in-process counter per key: exact within one process only."""

    state = "local"
    last_error: str | None = None

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def take(self, key: str) -> int:
        value = self._counters.get(key, 0)
        self._counters[key] = value + 1
        return value

    async def next(self, key: str) -> int:
        return self.take(key)

    def snapshot(self) -> dict[str, object]:
        return {"store": "local", "state": self.state, "last_error": None}

    async def start(self) -> None:
        set_cursor_state("local")

    async def close(self) -> None:
        return None


def make_cursor(
    redis_url: str | None, store: str, *, prefix: str, timeout: float, retry_interval: float
) -> Cursor:
    """Redis when the config asks for it and REDIS_URL is set; local otherwise."""
    if store == "redis" and redis_url:
        # Imported here: redis-py costs ~19 MB of memory per worker, which a
        # gateway without REDIS_URL (the demo) should not pay.
        from gatehouse_gateway.balancing.redis_cursor import RedisCursor

        return RedisCursor(redis_url, prefix=prefix, timeout=timeout, retry_interval=retry_interval)
    return LocalCursor()
