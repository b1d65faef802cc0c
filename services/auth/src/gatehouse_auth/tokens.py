"""Issuing access tokens, and verifying them for the service's own endpoints.

Claims: iss, aud, sub (the account id as a string), email, roles, iat, nbf,
exp, jti (what a revocation names) and sid (the session, when the token came
from a login or a refresh), signed by the key ring's newest key with its ``kid`` in the
header. Other services verify with the published JWKS; this one verifies
against its own ring directly.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from gatehouse_auth.keys import KeyRing
from gatehouse_auth.models import Account

# Clock skew tolerated between this service and its callers' clocks.
LEEWAY_SECONDS = 30


def issued_at(moment: float) -> float:
    """``iat`` to the millisecond, rounded down (a NumericDate may have a fraction).

    Revoking a subject denies its tokens with ``iat`` before that instant
    (revocation.py); whole seconds would refuse a login made in the same
    second just after a sign-out, and rounding up could let a token made just
    before it through. Down to the millisecond is exact but for a login within
    one millisecond after a revocation, which is refused (the safe side).
    """
    return math.floor(moment * 1000) / 1000


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    jti: str
    expires_at: int


class InvalidToken(Exception):
    """A token this service did not issue, or no longer accepts."""


class TokenService:
    def __init__(self, ring: KeyRing, *, issuer: str, audience: str, ttl_seconds: int) -> None:
        self.ring = ring
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds

    def issue(self, account: Account, *, session_id: str | None = None) -> IssuedToken:
        moment = time.time()
        now = int(moment)
        key = self.ring.signing_key
        if key.private is None:  # KeyRing picks a key with a private half; never here
            raise RuntimeError(f"signing key {key.kid} has no private key")
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(account.id),
            "email": account.email,
            "roles": [account.role],
            "iat": issued_at(moment),
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        if session_id is not None:
            claims["sid"] = session_id
        token = jwt.encode(claims, key.private, algorithm=key.algorithm, headers={"kid": key.kid})
        return IssuedToken(
            token=token, expires_in=self.ttl_seconds, jti=claims["jti"], expires_at=claims["exp"]
        )

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token signed by a key of the ring; raises :class:`InvalidToken`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        kid = header.get("kid")
        key = self.ring.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("unknown signing key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public,
                # Only the key's own algorithm: a token cannot pick a weaker one.
                algorithms=[key.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "nbf", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        return claims
