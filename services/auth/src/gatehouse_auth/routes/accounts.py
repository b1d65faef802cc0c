"""Signing up, the caller's own account, and the admin's list of accounts."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, status

from gatehouse_auth import crud
from gatehouse_auth.deps import AdminAccount, ClientAddress, CurrentAccount, SessionDep, StateDep
from gatehouse_auth.errors import RateLimited
from gatehouse_auth.metrics import ACCOUNTS_CREATED
from gatehouse_auth.models import AccountCreate, AccountPublic
from gatehouse_auth.routes._common import require_strong_password
from gatehouse_auth.schemas import AccountsPage, error_responses

logger = logging.getLogger(__name__)
router = APIRouter(tags=["accounts"])


@router.post(
    "/account",
    status_code=status.HTTP_201_CREATED,
    summary="Sign up",
    responses=error_responses(
        400,
        409,
        413,
        422,
        429,
        503,
        s422="The request is not valid; `fields` says which parts and why. A refused "
        "password names its rule in `type`: password_too_short, password_too_long, "
        "password_too_common, password_too_similar (to the email or username)",
        s429="Too many sign-ups from this address; see Retry-After",
    ),
)
def create_account(
    account_in: AccountCreate, session: SessionDep, state: StateDep, client: ClientAddress
) -> AccountPublic:
    """Sign-ups are limited per client address, and a taken email or username is
    answered after the same bcrypt work as a new account, so neither the count of
    tries nor the time of the answer makes listing the service's users cheap."""
    wait = state.signups.check(client=client)
    if wait:
        raise RateLimited(wait, "sign-ups")
    require_strong_password(
        account_in.password,
        email=account_in.email,
        username=account_in.username,
        min_score=state.settings.password_min_score,
    )
    account = crud.create_account(session=session, account_in=account_in, hasher=state.hasher)
    ACCOUNTS_CREATED.inc()
    logger.info("account %s created", account.id)
    return AccountPublic.model_validate(account, from_attributes=True)


@router.get("/me", summary="The caller's own account", responses=error_responses(401, 503))
def read_me(account: CurrentAccount) -> AccountPublic:
    return AccountPublic.model_validate(account, from_attributes=True)


@router.get(
    "/accounts",
    summary="List accounts, newest first (admin)",
    responses=error_responses(401, 403, 422, 503),
)
def list_accounts(
    _admin: AdminAccount,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=crud.MAX_PAGE_SIZE)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    search: Annotated[
        str | None,
        Query(max_length=100, pattern=r"^[^\x00]*$", description="Part of a username or email"),
    ] = None,
) -> AccountsPage:
    items, total = crud.list_accounts(
        session=session, limit=limit, offset=offset, search=search or None
    )
    return AccountsPage(
        items=[AccountPublic.model_validate(a, from_attributes=True) for a in items],
        total=total,
        limit=limit,
        offset=offset,
    )
