"""An operator's changes, applied here at once and written to Redis when it answers.

Drains (:mod:`gatehouse_gateway.operator.drain`) and canary weights
(:mod:`gatehouse_gateway.canary.weights`) both let an operator change one
replica and share the change through Redis; both must keep a change made
while Redis is unreachable until it can be written, and both must not let a
read of Redis that began before a change (their sync loop) undo it.
:class:`PendingChanges` keeps those changes for either: keyed by whatever
names one (a route; a route and backend), each with its record (a JSON-able
dict, or None for "the key goes").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from gatehouse_gateway.redis_store import RedisErrors

K = TypeVar("K")
Record = dict[str, Any] | None  # None: the change removes what Redis holds

_GONE = object()


class PendingChanges(Generic[K]):
    """Changes made here that Redis has not stored yet, and when each was made.

    ``write`` stores one change (raising one of ``errors`` when Redis is
    unreachable, which goes to ``failed``: the job's loop).
    """

    def __init__(
        self,
        write: Callable[[K, Record], Awaitable[object]],
        *,
        errors: RedisErrors,
        failed: Callable[[BaseException], Awaitable[None]],
    ) -> None:
        self._write = write
        self._errors = errors
        self._failed = failed
        self._unsent: dict[K, Record] = {}
        # Bumped by every change here: a read that was under way meanwhile may
        # predate the change and must not undo it.
        self._generation = 0
        self._changed: dict[K, int] = {}
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        """How many changes wait for Redis."""
        return len(self._unsent)

    async def share(self, key: K, record: Record) -> bool:
        """Note a change made here and write what waits; True when Redis took it all."""
        self._generation += 1
        self._changed[key] = self._generation
        self._unsent[key] = record
        return await self.flush()

    async def flush(self) -> bool:
        """Write pending changes; True when Redis took them all.

        One flush at a time (an operator's call and the sync loop may both
        flush); a change made while its predecessor was being written stays
        pending and is written next.
        """
        async with self._lock:
            try:
                for key, record in list(self._unsent.items()):
                    await self._write(key, record)
                    if self._unsent.get(key, _GONE) is record:
                        del self._unsent[key]
            except self._errors as exc:
                await self._failed(exc)
                return False
        return not self._unsent

    def mark(self) -> int:
        """Taken before a read of Redis, for :meth:`newer`."""
        return self._generation

    def newer(self, key: K, mark: int) -> bool:
        """True when what Redis returned for ``key`` must not overwrite it here: it
        changed after the read began (``mark``), or is not written yet."""
        return key in self._unsent or self._changed.get(key, 0) > mark


def explain(shared: bool, stored: bool) -> str:
    """The operator API's word on where a change applies."""
    if not shared:
        return "no Redis (REDIS_URL unset): applies to this gateway process only"
    if stored:
        return "stored in Redis: every replica applies it within about a second"
    return "applied here; Redis is unreachable, so it is shared once Redis answers"
