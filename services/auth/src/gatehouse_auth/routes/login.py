"""Logging in: a rate-limited password check that answers every failure alike."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header

from gatehouse_auth import crud, sessions
from gatehouse_auth.deps import ClientAddress, SessionDep, StateDep
from gatehouse_auth.errors import InvalidCredentials, RateLimited, TotpRequired
from gatehouse_auth.metrics import LOGINS, LoginResult
from gatehouse_auth.routes import _login_guard
from gatehouse_auth.routes.sessions import token_response
from gatehouse_auth.schemas import LoginRequest, TokenResponse, error_responses

router = APIRouter(tags=["login"])


@router.post(
    "/login",
    summary="Exchange an email and password for an access token and a refresh token",
    responses=error_responses(
        400,
        401,
        413,
        422,
        429,
        503,
        s401="Unknown email, wrong password or disabled account (`invalid_credentials`, one "
        "answer for all); or the account has TOTP and `totp_code` is missing "
        "(`totp_required`) or wrong or used (`invalid_totp_code`)",
    ),
)
def login(
    credentials: LoginRequest,
    session: SessionDep,
    state: StateDep,
    client: ClientAddress,
    user_agent: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> TokenResponse:
    """Opens a session: the access token names it (``sid``), the refresh token renews it."""
    attempt = state.limiter.check(email=credentials.email, client=client)
    if attempt.wait:
        LOGINS.labels(result=LoginResult.rate_limited.value).inc()
        raise RateLimited(attempt.wait)
    account = crud.authenticate(
        session=session,
        email=credentials.email,
        password=credentials.password,
        hasher=state.hasher,
    )
    try:
        if account is None:
            _login_guard.refuse(
                session,
                email=credentials.email,
                client=client,
                reason="invalid_credentials",
                attempt=attempt,
            )
        _login_guard.refuse_disabled(session, account, client=client, attempt=attempt)
        _login_guard.require_second_factor(
            session,
            account,
            credentials.totp_code,
            client=client,
            attempt=attempt,
            sealer=state.sealer,
        )
    except (InvalidCredentials, TotpRequired):
        LOGINS.labels(result=LoginResult.invalid_credentials.value).inc()
        raise
    state.limiter.succeeded(attempt)
    issued = sessions.open_session(
        session=session,
        account=account,
        tokens=state.tokens,
        settings=state.settings,
        client_address=client,
        user_agent=user_agent,
    )
    LOGINS.labels(result=LoginResult.success.value).inc()
    return token_response(issued)
