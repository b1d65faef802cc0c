"""FastAPI dependencies of the operator routers: the running gateway and an admin token.

The admin API trusts the same issuer as the proxied routes: the token is
verified with the gateway's own :class:`~gatehouse_common.jwt.TokenVerifier`
(the config's ``auth`` section), must not be revoked, and must carry the
``admin`` role. The role claim alone would outlive a demotion for the token's
whole lifetime, so the current role counts: auth revokes the subject when it
changes an account's role or disables it, and the revocation list (pushed
through Redis) refuses every token issued before that within a second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, Request

from gatehouse_common.errors import ServiceError
from gatehouse_common.jwt import TokenError, VerifiedToken, bearer_token
from gatehouse_gateway.operator.service import Operator
from gatehouse_gateway.runtime import Gateway

ADMIN_ROLE = "admin"
GatewayGetter = Callable[[], Gateway | None]


def get_gateway(request: Request) -> Gateway:
    getter: GatewayGetter = request.app.state.operator_gateway
    gateway = getter()
    if gateway is None:
        raise ServiceError(503, "starting", "the gateway has not started yet")
    return gateway


RunningGateway = Annotated[Gateway, Depends(get_gateway)]


def get_operator(gateway: RunningGateway) -> Operator:
    return gateway.operator


RunningOperator = Annotated[Operator, Depends(get_operator)]


def _refuse(detail: str, error: str | None = None, reason: str | None = None) -> ServiceError:
    challenge = 'Bearer realm="gatehouse-admin"'
    if error:
        challenge += f', error="{error}"'
    return ServiceError(
        401,
        "unauthorized",
        detail,
        headers={"WWW-Authenticate": challenge},
        extra={"reason": reason} if reason else None,
    )


@dataclass(frozen=True, slots=True)
class Admin:
    """The verified admin, and the token they sent (to act as them: the audit record)."""

    verified: VerifiedToken
    token: str = field(repr=False)

    @property
    def name(self) -> str:
        """Who acted, for logs and drain records: the e-mail, else the subject."""
        return self.verified.email or f"sub:{self.verified.subject}"


async def require_admin(
    gateway: RunningGateway, authorization: Annotated[str | None, Header()] = None
) -> Admin:
    """The verified caller, who has the admin role; 401/403/503 JSON otherwise."""
    authenticator = gateway.authenticator
    if authenticator is None:
        raise ServiceError(
            503,
            "admin_unavailable",
            "the admin API needs auth.jwks_url in the gateway config to verify tokens",
        )
    token = bearer_token(authorization)
    if not token:
        raise _refuse("an admin bearer token is required")
    try:
        verified = await authenticator.verify(authorization)
    except TokenError as exc:
        raise _refuse(exc.detail, "invalid_token", exc.reason) from None
    if ADMIN_ROLE not in verified.roles:
        raise ServiceError(403, "forbidden", "the admin role is required")
    return Admin(verified, token)


AdminToken = Annotated[Admin, Depends(require_admin)]
