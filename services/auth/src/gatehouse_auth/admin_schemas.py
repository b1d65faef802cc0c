"""Bodies of the account administration, password, TOTP and audit endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatehouse_auth.audit import AuditEvent, OperatorAction
from gatehouse_auth.models import PASSWORD_MIN_CHARS, Role, check_password, check_text
from gatehouse_auth.resets import TOKEN_MAX_CHARS
from gatehouse_auth.schemas import LOGIN_PASSWORD_MAX_CHARS
from gatehouse_auth.totp import CODE_MAX_CHARS

_NEW_PASSWORD = Field(
    min_length=PASSWORD_MIN_CHARS,
    description="The new password, under the sign-up rules: 8 characters to 72 UTF-8 bytes, "
    "not common, not made of the email or username",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _NewPassword(_Strict):
    new_password: str = _NEW_PASSWORD

    @field_validator("new_password", mode="before")
    @classmethod
    def _password_bytes(cls, value: object) -> object:
        return check_password(value) if isinstance(value, str) else value


class RoleChange(_Strict):
    """The body of ``PUT /accounts/{id}/role``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "admin"}]})

    role: Role


class PasswordResetIssued(BaseModel):
    """A one-time link to hand to the account's owner; it is shown once."""

    reset_url: str = Field(description="Open it to choose a new password; works once")
    expires_at: datetime


class PasswordReset(_NewPassword):
    """The body of ``POST /password/reset``: the token from the link and the new password."""

    token: str = Field(min_length=1, max_length=TOKEN_MAX_CHARS)


class PasswordChange(_NewPassword):
    """The body of ``PUT /account/password``."""

    current_password: str = Field(min_length=1, max_length=LOGIN_PASSWORD_MAX_CHARS)

    @field_validator("current_password")
    @classmethod
    def _encodable(cls, value: str) -> str:
        return check_text(value, allow_nul=True)


class TotpEnrolment(BaseModel):
    """A pending TOTP secret: add it to an authenticator app, then confirm a code."""

    secret: str = Field(description="Base32; shown this once")
    otpauth_uri: str = Field(description="The same secret as an otpauth:// URI (for a QR code)")


class TotpCode(_Strict):
    """A 6-digit TOTP code or, where a code is checked, a recovery code instead."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "123456"}]})

    code: str = Field(min_length=1, max_length=CODE_MAX_CHARS)


class RecoveryCodes(BaseModel):
    """Ten single-use codes that stand in for a TOTP code; shown this once."""

    recovery_codes: list[str]


class AuditEventPublic(BaseModel):
    """One audit row. ``actor`` is the acting account's id (the token's subject)."""

    id: int
    at: datetime
    actor: str | None
    actor_email: str | None
    action: str
    target: str | None
    client_address: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventPublic:
        at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
        return cls(
            id=event.id or 0,
            at=at,
            actor=str(event.actor_id) if event.actor_id is not None else None,
            actor_email=event.actor_email,
            action=event.action,
            target=event.target,
            client_address=event.client_address,
            detail=event.detail,
        )


class AuditPage(BaseModel):
    """One page of audit rows, newest first."""

    items: list[AuditEventPublic]
    total: int
    limit: int
    offset: int


class OperatorAuditRequest(_Strict):
    """An operator action done elsewhere (the gateway's operator API) to record."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "action": "backend_drained",
                    "target": "service1/127.0.0.1:9001",
                    "detail": {"route": "service1"},
                }
            ]
        }
    )

    action: OperatorAction
    target: str | None = Field(default=None, max_length=254)
    detail: dict[str, Any] = Field(
        default_factory=dict,
        description="Particulars (JSON object, size-capped); keys naming secrets are refused",
    )

    @field_validator("target")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        return check_text(value) if value is not None else None
