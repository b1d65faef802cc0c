"""JWT checks on routes with ``auth: required``, on top of gatehouse_common.jwt.

Tokens come as ``Authorization: Bearer <jwt>`` or, as the original app took
them, a bare token. Verification is local against the auth service's JWKS
(cached, refetched on an unknown kid at most once per interval, last good keys
kept while auth is down) and its result is cached per token until expiry, so
a repeated token costs a dictionary lookup.
"""

from __future__ import annotations

import json

from gatehouse_common.jwt import JWKSClient, TokenError, TokenVerifier, bearer_token
from gatehouse_gateway.config.schema import AuthConfig
from gatehouse_gateway.metrics import AUTH_FAILURES

CHALLENGE = b'Bearer realm="gatehouse"'


class Authenticator:
    """Owns the JWKS client and verifier; one per config (rebuilt when ``auth`` changes)."""

    def __init__(self, config: AuthConfig) -> None:
        if not config.jwks_url:
            raise ValueError("auth.jwks_url is not set")
        self.config = config
        self.jwks = JWKSClient(
            config.jwks_url,
            ttl=config.jwks_ttl,
            min_refetch_interval=config.jwks_min_refresh_interval,
        )
        self.verifier = TokenVerifier(
            self.jwks,
            issuer=config.issuer,
            audience=config.audience,
            algorithms=config.algorithms,
            leeway=config.leeway,
        )

    async def identity_headers(self, authorization: bytes | None) -> list[tuple[bytes, bytes]]:
        """Headers naming the verified caller; raises :class:`TokenError` when refused.

        Values are UTF-8 bytes as they go on the wire; one with a line break (a
        signed claim, but still) is refused rather than split into two headers.
        """
        token = bearer_token(authorization)
        if not token:
            raise TokenError("missing")
        verified = await self.verifier.verify(token)
        headers = [
            (b"x-auth-subject", verified.subject.encode()),
            (b"x-auth-roles", ",".join(verified.roles).encode()),
        ]
        if verified.email:
            headers.append((b"x-auth-email", verified.email.encode()))
        for _, value in headers:
            if b"\r" in value or b"\n" in value:
                raise TokenError("malformed", "a claim holds a line break")
        return headers

    def refusal(self, error: TokenError) -> bytes:
        """Count the refusal and return its JSON body (never echoing the token)."""
        AUTH_FAILURES.labels(reason=error.reason).inc()
        return json.dumps(
            {"error": "unauthorized", "detail": error.detail, "reason": error.reason}
        ).encode()

    async def aclose(self) -> None:
        await self.jwks.aclose()
