"""Revoking as auth does: write the shared sorted sets, then announce on the channel.

The contract between auth and every gateway (keys under ``<prefix>{rev}:``,
one event per revocation) written out in a test's own words, so gateway tests
can revoke without an auth process and a change to either side that breaks
the contract fails here.
"""

from __future__ import annotations

import json
import time

import redis


class Revoker:
    """Writes revocations under ``prefix`` with a synchronous client, as auth would."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.jti_key = f"{prefix}{{rev}}:jti"
        self.sub_key = f"{prefix}{{rev}}:sub"
        self.channel = f"{prefix}{{rev}}:events"

    def revoke_token(self, jti: str, exp: float, *, publish: bool = True) -> None:
        self.client.zadd(self.jti_key, {jti: exp})
        if publish:
            self.client.publish(self.channel, json.dumps({"kind": "jti", "id": jti, "exp": exp}))

    def revoke_subject(self, subject: str, *, publish: bool = True) -> float:
        """Every token of ``subject`` issued before now is revoked; returns "now"."""
        not_before = time.time()
        self.client.zadd(self.sub_key, {subject: not_before})
        if publish:
            event = {"kind": "sub", "id": subject, "nbf": not_before}
            self.client.publish(self.channel, json.dumps(event))
        return not_before
