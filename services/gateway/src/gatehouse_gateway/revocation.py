"""The revocation denylist: tokens and subjects auth has taken back, known from memory.

Auth writes revocations to Redis and announces each one (the shared contract,
default prefix ``gatehouse:revocation:``; ``{rev}`` is a hash tag so every key
lives in one Redis Cluster slot):

- ``<prefix>{rev}:jti``: sorted set, member = a token id, score = its ``exp``;
- ``<prefix>{rev}:sub``: sorted set, member = a subject, score = its
  "not before": every token of that subject issued (``iat``) before it is
  revoked (sign out everywhere, a disabled account, a changed role);
- ``<prefix>{rev}:events``: channel, ``{"kind": "jti", "id", "exp"}`` or
  ``{"kind": "sub", "id", "nbf"}`` per revocation.

:class:`RevocationList` subscribes to the channel, and on every (re)connect
reads both sets whole after subscribing, so nothing published meanwhile is
missed. The proxy asks :meth:`RevocationList.is_revoked` on every
authenticated request; it answers from two dictionaries, never from Redis.

Entries only ever end by expiry (a revocation is never lifted), so a resync
merges what Redis holds into what this replica knows rather than replacing
it: a Redis restarted empty does not make a gateway forget a revocation. When
Redis is unreachable the list stays as it was, ``gatehouse_revocation_store_up``
is 0, and the loop retries every ``revocation_retry_interval``; revocations
made meanwhile are picked up by the resync on reconnect. Without Redis at all
(``REDIS_URL`` unset) nothing can tell the gateway about a revocation: tokens
stay valid until they expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

from gatehouse_gateway.metrics import (
    REVOCATION_ENTRIES,
    REVOCATION_EVENTS,
    REVOCATION_REFUSALS,
    REVOCATION_RESYNCS,
    REVOCATION_STORE_UP,
)
from gatehouse_gateway.redis_store import RedisJob

logger = logging.getLogger(__name__)

RevokedBy = Literal["token", "subject"]


class RevocationKeys:
    """The contract's key and channel names under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.jti = f"{prefix}{{rev}}:jti"
        self.sub = f"{prefix}{{rev}}:sub"
        self.events = f"{prefix}{{rev}}:events"


class RevocationList(RedisJob):
    """Revoked token ids and subjects, kept in step with Redis by one background task.

    ``retention`` is how long past a token's expiry its entry is kept (above
    any verifier leeway), ``max_token_lifetime`` how long a subject's
    "not before" matters (no token issued before it can live longer). Both
    only bound memory; auth prunes Redis itself. ``clock`` is wall-clock
    seconds (tokens carry wall-clock times) and exists for tests.
    """

    down_log = (
        "revocation list cannot reach Redis (%s): keeping the last list, "
        "revocations made meanwhile apply once it answers"
    )

    def __init__(
        self,
        *,
        redis_url: str | None,
        prefix: str,
        timeout: float,
        retry_interval: float,
        retention: float = 300.0,
        max_token_lifetime: float = 86_400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = RevocationKeys(prefix)
        self._retry_interval = retry_interval
        self._retention = retention
        self._max_token_lifetime = max_token_lifetime
        self._clock = clock
        # token id -> exp; subject -> not before (epoch seconds)
        self._tokens: dict[str, float] = {}
        self._subjects: dict[str, float] = {}
        # One session a round: it ends when the connection fails, and the next
        # one starts ``retry_interval`` later.
        super().__init__(
            "revocations",
            redis_url,
            timeout=timeout,
            interval=retry_interval,
            wait_first=False,
            any_error_fails=True,
        )
        # "off" (no Redis), "connecting", "up" or "unreachable"
        self.state = "connecting" if self._client is not None else "off"
        self.last_resync: float | None = None
        self._synced = asyncio.Event()
        REVOCATION_STORE_UP.set(0)
        self._count()

    # The hot path ---------------------------------------------------------

    def revoked_by(
        self, jti: str | None, subject: str, issued_at: float | None
    ) -> RevokedBy | None:
        """Why a verified token is revoked (its id, or its subject), or None when it is not.

        A token without ``iat`` cannot show it was issued after its subject's
        "not before", so a revoked subject refuses it.
        """
        if jti is not None and jti in self._tokens:
            return "token"
        not_before = self._subjects.get(subject)
        if not_before is not None and (issued_at is None or issued_at < not_before):
            return "subject"
        return None

    def is_revoked(self, jti: str | None, subject: str, issued_at: float | None) -> bool:
        """True when the token is on the list; counts the refusal by what revoked it."""
        reason = self.revoked_by(jti, subject, issued_at)
        if reason is None:
            return False
        REVOCATION_REFUSALS.labels(reason=reason).inc()
        return True

    # Changes --------------------------------------------------------------

    def add_token(self, jti: str, exp: float) -> None:
        if exp > self._tokens.get(jti, -math.inf):
            self._tokens[jti] = exp

    def add_subject(self, subject: str, not_before: float) -> None:
        if not_before > self._subjects.get(subject, -math.inf):
            self._subjects[subject] = not_before

    def apply_event(self, raw: bytes | str) -> bool:
        """Apply one published event; False (logged) when it is not one."""
        try:
            event = json.loads(raw)
            kind, ident = event["kind"], event["id"]
            if not isinstance(ident, str) or not ident:
                raise ValueError("id is not a non-empty string")
            if kind == "jti":
                self.add_token(ident, _seconds(event["exp"]))
            elif kind == "sub":
                self.add_subject(ident, _seconds(event["nbf"]))
            else:
                raise ValueError(f"unknown kind {kind!r}")
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("ignoring a revocation event that is not one: %s", exc)
            return False
        REVOCATION_EVENTS.labels(kind=kind).inc()
        self._count()
        return True

    def merge(
        self,
        tokens: Iterable[tuple[bytes | str, float]],
        subjects: Iterable[tuple[bytes | str, float]],
    ) -> None:
        """Add what a full read of Redis returned (members with their scores)."""
        for member, score in tokens:
            self.add_token(_text(member), float(score))
        for member, score in subjects:
            self.add_subject(_text(member), float(score))
        self.prune()

    def prune(self) -> None:
        """Forget entries no token they could refuse outlives."""
        now = self._clock()
        token_horizon = now - self._retention
        subject_horizon = now - self._max_token_lifetime - self._retention
        self._tokens = {k: v for k, v in self._tokens.items() if v >= token_horizon}
        self._subjects = {k: v for k, v in self._subjects.items() if v >= subject_horizon}
        self._count()

    def _count(self) -> None:
        REVOCATION_ENTRIES.labels(kind="jti").set(len(self._tokens))
        REVOCATION_ENTRIES.labels(kind="sub").set(len(self._subjects))

    # Keeping in step with Redis ------------------------------------------

    async def start(self) -> None:
        """Start the subscriber; waits (briefly) for the first resync so a fresh replica
        does not accept a token every other replica refuses."""
        if self._client is None:
            return
        self._loop.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._synced.wait(), timeout=self._retry_interval * 2)

    async def _round(self) -> None:
        """Subscribe, read everything, then apply events until the connection fails."""
        if self._client is None:
            return
        # Reach the node of the {rev} slot first, with a command routed there: a
        # Cluster client learns (after a failover: relearns) which node serves a
        # slot only from a command that failed or succeeded there, and its
        # pub/sub subscribes on the node serving the channel's (same) slot.
        await self._alive()
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(self.keys.events)
            # The confirmation: from here on no event is missed, so the read may start.
            while await pubsub.get_message(timeout=self._retry_interval) is None:
                await self._alive()
            await self.resync()
            checked = time.monotonic()
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=self._retry_interval
                )
                if message is not None and message.get("type") == "message":
                    self.apply_event(message["data"])
                if time.monotonic() - checked >= self._retry_interval:
                    # A frozen Redis keeps the socket open and says nothing: ask.
                    await self._alive()
                    self.prune()
                    checked = time.monotonic()
        finally:
            with contextlib.suppress(*self._errors):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated

    async def _alive(self) -> None:
        """Raises when the node holding the denylist does not answer.

        A key read rather than ``PING``: on Redis Cluster a ``PING`` goes to any
        node, while this goes to the node serving ``{rev}`` (the one the
        subscription is on), and one that fails makes the client relearn the
        cluster's layout. (ZCARD, not EXISTS: redis-py's Cluster client splits
        EXISTS into a pipeline, which does not relearn it.)
        """
        if self._client is not None:
            await self._client.zcard(self.keys.jti)

    async def resync(self) -> None:
        """Merge both sets as Redis holds them now (on every connect)."""
        if self._client is None:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zrange(self.keys.jti, 0, -1, withscores=True)
            pipe.zrange(self.keys.sub, 0, -1, withscores=True)
            tokens, subjects = await pipe.execute()
        self.merge(tokens, subjects)
        REVOCATION_RESYNCS.inc()
        self.last_resync = self._clock()
        if self.state != "up":
            logger.warning(
                "revocation list in step with Redis: %d token(s), %d subject(s)",
                len(self._tokens),
                len(self._subjects),
            )
        self.state = "up"
        self.last_error = None
        REVOCATION_STORE_UP.set(1)
        self._synced.set()

    def _report(self, up: bool) -> None:
        REVOCATION_STORE_UP.set(1 if up else 0)

    def snapshot(self) -> dict[str, Any]:
        return {
            "store": "redis" if self._client is not None else "off",
            "state": self.state,
            "tokens": len(self._tokens),
            "subjects": len(self._subjects),
            "last_resync": self.last_resync,
            "last_error": self.last_error,
        }


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError("a time is not a number")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise ValueError("a time is not finite")
    return seconds


def _text(member: bytes | str) -> str:
    return member.decode() if isinstance(member, bytes) else member
