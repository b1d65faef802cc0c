"""Publishing revocations to the gateways: Redis sorted sets plus a pub/sub channel.

The contract shared with the gateway (which keeps the list in memory):

* ``<prefix>{rev}:jti``: member = a token id, score = its ``exp`` (unix s);
* ``<prefix>{rev}:sub``: member = a subject, score = "not before" (unix s,
  float): any token of that subject issued earlier (``iat`` < score) is revoked;
* ``<prefix>{rev}:events``: one JSON message per revocation,
  ``{"kind": "jti", "id", "exp"}`` or ``{"kind": "sub", "id", "nbf"}``.

The ``{rev}`` hash tag keeps the three in one Redis Cluster slot. On Cluster a
classic ``PUBLISH`` reaches subscribers on every node, so a gateway may
subscribe wherever its client lands. Every write
also prunes what no longer matters: token ids past their expiry, and subject
entries older than the longest access token lifetime (every token they could
refuse has expired by then).

The database is the record (a revoked session stays revoked whatever Redis
does); Redis is the message. When Redis cannot be written the revocation is
logged, counted and kept in memory, and retried by :meth:`Revocations.retry`
(the app calls it every ``revocation_retry_seconds``) until it goes through:
gateways meanwhile accept the token until it expires or the retry succeeds.
The queue lives in this process, so if it exits first the window is the
token's remaining lifetime (``token_ttl_seconds`` at most).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

import redis

from gatehouse_auth.metrics import (
    REVOCATION_PUBLISH_FAILURES,
    REVOCATIONS_PENDING,
    REVOCATIONS_PUBLISHED,
)
from gatehouse_auth.ratelimit import REDIS_ERRORS

logger = logging.getLogger(__name__)

# Revocations waiting for Redis beyond this are dropped oldest first (logged):
# memory stays bounded through a long outage, and every dropped one has a
# token that expires within token_ttl_seconds anyway.
MAX_PENDING = 100_000


@dataclass(frozen=True)
class Revocation:
    """One entry of the contract: a token id with its expiry, or a subject with its not-before."""

    kind: Literal["jti", "sub"]
    id: str
    score: float

    def event(self) -> str:
        field = "exp" if self.kind == "jti" else "nbf"
        # exp is whole seconds as in the token; nbf keeps its fraction
        score: float | int = int(self.score) if self.score.is_integer() else self.score
        return json.dumps({"kind": self.kind, "id": self.id, field: score})


def revocation_keys(prefix: str) -> tuple[str, str, str]:
    """The token-id set, the subject set and the channel under ``prefix``."""
    base = f"{prefix}{{rev}}:"
    return base + "jti", base + "sub", base + "events"


class Revocations:
    """Writes revocations for every gateway replica to read; retries what Redis refused.

    ``client`` None (no ``REDIS_URL``: the single-process demo) records
    nothing outside the database, and says so once.
    """

    def __init__(
        self, client: redis.Redis | None, *, prefix: str, max_token_lifetime: float
    ) -> None:
        self.client = client
        self.jti_key, self.sub_key, self.channel = revocation_keys(prefix)
        self.max_token_lifetime = max_token_lifetime
        self._pending: deque[Revocation] = deque(maxlen=MAX_PENDING)
        self._lock = threading.Lock()
        self._warned = False

    def revoke_token(self, jti: str, exp: float) -> bool:
        """Deny the token ``jti`` until ``exp``; False when it is queued for a retry."""
        return self._publish(Revocation("jti", jti, float(exp)))

    def revoke_subject(self, sub: str, *, now: float | None = None) -> bool:
        """Deny every token of ``sub`` issued before now; False when queued for a retry."""
        return self._publish(Revocation("sub", sub, time.time() if now is None else now))

    @property
    def pending(self) -> int:
        return len(self._pending)

    def retry(self) -> int:
        """Write what an outage held back; the number still waiting afterwards."""
        if self.client is None:
            return 0
        with self._lock:
            while self._pending:
                if not self._write(self.client, self._pending[0]):
                    break
                self._pending.popleft()
            REVOCATIONS_PENDING.set(len(self._pending))
            return len(self._pending)

    def _publish(self, revocation: Revocation) -> bool:
        if self.client is None:
            if not self._warned:
                logger.warning(
                    "no REDIS_URL: revocations are not published; gateways accept a "
                    "revoked access token until it expires"
                )
                self._warned = True
            return False
        with self._lock:
            # Order kept: nothing overtakes what is already waiting.
            if not self._pending and self._write(self.client, revocation):
                return True
            if len(self._pending) == self._pending.maxlen:
                logger.error("revocation queue full; dropping the oldest")
            self._pending.append(revocation)
            REVOCATIONS_PENDING.set(len(self._pending))
            return False

    def _write(self, client: redis.Redis, revocation: Revocation) -> bool:
        now = time.time()
        key = self.jti_key if revocation.kind == "jti" else self.sub_key
        # Subjects matter while a token issued before their not-before can live.
        horizon = now if revocation.kind == "jti" else now - self.max_token_lifetime
        try:
            # The set first, then the announcement: a Redis Cluster client cannot
            # pipeline PUBLISH (a channel has no slot). A publish that fails after
            # the write fails the whole revocation, so the retry writes it again
            # (a no-op) and announces it; a gateway reading the set meanwhile
            # only learns it sooner.
            with client.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {revocation.id: revocation.score})
                pipe.zremrangebyscore(key, "-inf", f"({horizon}")
                pipe.execute()
            client.publish(self.channel, revocation.event())
        except REDIS_ERRORS as exc:
            REVOCATION_PUBLISH_FAILURES.labels(kind=revocation.kind).inc()
            logger.warning(
                "cannot publish a %s revocation (kept for a retry): %s", revocation.kind, exc
            )
            return False
        REVOCATIONS_PUBLISHED.labels(kind=revocation.kind).inc()
        return True
