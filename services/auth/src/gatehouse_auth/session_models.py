"""Sessions (refresh token families) and their refresh tokens, as stored.

A login opens a session; every refresh token it is ever given belongs to it
(the "family" of OAuth 2.0 refresh token rotation). A refresh token is stored
only as the SHA-256 of its text, so a copy of the table cannot be replayed.
Each row also names the access token issued with it (``access_jti`` and its
expiry), which is how ending a session revokes the access tokens still live.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, ForeignKey, Integer, String
from sqlmodel import Field, SQLModel

from gatehouse_auth.models import utcnow

SESSION_ID_CHARS = 32
TOKEN_HASH_CHARS = 64
CLIENT_ADDRESS_CHARS = 64
USER_AGENT_CHARS = 256
JTI_CHARS = 64


def _when(*, nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable, index=index)


class LoginSession(SQLModel, table=True):
    """One signed-in session: what ``sid`` in an access token names."""

    __tablename__ = "sessions"

    id: str = Field(primary_key=True, max_length=SESSION_ID_CHARS)
    account_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    last_used_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    # The session's end however often it is refreshed (refresh tokens slide up to it).
    expires_at: datetime = Field(sa_column=_when(index=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    client_address: str | None = Field(default=None, max_length=CLIENT_ADDRESS_CHARS)
    user_agent: str | None = Field(default=None, max_length=USER_AGENT_CHARS)


class RefreshToken(SQLModel, table=True):
    """One refresh token of a session: usable once (``used_at`` set when it is)."""

    __tablename__ = "refresh_tokens"

    token_hash: str = Field(primary_key=True, max_length=TOKEN_HASH_CHARS)
    session_id: str = Field(
        sa_column=Column(
            String(SESSION_ID_CHARS),
            ForeignKey("sessions.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    expires_at: datetime = Field(sa_column=_when())
    used_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    # The access token issued with this refresh token, revoked with the session.
    access_jti: str = Field(max_length=JTI_CHARS)
    access_expires_at: datetime = Field(sa_column=_when())
