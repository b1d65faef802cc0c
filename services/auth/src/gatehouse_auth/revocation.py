"""Publishing revocations to every gateway through Redis.

The keys and the channel are the suite's revocation contract, read by each
gateway replica (subscribe, then a full resync, then events)::

    <prefix>{rev}:jti     sorted set, member = token id, score = its exp
    <prefix>{rev}:sub     sorted set, member = subject, score = "not before"
                          (any token of the subject with iat < score is revoked)
    <prefix>{rev}:events  channel, {"kind": "jti"|"sub", "id": ..., "exp"|"nbf": ...}

The ``{rev}`` hash tag keeps the three in one Redis Cluster slot. Each write
also drops the members whose relevance has ended (a jti past its exp, a
subject's not-before older than the longest access token lifetime, each
with a minute's grace for clock skew), so the
sets stay as small as the live revocations.

Without Redis (the embedded demo) nothing is published and the gateways
cannot learn of a revocation before the token expires; this service still
refuses revoked tokens itself (see ``Account.tokens_not_before``).
"""

from __future__ import annotations

import json
import logging
import time

import redis

logger = logging.getLogger(__name__)
# Verifiers accept a token a little past its exp (clock skew); entries outlive that.
GRACE_SECONDS = 60


class Revocations:
    """Writes revocations for the gateways; ``client`` None means there is no Redis."""

    def __init__(self, client: redis.Redis | None, *, prefix: str, max_token_ttl: int) -> None:
        self.client = client
        self.max_token_ttl = max_token_ttl
        self.jti_key = f"{prefix}{{rev}}:jti"
        self.sub_key = f"{prefix}{{rev}}:sub"
        self.channel = f"{prefix}{{rev}}:events"

    def revoke_token(self, jti: str, exp: int) -> bool:
        """Revoke one token until its ``exp``; False (logged) when Redis did not take it."""
        event = {"kind": "jti", "id": jti, "exp": exp}
        return self._publish(self.jti_key, jti, float(exp), event)

    def revoke_subject(self, sub: str) -> bool:
        """Revoke every token of ``sub`` issued before now; False when Redis did not take it."""
        now = time.time()
        event = {"kind": "sub", "id": sub, "nbf": now}
        return self._publish(self.sub_key, sub, now, event)

    def _publish(self, key: str, member: str, score: float, event: dict[str, object]) -> bool:
        if self.client is None:
            logger.info("no Redis: revocation of %s %s not published", event["kind"], member)
            return False
        horizon = time.time() - GRACE_SECONDS
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.zadd(key, {member: score})
            pipe.zremrangebyscore(self.jti_key, "-inf", f"({horizon}")
            pipe.zremrangebyscore(self.sub_key, "-inf", f"({horizon - self.max_token_ttl}")
            pipe.publish(self.channel, json.dumps(event, separators=(",", ":")))
            pipe.execute()
        except redis.RedisError as exc:
            logger.error(
                "revocation of %s %s not published (Redis: %s); gateways accept the "
                "token(s) until they expire",
                event["kind"],
                member,
                exc,
            )
            return False
        return True
