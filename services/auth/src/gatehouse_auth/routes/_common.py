"""What several routers share: the password rules for a new password, accounts by id."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from sqlmodel import Session

from gatehouse_auth import crud
from gatehouse_auth.errors import NotFound, invalid_field
from gatehouse_auth.models import Account
from gatehouse_auth.password_policy import WeakPassword, check_password_strength

# Ids are PostgreSQL integers: a larger one is a 422, not a database error.
AccountIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="The account's id")]


def require_strong_password(
    password: str, *, email: str, username: str, min_score: int, field: str = "password"
) -> None:
    """422 naming the rule (password_too_common, password_too_similar) for a weak password."""
    try:
        check_password_strength(password, email=email, username=username, min_score=min_score)
    except WeakPassword as exc:
        raise invalid_field(("body", field), exc.message, exc.rule) from None


def account_or_404(session: Session, account_id: int) -> Account:
    account = crud.get_account(session=session, account_id=account_id)
    if account is None:
        raise NotFound("no account has this id")
    return account
