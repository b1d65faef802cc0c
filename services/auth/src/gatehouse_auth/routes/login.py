"""Logging in: a rate-limited password check that answers every failure alike."""

from __future__ import annotations

from fastapi import APIRouter

from gatehouse_auth import crud
from gatehouse_auth.deps import ClientAddress, SessionDep, StateDep
from gatehouse_auth.errors import InvalidCredentials, RateLimited
from gatehouse_auth.metrics import LOGINS, LoginResult
from gatehouse_auth.schemas import LoginRequest, TokenResponse, error_responses

router = APIRouter(tags=["login"])


@router.post(
    "/login",
    summary="Exchange an email and password for an access token",
    responses=error_responses(
        400, 401, 413, 422, 429, 503, s401="Unknown email or wrong password (one answer for both)"
    ),
)
def login(
    credentials: LoginRequest, session: SessionDep, state: StateDep, client: ClientAddress
) -> TokenResponse:
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
    if account is None:
        LOGINS.labels(result=LoginResult.invalid_credentials.value).inc()
        raise InvalidCredentials()
    state.limiter.succeeded(attempt)
    issued = state.tokens.issue(account)
    LOGINS.labels(result=LoginResult.success.value).inc()
    return TokenResponse(
        access_token=issued.token, expires_in=issued.expires_in, token=issued.token
    )
