"""Canary weights changed at run time: applied here at once, shared through Redis.

An operator's weights for a route override the config file's until they are
reset. With ``REDIS_URL`` set they live in one Redis hash,
``<prefix>canary:weights`` (field: the route's name; value: JSON
``{"weights": {group: weight}, "by": who, "at": unix time}``), which every
replica reads with one ``HGETALL`` each ``canary_sync_interval`` (0.5 s by
default): a change made through any replica reaches all of them within about
that long. Polling rather than pub/sub, because the gateway's Redis user may
not publish (its ACL), and one small read per half second costs nothing.

The overrides are kept by this object, which lives as long as the gateway
process, and applied to every route table a reload builds before it serves,
so a reload never sends even one request by the file's weights while an
override stands. Without Redis they are this process's own (each worker's,
with several) and still survive reloads.

A value in Redis that is not a valid override (not JSON, negative or
all-zero weights, a name that is not a group) is ignored: the route keeps
the file's weights and the admin state says why. While Redis is
unreachable a change still applies here at once and is written when Redis
answers; until then what Redis holds does not overwrite it.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gatehouse_gateway.canary.metrics import WEIGHT_CHANGES, WEIGHT_STORE_UP
from gatehouse_gateway.config.groups import GROUP_NAME_PATTERN, check_weights
from gatehouse_gateway.redis_store import RedisJob
from gatehouse_gateway.shared_changes import PendingChanges, explain

if TYPE_CHECKING:
    from gatehouse_gateway.routing import Route

logger = logging.getLogger(__name__)

_GROUP_NAME = re.compile(GROUP_NAME_PATTERN)
# A stored override bigger than this is not read (a group name is <= 63
# characters and a route has <= 16 groups).
_MAX_RECORD_BYTES = 4096


class BadOverride(ValueError):
    """A stored override that cannot be used; the message says why."""


def parse_record(raw: bytes | str) -> dict[str, Any]:
    """A stored override, checked as strictly as the operator API checks one."""
    if len(raw) > _MAX_RECORD_BYTES:
        raise BadOverride(f"over {_MAX_RECORD_BYTES} bytes")
    try:
        value = json.loads(raw)
    except ValueError:
        raise BadOverride("not JSON") from None
    if not isinstance(value, dict) or not isinstance(value.get("weights"), dict):
        raise BadOverride("not an object with weights")
    weights: dict[str, Any] = value["weights"]
    for name in weights:
        if not isinstance(name, str) or not _GROUP_NAME.match(name):
            raise BadOverride(f"{str(name)[:70]!r} is not a group name")
    try:
        check_weights(weights)
    except ValueError as exc:
        raise BadOverride(str(exc)) from None
    by = value.get("by")
    at = value.get("at")
    return {
        "weights": dict(weights),
        "by": by if isinstance(by, str) else "unknown",
        "at": at if isinstance(at, int | float) and not isinstance(at, bool) else None,
    }


class CanaryWeights(RedisJob):
    """The runtime weight overrides of every route, kept in step across replicas."""

    down_log = (
        "canary weight sync cannot reach Redis (%s): changes apply here only until it answers"
    )
    up_log = "canary weights reach Redis again: shared by every replica"

    def __init__(
        self,
        routes: Callable[[], list[Route]],
        *,
        redis_url: str | None,
        prefix: str,
        timeout: float,
        interval: float,
    ) -> None:
        self._routes = routes
        self.key = f"{prefix}canary:weights"
        super().__init__("canary", redis_url, timeout=timeout, interval=interval)
        # route -> {"weights", "by", "at"}: what overrides the file's weights
        self.overrides: dict[str, dict[str, Any]] = {}
        # route -> why the value Redis holds for it is not used
        self.invalid: dict[str, str] = {}
        # route -> why the override does not fit the route's groups now
        self.unusable: dict[str, str] = {}
        # route -> its override made here, until Redis stores it
        self._pending = PendingChanges[str](
            self._write, errors=self._errors, failed=self._loop.failed
        )
        WEIGHT_STORE_UP.set(0)

    async def start(self) -> None:
        """Read the shared overrides before the first request, then keep them in step."""
        await self._loop.begin(repeat=self._client is not None)

    def apply(self, routes: list[Route]) -> None:
        """Give every split in ``routes`` its override, or the file's weights."""
        for route in routes:
            split = route.split
            if split is None:
                continue
            record = self.overrides.get(route.name)
            if split.set_weights(record["weights"] if record is not None else None):
                self.unusable.pop(route.name, None)
            else:
                self.unusable[route.name] = "it gives every group of the route weight 0"

    async def set_weights(
        self, route: Route, weights: dict[str, int] | None, *, actor: str
    ) -> dict[str, Any]:
        """Override ``route``'s weights here at once (None: back to the file's), then share."""
        record = {"weights": dict(weights), "by": actor, "at": time.time()} if weights else None
        previous = dict(route.split.weights) if route.split is not None else {}
        if record is None:
            self.overrides.pop(route.name, None)
        else:
            self.overrides[route.name] = record
        self.invalid.pop(route.name, None)
        self.apply([route])
        WEIGHT_CHANGES.labels(source="operator").inc()
        logger.warning(
            "canary weights of route %s %s by %s (operator)",
            route.name,
            f"set to {weights}" if weights else "reset to the config's",
            actor,
            extra={"route": route.name, "weights": weights},
        )
        stored = self.shared and await self._pending.share(route.name, record)
        return {
            **(self.view(route) or {}),
            "previous_weights": previous,
            "shared": self.shared,
            "stored_in_redis": stored,
            "detail": explain(self.shared, stored),
        }

    async def _write(self, name: str, record: dict[str, Any] | None) -> None:
        if self._client is None:
            return
        if record is None:
            await self._client.hdel(self.key, name)
        else:
            await self._client.hset(self.key, name, json.dumps(record))

    async def sync(self) -> None:
        """Make this replica's overrides what Redis holds (every ``canary_sync_interval``)."""
        await self._loop.once()

    async def _round(self) -> None:
        if self._client is None:
            self.apply(self._routes())
            return
        if not await self._pending.flush():
            return
        mark = self._pending.mark()
        stored = await self._client.hgetall(self.key)  # unreachable: the loop's failure
        self._answered()
        read: dict[str, dict[str, Any]] = {}
        invalid: dict[str, str] = {}
        for raw_name, raw in stored.items():
            name = raw_name.decode("utf-8", "replace") if isinstance(raw_name, bytes) else raw_name
            try:
                read[name] = parse_record(raw)
            except BadOverride as exc:
                invalid[name] = str(exc)
        changed = False
        for name in set(read) | set(self.overrides):
            if self._pending.newer(name, mark):
                continue
            new = read.get(name)
            if new != self.overrides.get(name):
                changed = True
                if new is None:
                    self.overrides.pop(name, None)
                else:
                    self.overrides[name] = new
                WEIGHT_CHANGES.labels(source="replica").inc()
                logger.warning(
                    "canary weights of route %s %s by another replica",
                    name,
                    f"set to {new['weights']}" if new else "reset to the config's",
                    extra={"route": name},
                )
        for name, why in invalid.items():
            if self.invalid.get(name) != why:
                logger.warning("canary weights of route %s in Redis ignored: %s", name, why)
        self.invalid = invalid
        if changed or invalid:
            self.apply(self._routes())

    def _report(self, up: bool) -> None:
        WEIGHT_STORE_UP.set(1 if up else 0)

    def view(self, route: Route) -> dict[str, Any] | None:
        """The route's split as the admin state and the dashboard show it (None: no groups)."""
        split = route.split
        if split is None:
            return None
        record = self.overrides.get(route.name)
        return {
            "route": route.name,
            "weights": dict(split.weights),
            "file_weights": dict(split.file_weights),
            "override": record,
            "override_unusable": self.unusable.get(route.name),
            "redis_value_ignored": self.invalid.get(route.name),
            "sticky": split.sticky.model_dump() if split.sticky is not None else None,
            "rules": [r.model_dump(exclude_none=True) for r in split.config.rules]
            if split.config is not None
            else [],
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "store": "redis" if self._client is not None else "local",
            "key": self.key if self._client is not None else None,
            "state": self.state,
            "shared": self.shared,
            "last_sync": self.last_sync,
            "last_error": self.last_error,
            "unsent_changes": len(self._pending),
            "overrides": len(self.overrides),
        }
