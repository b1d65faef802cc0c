"""Logging in: a rate-limited password check that answers every failure alike."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header

from gatehouse_auth import crud, sessions
from gatehouse_auth.deps import ClientAddress, SessionDep, StateDep
from gatehouse_auth.errors import InvalidCredentials, RateLimited
from gatehouse_auth.metrics import LOGINS, LoginResult
from gatehouse_auth.routes.sessions import token_response
from gatehouse_auth.schemas import LoginRequest, TokenResponse, error_responses

router = APIRouter(tags=["login"])


@router.post(
    "/login",
    summary="Exchange an email and password for an access token and a refresh token",
    responses=error_responses(
        400, 401, 413, 422, 429, 503, s401="Unknown email or wrong password (one answer for both)"
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
    if account is None or sessions.is_disabled(account):
        LOGINS.labels(result=LoginResult.invalid_credentials.value).inc()
        raise InvalidCredentials()
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
