"""Why a token was refused, as one of a fixed set of reasons.

The reason becomes a metric label and a log field in the gateway, so it must
come from a bounded set whatever a client sends: :class:`TokenError` refuses
to be built with any other value::

    TokenError(reason)   raised by TokenVerifier.verify and JWKSClient.get_signing_key
"""

from __future__ import annotations

from typing import Final, Literal, get_args

TokenErrorReason = Literal[
    "missing",
    "malformed",
    "expired",
    "not_yet_valid",
    "bad_issuer",
    "bad_audience",
    "bad_signature",
    "unknown_kid",
    "disallowed_algorithm",
    "jwks_unavailable",
    "revoked",
]

TOKEN_ERROR_REASONS: Final[tuple[TokenErrorReason, ...]] = get_args(TokenErrorReason)

_DETAILS: Final[dict[str, str]] = {
    "missing": "no bearer token was sent",
    "malformed": "the token is not a well-formed JWT with the required claims",
    "expired": "the token has expired",
    "not_yet_valid": "the token is not valid yet",
    "bad_issuer": "the token was issued by someone else",
    "bad_audience": "the token is meant for another audience",
    "bad_signature": "the token's signature does not verify",
    "unknown_kid": "the token was signed with a key the issuer does not publish",
    "disallowed_algorithm": "the token's algorithm is not allowed",
    "jwks_unavailable": "the issuer's signing keys could not be fetched",
    "revoked": "the token has been revoked",
}


class TokenError(Exception):
    """A token was refused; ``reason`` is one of :data:`TOKEN_ERROR_REASONS`.

    ``detail`` is a human sentence safe to send back to the client: it never
    echoes the token or anything taken from it.
    """

    __slots__ = ("detail", "reason")

    def __init__(self, reason: TokenErrorReason, detail: str | None = None) -> None:
        if reason not in _DETAILS:
            raise ValueError(f"unknown token error reason {reason!r}")
        self.reason: TokenErrorReason = reason
        self.detail: str = detail or _DETAILS[reason]
        super().__init__(reason, self.detail)

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"
