"""What the auth service answers, as the page reads it (the contract's JSON shapes).

Only the fields the page shows or acts on; anything else auth adds is ignored,
so a newer auth service does not break an older page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Account(BaseModel):
    id: int | str
    username: str
    email: str
    role: str = ""
    created_at: datetime
    disabled: bool = False
    totp_enabled: bool = False


class AccountPage(BaseModel):
    items: list[Account]
    total: int
    limit: int
    offset: int


class TokenPair(BaseModel):
    """``POST /login`` and ``POST /token/refresh``: a short access token and its refresh token."""

    access_token: str
    refresh_token: str | None = None
    expires_in: int | None = None


class ResetLink(BaseModel):
    """``POST /accounts/{id}/password-reset``: a one-time link, shown to the admin once."""

    reset_url: str
    expires_at: datetime


class TotpEnrolment(BaseModel):
    """``POST /account/totp``: a pending secret, shown to its owner once."""

    secret: str = Field(min_length=1, max_length=256)
    otpauth_uri: str = Field(min_length=1, max_length=2048)


class RecoveryCodes(BaseModel):
    """``POST /account/totp/confirm``: the single-use recovery codes, shown once."""

    recovery_codes: list[str] = Field(max_length=100)


class AuditRow(BaseModel):
    id: int
    at: datetime
    actor: str | None = None
    actor_email: str | None = None
    action: str
    target: str | None = None
    client_address: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class AuditPage(BaseModel):
    items: list[AuditRow]
    total: int
    limit: int
    offset: int
