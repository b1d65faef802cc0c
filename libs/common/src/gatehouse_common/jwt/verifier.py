"""Verifying bearer tokens locally against the issuer's JWKS, with a per-token cache.

The gateway calls :meth:`TokenVerifier.verify` on every request, so a token
seen before costs one dictionary lookup and one comparison with its expiry;
signature checks happen once per token. Refusals that cannot change (a bad
signature, a wrong audience, garbage) are remembered briefly too, so a client
repeating a bad token does not buy a signature check each time.

Time claims (``exp``, ``nbf``, ``iat``) are checked here rather than by pyjwt
so that the one ``clock`` decides both the check and the cache expiry.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import jwt

from gatehouse_common.jwt.algorithms import allowed_algorithms, key_fits
from gatehouse_common.jwt.errors import TokenError, TokenErrorReason
from gatehouse_common.jwt.jwks import JWKSClient

# Far above any token the auth service issues; caps the work (and cache
# memory) a hostile client can ask for.
MAX_TOKEN_LENGTH: Final = 8192

# Refusals that the same token will get again, whatever happens to the keys.
_STABLE_REASONS: Final[frozenset[str]] = frozenset(
    {"malformed", "expired", "bad_issuer", "bad_audience", "bad_signature", "disallowed_algorithm"}
)

# pyjwt's exceptions by what they mean for the client, most specific first.
_PYJWT_REASONS: Final[tuple[tuple[type[Exception], TokenErrorReason], ...]] = (
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.InvalidAlgorithmError, "disallowed_algorithm"),
    (jwt.InvalidIssuerError, "bad_issuer"),
    (jwt.InvalidAudienceError, "bad_audience"),
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
)

_DECODE_OPTIONS: Final[jwt.types.Options] = {
    "require": ["exp", "iss", "aud", "sub"],
    # checked in _check_times against the verifier's clock
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
}


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """Who a verified token speaks for. ``claims`` is read-only."""

    subject: str
    email: str | None
    roles: tuple[str, ...]
    # exp, in epoch seconds
    expires_at: float
    claims: Mapping[str, Any] = field(compare=False, hash=False, repr=False)
    # jti and iat, for revocation checks (a token id or a subject's "not before")
    token_id: str | None = None
    issued_at: float | None = None


class TokenVerifier:
    """Checks tokens from one issuer for one audience. One per process, made in lifespan.

    ``algorithms`` is an allow-list: ``none`` and HMAC algorithms are removed
    from it whatever the configuration says (see
    :mod:`gatehouse_common.jwt.algorithms`). ``leeway`` is the clock skew
    allowed on ``exp``, ``nbf`` and ``iat``. ``cache_size`` bounds the
    verified-token cache (0 turns it off); refused tokens are remembered for
    ``negative_ttl`` seconds in a cache a tenth that size.
    """

    def __init__(
        self,
        jwks: JWKSClient,
        *,
        issuer: str,
        audience: str,
        algorithms: Sequence[str] = ("EdDSA", "RS256", "ES256"),
        leeway: float = 30.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
        negative_ttl: float = 10.0,
    ) -> None:
        if leeway < 0 or cache_size < 0 or negative_ttl < 0:
            raise ValueError("leeway, cache_size and negative_ttl must not be negative")
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.algorithms = allowed_algorithms(algorithms)
        self.leeway = leeway
        self._clock = clock
        self._cache_size = cache_size
        self._negative_size = cache_size // 10
        self._negative_ttl = negative_ttl
        # token -> (accept until, result, kid); insertion order is eviction order
        self._cache: OrderedDict[str, tuple[float, VerifiedToken, str | None]] = OrderedDict()
        # token -> (refuse until, reason)
        self._refused: OrderedDict[str, tuple[float, TokenErrorReason]] = OrderedDict()
        self._decoder = jwt.PyJWT(_DECODE_OPTIONS)
        jwks.on_keys_removed(self._forget_kids)

    async def verify(self, token: str) -> VerifiedToken:
        """The verified identity in ``token``; raises :class:`TokenError` otherwise."""
        hit = self._cache.get(token)
        if hit is not None:
            if self._clock() < hit[0]:
                return hit[1]
            del self._cache[token]
        refused = self._refused.get(token)
        if refused is not None:
            if self._clock() < refused[0]:
                raise TokenError(refused[1])
            del self._refused[token]
        try:
            verified, kid = await self._verify_uncached(token)
        except TokenError as exc:
            if exc.reason in _STABLE_REASONS and len(token) <= MAX_TOKEN_LENGTH:
                self._remember_refusal(token, exc.reason)
            raise
        if self._cache_size:
            if len(self._cache) >= self._cache_size:
                self._cache.popitem(last=False)
            self._cache[token] = (verified.expires_at + self.leeway, verified, kid)
        return verified

    def _forget_kids(self, kids: frozenset[str]) -> None:
        """Drop the results of tokens signed with keys the issuer no longer publishes."""
        self._cache = OrderedDict(
            (token, entry) for token, entry in self._cache.items() if entry[2] not in kids
        )

    async def _verify_uncached(self, token: str) -> tuple[VerifiedToken, str | None]:
        if not token:
            raise TokenError("missing")
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("malformed", f"the token is over {MAX_TOKEN_LENGTH} characters")
        header = _unverified_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise TokenError("disallowed_algorithm")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenError("malformed", "the kid header is not a string")
        key = await self.jwks.get_signing_key(kid)
        # pyjwt also insists on this; checked here as well so the allow-list
        # does not depend on a library version (HS256 with a public key as
        # the secret must never verify).
        if alg != key.algorithm_name or not key_fits(alg, key.key_type):
            raise TokenError("disallowed_algorithm")
        claims = self._decode(token, key, alg)
        expires_at = self._check_times(claims)
        return _identity(claims, expires_at), key.key_id

    def _decode(self, token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
        try:
            return self._decoder.decode(
                token, key, algorithms=[alg], issuer=self.issuer, audience=self.audience
            )
        except jwt.PyJWTError as exc:
            for exc_type, reason in _PYJWT_REASONS:
                if isinstance(exc, exc_type):
                    raise TokenError(reason) from None
            raise TokenError("malformed") from None
        except (ValueError, TypeError):  # odd claim types pyjwt does not anticipate
            raise TokenError("malformed") from None

    def _check_times(self, claims: Mapping[str, Any]) -> float:
        now = self._clock()
        exp = _timestamp(claims, "exp")
        if exp is None:
            raise TokenError("malformed", "the token has no valid exp claim")
        if exp + self.leeway <= now:
            raise TokenError("expired")
        for name in ("nbf", "iat"):
            value = _timestamp(claims, name)
            if value is not None and value - self.leeway > now:
                raise TokenError("not_yet_valid")
        return exp

    def _remember_refusal(self, token: str, reason: TokenErrorReason) -> None:
        if not self._negative_size or not self._negative_ttl:
            return
        if len(self._refused) >= self._negative_size:
            self._refused.popitem(last=False)
        self._refused[token] = (self._clock() + self._negative_ttl, reason)


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, read only to pick the key and check the algorithm.

    Read here rather than with ``jwt.get_unverified_header``, which decodes
    and checks the whole token and would double pyjwt's work on every miss;
    ``jwt.decode`` afterwards reads the header again, strictly, and insists on
    the same algorithm, so leniency here cannot let anything through.
    """
    segment, dot, _ = token.partition(".")
    if not dot:
        raise TokenError("malformed")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise TokenError("malformed") from None
    if not isinstance(header, dict):
        raise TokenError("malformed")
    return header


def _timestamp(claims: Mapping[str, Any], name: str) -> float | None:
    """A NumericDate claim as a float; None when absent; malformed when not a number."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenError("malformed", f"the {name} claim is not a number")
    return float(value)


def _identity(claims: dict[str, Any], expires_at: float) -> VerifiedToken:
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise TokenError("malformed", "the sub claim is not a non-empty string")
    email = claims.get("email")
    if email is not None and not isinstance(email, str):
        raise TokenError("malformed", "the email claim is not a string")
    token_id = claims.get("jti")
    if token_id is not None and not isinstance(token_id, str):
        raise TokenError("malformed", "the jti claim is not a string")
    roles = claims.get("roles", ())
    if isinstance(roles, str):
        roles = (roles,)
    if not isinstance(roles, list | tuple) or not all(isinstance(r, str) for r in roles):
        raise TokenError("malformed", "the roles claim is not a list of strings")
    return VerifiedToken(
        subject=subject,
        email=email,
        roles=tuple(roles),
        expires_at=expires_at,
        claims=MappingProxyType(claims),
        token_id=token_id,
        issued_at=_timestamp(claims, "iat"),
    )
