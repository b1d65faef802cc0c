"""OpenID Connect discovery: where the keys and endpoints are, for other verifiers.

Gatehouse issues access tokens, not ID tokens, but libraries that consume
JWTs (PyJWT's PyJWKClient, authlib, other gateways) find the JWKS through
this document. URLs are built on ``public_url`` (the gateway's address in a
deployment, since clients reach auth through it), or on the request's own.
``issuer`` is the ``iss`` claim as configured; strict OIDC clients also want
it to equal the URL the document is served under, which setting
``GATEHOUSE_AUTH_ISSUER`` to the public URL gives (the gateways' auth.issuer
must then say the same).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gatehouse_auth.deps import StateDep
from gatehouse_auth.schemas import OpenIDConfiguration

router = APIRouter(tags=["keys"])
_CACHE_CONTROL = "public, max-age=300"
CLAIMS = ["iss", "aud", "sub", "email", "roles", "iat", "nbf", "exp", "jti", "sid"]


@router.get(
    "/.well-known/openid-configuration",
    summary="OpenID Connect discovery metadata",
    response_model_exclude_none=True,
)
def openid_configuration(
    request: Request, state: StateDep, response: Response
) -> OpenIDConfiguration:
    settings = state.settings
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    response.headers["Cache-Control"] = _CACHE_CONTROL
    algorithms = sorted({key.algorithm for key in state.ring.published()})
    return OpenIDConfiguration(
        issuer=settings.issuer,
        jwks_uri=f"{base}/.well-known/jwks.json",
        # Login takes an email and password as JSON (not the form grant of RFC 6749).
        token_endpoint=f"{base}/login",
        refresh_endpoint=f"{base}/token/refresh",
        revocation_endpoint=f"{base}/logout",
        end_session_endpoint=f"{base}/logout",
        response_types_supported=["token"],
        subject_types_supported=["public"],
        grant_types_supported=["password", "refresh_token"],
        id_token_signing_alg_values_supported=algorithms,
        token_endpoint_auth_methods_supported=["none"],
        claims_supported=CLAIMS,
    )
