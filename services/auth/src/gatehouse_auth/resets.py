"""One-time password-reset links: issued by an admin, used once by the account's owner.

The token is 32 random bytes (URL-safe); only its SHA-256 is stored, so the
table cannot be replayed by whoever reads it (a token of that entropy needs
no slow hash: nobody guesses 256 bits). A link ends when it is used, when it
expires, or when a newer link is issued for the same account. Using it is
one conditional UPDATE, so two requests racing with the same token cannot
both change the password.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Field, Session, SQLModel, col, select

from gatehouse_auth.models import Account, account_id_column, utcnow, when_column

TOKEN_BYTES = 32
# Long enough for any token this module issues; anything longer is not one.
TOKEN_MAX_CHARS = 128


class PasswordReset(SQLModel, table=True):
    """A row of ``password_resets``; ``token_hash`` is the SHA-256 of the link's token."""

    __tablename__ = "password_resets"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(sa_column=account_id_column())
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=when_column())
    expires_at: datetime = Field(sa_column=when_column())
    used_at: datetime | None = Field(default=None, sa_column=when_column(nullable=True))
    created_by: int | None = Field(default=None)


@dataclass(frozen=True)
class IssuedReset:
    token: str
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue(*, session: Session, account: Account, admin: Account, ttl_seconds: int) -> IssuedReset:
    """A new link for ``account``; earlier unused ones end now. The caller commits."""
    now = utcnow()
    # Through the session's connection (same transaction): sqlmodel's exec()
    # takes UPDATE statements only from later versions than the lowest we allow.
    session.connection().execute(
        update(PasswordReset)
        .where(col(PasswordReset.account_id) == account.id, col(PasswordReset.used_at).is_(None))
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = now + timedelta(seconds=ttl_seconds)
    session.add(
        PasswordReset(
            account_id=account.stored_id,
            token_hash=token_hash(token),
            expires_at=expires_at,
            created_by=admin.id,
        )
    )
    return IssuedReset(token=token, expires_at=expires_at)


def find_usable(*, session: Session, token: str) -> PasswordReset | None:
    """The unused, unexpired reset of ``token``, without using it."""
    query = select(PasswordReset).where(
        PasswordReset.token_hash == token_hash(token),
        col(PasswordReset.used_at).is_(None),
        col(PasswordReset.expires_at) > utcnow(),
    )
    return session.exec(query).first()


def use(*, session: Session, reset: PasswordReset) -> bool:
    """Mark ``reset`` used; False when another request used it first. The caller commits."""
    now = utcnow()
    result = session.connection().execute(
        update(PasswordReset)
        .where(
            col(PasswordReset.id) == reset.id,
            col(PasswordReset.used_at).is_(None),
            col(PasswordReset.expires_at) > now,
        )
        .values(used_at=now)
    )
    return bool(result.rowcount == 1)
