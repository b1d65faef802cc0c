"""Accounts, layered as in the FastAPI template: base -> create -> table -> public.

The table never leaves the service as is: handlers answer with
:class:`AccountPublic`, which has no field for the password hash, so a hash
cannot be returned by accident.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import ConfigDict, EmailStr, field_validator
from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Integer, func
from sqlmodel import Field, SQLModel

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,64}$"
PASSWORD_MIN_CHARS = 8
# bcrypt reads at most 72 bytes; longer passwords are refused, never truncated.
PASSWORD_MAX_BYTES = 72
EMAIL_MAX_LENGTH = 254
_USERNAME_RE = re.compile(USERNAME_PATTERN)


class Role(StrEnum):
    user = "user"
    admin = "admin"


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalize_email(value: str) -> str:
    """Emails compare case-insensitively, so they are stored lower-cased."""
    return value.strip().lower()


def check_text(value: str, *, allow_nul: bool = False) -> str:
    """Refuse what cannot be stored or hashed: NUL (for stored text) and unpaired surrogates.

    PostgreSQL cannot store NUL in text, and a lone surrogate (legal in JSON
    escapes) cannot be encoded as UTF-8; both would otherwise surface as 500s.
    Passwords are only hashed, never stored, so NUL is allowed in them.
    """
    if not allow_nul and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no unpaired surrogates)") from None
    return value


def check_password(value: str) -> str:
    """Length rules for a new password, with messages that say which rule failed."""
    check_text(value, allow_nul=True)
    if len(value) < PASSWORD_MIN_CHARS:
        raise ValueError(f"password is too short: at least {PASSWORD_MIN_CHARS} characters")
    size = len(value.encode("utf-8"))
    if size > PASSWORD_MAX_BYTES:
        raise ValueError(
            f"password is too long: {size} bytes in UTF-8; bcrypt uses at most "
            f"{PASSWORD_MAX_BYTES} bytes, and longer passwords are refused rather than "
            "silently truncated"
        )
    return value


def account_id_column() -> Column[int]:
    """``account_id`` of a table whose rows belong to an account and go with it."""
    return Column(
        Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True
    )


def when_column(*, nullable: bool = False) -> Column[datetime]:
    """A timestamp with its time zone (UTC by convention here)."""
    return Column(DateTime(timezone=True), nullable=nullable)


class AccountBase(SQLModel):
    username: str = Field(min_length=3, max_length=64, schema_extra={"pattern": USERNAME_PATTERN})
    email: str = Field(max_length=EMAIL_MAX_LENGTH)


class AccountCreate(AccountBase):
    """The body of ``POST /account``."""

    # SQLModel types its config as its own TypedDict; pydantic's keys are the same.
    model_config = ConfigDict(  # type: ignore[assignment]
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "alice",
                    "email": "alice@example.com",
                    "password": "correct horse battery",
                }
            ]
        },
    )

    email: EmailStr = Field(max_length=EMAIL_MAX_LENGTH)
    password: str = Field(
        min_length=PASSWORD_MIN_CHARS,
        description="8 characters to 72 UTF-8 bytes (bcrypt's limit; longer is refused, not "
        "truncated), and not common or made of the email or username (zxcvbn score 3 or more)",
    )

    @field_validator("username")
    @classmethod
    def _username_charset(cls, value: str) -> str:
        if not _USERNAME_RE.match(value):
            raise ValueError("username must be 3-64 characters of A-Z, a-z, 0-9, '_', '.', '-'")
        return value

    @field_validator("email")
    @classmethod
    def _lower_email(cls, value: str) -> str:
        return normalize_email(check_text(value))

    @field_validator("password", mode="before")
    @classmethod
    def _password_bytes(cls, value: object) -> object:
        # Runs before the character-count check so a 30-emoji password gets
        # the message about bytes, not a confusing pass.
        return check_password(value) if isinstance(value, str) else value


class Account(AccountBase, table=True):
    """A row of ``accounts``; unique indexes, not checks, keep racing signups from both winning."""

    __tablename__ = "accounts"
    __table_args__ = (Index("uq_accounts_email", "email", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    hashed_password: str = Field(max_length=128)
    role: str = Field(default=Role.user.value, max_length=16)
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True),
    )
    # A disabled account cannot log in, and its tokens are refused here and revoked
    # at the gateways (see account_admin.py).
    disabled: bool = Field(default=False)
    # Unix time: this service refuses the account's tokens issued before it (iat <
    # this), as the gateways do from the revocation list, so a revocation holds
    # here even without Redis.
    tokens_not_before: float | None = Field(default=None)
    # TOTP (see totp.py): the confirmed secret, one being enrolled, and the last
    # time step accepted (a code is good once).
    # (sealed with Fernet when keys are set: see sealing.py)
    totp_secret: str | None = Field(default=None, max_length=255)
    totp_pending_secret: str | None = Field(default=None, max_length=255)
    totp_last_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))

    @property
    def totp_enabled(self) -> bool:
        return self.totp_secret is not None

    @property
    def stored_id(self) -> int:
        """The id of an account read from the database (never None there)."""
        if self.id is None:
            raise ValueError("the account is not stored yet")
        return self.id


# "Alice" and "alice" are one name: two of them would let one impersonate the other.
Index(
    "uq_accounts_username_lower",
    # SQLAlchemy sets __table__ on the class; SQLModel's types do not declare it
    func.lower(Account.__table__.c.username),  # type: ignore[attr-defined]
    unique=True,
)


class AccountPublic(AccountBase):
    """What the API shows of an account.

    Output describes stored rows as they are: the signup rules (the username
    pattern, say) are checked on input only, so one row imported or created
    under older rules cannot turn every listing into a 500.
    """

    username: str
    email: str
    id: int
    role: Role
    created_at: datetime
    disabled: bool = False
    totp_enabled: bool = False

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # SQLite hands back naive datetimes; they were stored in UTC.
        return value if value.tzinfo else value.replace(tzinfo=UTC)
