"""JWT checks on routes with ``auth: required``, on top of gatehouse_common.jwt.

Tokens come as ``Authorization: Bearer <jwt>`` or, as the original app took
them, a bare token. Verification is local against the auth service's JWKS
(cached, refetched on an unknown kid at most once per interval, last good keys
kept while auth is down) and its result is cached per token until expiry, so
a repeated token costs a dictionary lookup. A verified token is then looked
up in the revocation list (:mod:`gatehouse_gateway.revocation`), from memory
too, since a cached verification says nothing about a logout since.
"""

from __future__ import annotations

from gatehouse_common.error_shape import error_body
from gatehouse_common.jwt import (
    TOKEN_ERROR_REASONS,
    JWKSClient,
    TokenError,
    TokenErrorReason,
    TokenVerifier,
    VerifiedToken,
    bearer_token,
)
from gatehouse_common.jwt.jwks import Fetch
from gatehouse_gateway.config.schema import AuthConfig
from gatehouse_gateway.metrics import AUTH_FAILURES
from gatehouse_gateway.revocation import RevocationList

_CR, _LF = ord("\r"), ord("\n")
CHALLENGE = b'Bearer realm="gatehouse"'
# RFC 6750 section 3.1: a token that was sent and refused is an "invalid_token";
# no token, or keys the gateway cannot fetch, are not the token's fault.
_CHALLENGES: dict[str, bytes] = {
    reason: CHALLENGE
    if reason in ("missing", "jwks_unavailable")
    else CHALLENGE + b', error="invalid_token"'
    for reason in TOKEN_ERROR_REASONS
}


def challenge(reason: TokenErrorReason) -> bytes:
    """The ``WWW-Authenticate`` value of a 401 refusing a token for ``reason``."""
    return _CHALLENGES[reason]


class Authenticator:
    """Owns the JWKS client and verifier; one per config (rebuilt when ``auth`` changes)."""

    def __init__(
        self, config: AuthConfig, revocations: RevocationList, fetch: Fetch | None = None
    ) -> None:
        if not config.jwks_url:
            raise ValueError("auth.jwks_url is not set")
        self.config = config
        self.revocations = revocations
        self.jwks = JWKSClient(
            config.jwks_url,
            ttl=config.jwks_ttl,
            min_refetch_interval=config.jwks_min_refresh_interval,
            fetch=fetch,
        )
        self.verifier = TokenVerifier(
            self.jwks,
            issuer=config.issuer,
            audience=config.audience,
            algorithms=config.algorithms,
            leeway=config.leeway,
        )

    async def identity_headers(self, authorization: bytes | None) -> list[tuple[bytes, bytes]]:
        """Headers naming the verified caller; raises :class:`TokenError` when refused."""
        return (await self.identify(authorization))[1]

    async def identify(
        self, authorization: bytes | None
    ) -> tuple[VerifiedToken, list[tuple[bytes, bytes]]]:
        """The verified token and the headers naming its caller; else :class:`TokenError`.

        The token itself goes to the per-consumer policies (rate limits,
        quotas, sticky canaries, header rules), the headers to the backend.
        Values are UTF-8 bytes as they go on the wire; one with a line break (a
        signed claim, but still) is refused rather than split into two headers.
        """
        verified = await self.verify(authorization)
        headers = [
            (b"x-auth-subject", verified.subject.encode()),
            (b"x-auth-roles", ",".join(verified.roles).encode()),
        ]
        if verified.email:
            headers.append((b"x-auth-email", verified.email.encode()))
        for _, value in headers:
            # int needles: a bytes one costs CPython 3.11 a TypeError made and
            # dropped (bytes.__contains__ tries an int first), ~2,000 instructions each
            if _CR in value or _LF in value:
                raise TokenError("malformed", "a claim holds a line break")
        return verified, headers

    async def verify(self, authorization: bytes | str | None) -> VerifiedToken:
        """The verified, unrevoked token of an ``Authorization`` value; else :class:`TokenError`."""
        token = bearer_token(authorization)
        if not token:
            raise TokenError("missing")
        verified = await self.verifier.verify(token)
        if self.revocations.is_revoked(verified.token_id, verified.subject, verified.issued_at):
            raise TokenError("revoked")
        return verified

    def refusal(self, error: TokenError) -> bytes:
        """Count the refusal and return its JSON body (never echoing the token)."""
        AUTH_FAILURES.labels(reason=error.reason).inc()
        return error_body("unauthorized", error.detail, reason=error.reason)

    async def aclose(self) -> None:
        await self.jwks.aclose()
