"""Refreshing a session's tokens and ending a session (logout).

Every refusal is the same 401 ``invalid_refresh_token``, whatever the cause
(unknown, used, expired, revoked, account disabled): the cause is logged and
counted, never told to the caller.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gatehouse_auth import sessions
from gatehouse_auth.deps import ClientAddress, RevocationsDep, SessionDep, StateDep
from gatehouse_auth.errors import InvalidRefreshToken, NotAuthenticated
from gatehouse_auth.metrics import REFRESHES, SESSIONS_ENDED
from gatehouse_auth.models import utcnow
from gatehouse_auth.revocation import Revocations
from gatehouse_auth.schemas import LogoutRequest, RefreshRequest, TokenResponse, error_responses
from gatehouse_auth.session_models import LoginSession
from gatehouse_auth.tokens import InvalidToken

logger = logging.getLogger(__name__)
router = APIRouter(tags=["sessions"])
_bearer = HTTPBearer(auto_error=False, description="The access token to revoke")


def publish(revocations: Revocations, revoked: sessions.Revoked) -> None:
    """Tell the gateways (after the commit: the database is the record)."""
    # A bearer token is also among its session's live tokens: once is enough.
    for jti, exp in dict(revoked.tokens).items():
        revocations.revoke_token(jti, exp)


def token_response(issued: sessions.SessionTokens) -> TokenResponse:
    return TokenResponse(
        access_token=issued.access.token,
        expires_in=issued.access.expires_in,
        token=issued.access.token,
        refresh_token=issued.refresh_token,
        refresh_expires_in=issued.refresh_expires_in,
    )


@router.post(
    "/token/refresh",
    summary="Trade a refresh token for a new access token and refresh token",
    responses=error_responses(
        400,
        401,
        413,
        422,
        503,
        s401="The refresh token is unknown, used, expired or revoked. Presenting a used "
        "one ends its whole session (reuse detection)",
    ),
)
def refresh(
    body: RefreshRequest,
    session: SessionDep,
    state: StateDep,
    revocations: RevocationsDep,
    client: ClientAddress,
) -> TokenResponse:
    try:
        issued = sessions.refresh(
            session=session,
            refresh_token=body.refresh_token,
            tokens=state.tokens,
            settings=state.settings,
            client=client,
        )
    except sessions.RefreshRefused as refused:
        REFRESHES.labels(result=refused.reason).inc()
        if refused.reason == "reused":
            logger.warning(
                "a used refresh token was presented again: its session is ended "
                "and %d access token(s) revoked",
                len(refused.revoked.tokens),
            )
            publish(revocations, refused.revoked)
        raise InvalidRefreshToken() from None
    REFRESHES.labels(result="success").inc()
    return token_response(issued)


def _bearer_session(
    session: SessionDep, state: StateDep, token: str
) -> tuple[sessions.Revoked, LoginSession | None, int | None]:
    """The bearer token to revoke (jti, exp), the session it names and its account id."""
    try:
        claims = state.tokens.verify(token)
    except InvalidToken:
        raise NotAuthenticated("the bearer token is invalid or expired") from None
    revoked = sessions.Revoked()
    jti, exp, sid, sub = claims.get("jti"), claims.get("exp"), claims.get("sid"), claims.get("sub")
    if isinstance(jti, str) and isinstance(exp, int):
        revoked.tokens.append((jti, exp))
    login_session = session.get(LoginSession, sid) if isinstance(sid, str) else None
    account_id = int(sub) if isinstance(sub, str) and sub.isdecimal() else None
    return revoked, login_session, account_id


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="End a session: by its refresh token, its access token, or both",
    responses=error_responses(
        400,
        401,
        413,
        422,
        503,
        s401="Neither a refresh token nor a bearer token, or one that is not valid "
        "(nothing is ended then)",
    ),
)
def logout(
    session: SessionDep,
    state: StateDep,
    revocations: RevocationsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    client: ClientAddress,
    body: Annotated[LogoutRequest | None, Body()] = None,
) -> Response:
    """Every credential given is checked before anything ends, so a typo ends nothing.

    The session is ended (its refresh tokens stop working, its access tokens
    are revoked), and so is the bearer token itself even when it names no
    session. Logging out of a session already ended is a 204 again. What ended
    (or the bearer token alone) is a ``token_revoked`` audit row; a repeat that
    ends nothing new writes none.
    """
    refresh_token = body.refresh_token if body is not None else None
    if credentials is None and refresh_token is None:
        raise NotAuthenticated("send the refresh token, or the access token as a bearer")
    revoked = sessions.Revoked()
    ending: list[LoginSession] = []
    bearer_account: int | None = None
    if credentials is not None:
        revoked, by_bearer, bearer_account = _bearer_session(
            session, state, credentials.credentials
        )
        if by_bearer is not None:
            ending.append(by_bearer)
            bearer_account = None  # the session's own row covers it
    if refresh_token is not None:
        by_refresh = sessions.find_session(session=session, refresh_token=refresh_token)
        if by_refresh is None:
            raise InvalidRefreshToken()
        ending.append(by_refresh)
    now = utcnow()
    ended_accounts: set[int] = set()
    for login_session in {s.id: s for s in ending}.values():
        if login_session.revoked_at is None:
            ended_accounts.add(login_session.account_id)
        revoked.tokens += sessions.end_session(
            session=session, login_session=login_session, now=now
        ).tokens
        SESSIONS_ENDED.labels(reason="logout").inc()
    if bearer_account is not None:
        ended_accounts.add(bearer_account)  # a bearer token that names no session
    for account_id in sorted(ended_accounts):
        sessions.audit_ended(
            session=session,
            account_id=account_id,
            reason="logout",
            revoked=revoked,
            client=client,
            by_owner=True,
        )
    session.commit()
    publish(revocations, revoked)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
