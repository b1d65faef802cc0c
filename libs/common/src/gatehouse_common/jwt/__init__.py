"""JWT verification against an issuer's JWKS, shared by every service that checks tokens.

Typical use, in a service's lifespan::

    jwks = JWKSClient(settings.jwks_url)
    await jwks.refresh()            # warm up; False (auth still starting) is fine
    verifier = TokenVerifier(jwks, issuer="gatehouse-auth", audience="gatehouse")
    ...
    token = bearer_token(request.headers.get("authorization"))
    identity = await verifier.verify(token or "")   # TokenError(reason) when refused
    ...
    await jwks.aclose()

- :mod:`~gatehouse_common.jwt.jwks`: the cached key set (TTL, refetch on an
  unknown kid at most once per interval, last good keys kept on failure);
- :mod:`~gatehouse_common.jwt.verifier`: signature and claim checks with a
  per-token result cache;
- :mod:`~gatehouse_common.jwt.algorithms`: the asymmetric-only allow-list;
- :mod:`~gatehouse_common.jwt.errors`: :class:`TokenError` and its bounded reasons;
- :mod:`~gatehouse_common.jwt.bearer`: the ``Authorization`` header parser.
"""

from gatehouse_common.jwt.bearer import bearer_token
from gatehouse_common.jwt.errors import TOKEN_ERROR_REASONS, TokenError, TokenErrorReason
from gatehouse_common.jwt.jwks import JWKSClient, JWKSState
from gatehouse_common.jwt.verifier import TokenVerifier, VerifiedToken

__all__ = [
    "TOKEN_ERROR_REASONS",
    "JWKSClient",
    "JWKSState",
    "TokenError",
    "TokenErrorReason",
    "TokenVerifier",
    "VerifiedToken",
    "bearer_token",
]
