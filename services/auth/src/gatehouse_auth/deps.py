"""Request dependencies as ``Annotated`` aliases; the long-lived objects come from app.state.

Everything here is built once in the lifespan (see :mod:`gatehouse_auth.app`)
and reached through ``request.app.state.auth``, so tests and workers each get
the objects of their own app and there are no module globals.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Annotated, Any

import redis
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session

from gatehouse_auth import crud, sessions
from gatehouse_auth.errors import DATABASE_ERRORS, Forbidden, NotAuthenticated
from gatehouse_auth.keys import KeyRing
from gatehouse_auth.limits import LoginRateLimiter, SignupRateLimiter
from gatehouse_auth.models import Account, Role
from gatehouse_auth.passwords import PasswordHasher
from gatehouse_auth.revocation import Revocations
from gatehouse_auth.sealing import Sealer
from gatehouse_auth.settings import AuthSettings
from gatehouse_auth.tokens import InvalidToken, TokenService

logger = logging.getLogger(__name__)


@dataclass
class AuthState:
    """What the lifespan builds and closes."""

    settings: AuthSettings
    engine: Engine
    hasher: PasswordHasher
    ring: KeyRing
    tokens: TokenService
    limiter: LoginRateLimiter
    signups: SignupRateLimiter
    redis: redis.Redis | None
    revocations: Revocations
    sealer: Sealer


def get_state(request: Request) -> AuthState:
    state: AuthState = request.app.state.auth
    return state


StateDep = Annotated[AuthState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    session = Session(state.engine)
    try:
        yield session
    finally:
        try:
            session.close()
        except DATABASE_ERRORS as exc:
            # The database went away after the answer was sent (closing rolls
            # back); the connection is already invalidated, so nothing is lost,
            # and raising now could only break a response that has started.
            logger.warning("database lost while closing a session: %s", type(exc).__name__)


SessionDep = Annotated[Session, Depends(get_session)]


def get_revocations(state: StateDep) -> Revocations:
    return state.revocations


RevocationsDep = Annotated[Revocations, Depends(get_revocations)]

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /login")


MAX_CLIENT_KEY_CHARS = 64


def _canonical(value: str) -> str:
    """One spelling per address (``::FFFF:0:1`` and ``::ffff:0:1`` are one client)."""
    try:
        return ip_address(value).compressed
    except ValueError:
        return value[:MAX_CLIENT_KEY_CHARS]


def resolve_client(
    peer: str, forwarded_for: str | Sequence[str], trusted: Sequence[IPv4Network | IPv6Network]
) -> str:
    """The client's address: X-Forwarded-For is believed only from a trusted proxy.

    The peer is the client unless it is one of ``trusted``; then hops are read
    from the nearest, and the first that is not itself trusted is the client,
    so a client cannot pick its own rate-limit key by sending a made-up
    X-Forwarded-For (its hops lie to the left of the real one). When every hop
    is trusted the leftmost is the furthest known, so it is the client.
    ``forwarded_for`` may be every X-Forwarded-For line of the request: a proxy
    that adds its own line rather than extending the client's must not let
    the client's line win.
    """

    def is_trusted(value: str) -> bool:
        try:
            address = ip_address(value)
        except ValueError:
            return False
        return any(address in network for network in trusted)

    if not is_trusted(peer):
        return _canonical(peer)
    lines = [forwarded_for] if isinstance(forwarded_for, str) else list(forwarded_for)
    hops = [hop.strip() for line in lines for hop in line.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return _canonical(hop)
    return _canonical(hops[0]) if hops else _canonical(peer)


def client_address(request: Request, state: StateDep) -> str:
    """The address per-client limits count against (see :func:`resolve_client`)."""
    peer = request.client.host if request.client else ""
    forwarded = request.headers.getlist("x-forwarded-for")
    return resolve_client(peer, forwarded, state.settings.trusted_proxies)


ClientAddress = Annotated[str, Depends(client_address)]


def bearer_claims(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> dict[str, Any]:
    """The verified claims of the request's bearer token (401 without a good one)."""
    if credentials is None:
        raise NotAuthenticated()
    try:
        return state.tokens.verify(credentials.credentials)
    except InvalidToken:
        raise NotAuthenticated("the bearer token is invalid or expired") from None


BearerClaims = Annotated[dict[str, Any], Depends(bearer_claims)]


def current_account(session: SessionDep, claims: BearerClaims) -> Account:
    try:
        account_id = int(claims["sub"])
        issued_at = float(claims["iat"])
    except (ValueError, TypeError):
        raise NotAuthenticated("the bearer token is invalid or expired") from None
    account = crud.get_account(session=session, account_id=account_id)
    if account is None:
        raise NotAuthenticated("the token's account no longer exists")
    sid = claims.get("sid")
    # A logged-out session's tokens stop here at once (gateways learn it by push).
    if isinstance(sid, str) and not sessions.session_is_live(session=session, session_id=sid):
        raise NotAuthenticated("the bearer token's session has ended")
    if account.disabled:
        raise NotAuthenticated("the bearer token is invalid or expired")
    # The rule the gateways apply from the revocation list (iat < the subject's
    # not-before), kept in the database so it holds here without Redis too.
    if account.tokens_not_before is not None and issued_at < account.tokens_not_before:
        raise NotAuthenticated("the bearer token has been revoked")
    return account


CurrentAccount = Annotated[Account, Depends(current_account)]


def admin_account(account: CurrentAccount, state: StateDep) -> Account:
    """The role is read from the database, so a demoted admin's live token stops working.

    With ``require_admin_totp`` an admin without a confirmed TOTP is refused here
    (403 ``totp_enrolment_required``) and nowhere else: it can still log in, see
    itself and enrol (``/me``, ``/account/*``), which are not admin endpoints.
    """
    if account.role != Role.admin.value:
        raise Forbidden()
    if state.settings.require_admin_totp and not account.totp_enabled:
        raise Forbidden(
            "admins must enrol a TOTP second factor first (POST /account/totp)",
            code="totp_enrolment_required",
        )
    return account


AdminAccount = Annotated[Account, Depends(admin_account)]
