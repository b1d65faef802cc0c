"""Sessions and refresh token rotation, over a database session.

A login opens a session and hands out an access token (``sid`` = the
session's id) and a refresh token. ``POST /token/refresh`` trades a refresh
token for a new pair and marks the old one used; a refresh token presented a
second time means two parties hold it (the owner and a thief, and nobody can
tell which is which), so the whole session ends, as OAuth 2.0 Security BCP
(RFC 9700, 4.14.2) and Auth0's "refresh token reuse detection" do.

Refresh tokens are 256 random bits, stored as their SHA-256 (a database copy
cannot be replayed, and a high-entropy secret needs no slow hash). Marking a
token used is one conditional UPDATE, so of two requests racing with the same
token exactly one wins; the loser is a reuse.

Nothing here publishes: functions return the access tokens to revoke
(:class:`Revoked`), and the route publishes them after the commit, so the
database (the record) is never behind the gateways (the cache). Ending a live
session writes a ``token_revoked`` audit row in the same transaction
(:func:`audit_ended`): its count of tokens, never a token.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import CursorResult, delete, or_, update
from sqlmodel import Session, col, select

from gatehouse_auth import audit, crud
from gatehouse_auth.models import Account, utcnow
from gatehouse_auth.session_models import (
    CLIENT_ADDRESS_CHARS,
    USER_AGENT_CHARS,
    LoginSession,
    RefreshToken,
)
from gatehouse_auth.settings import AuthSettings
from gatehouse_auth.tokens import IssuedToken, TokenService

REFRESH_TOKEN_BYTES = 32


@dataclass(frozen=True)
class SessionTokens:
    """What login and refresh answer."""

    access: IssuedToken
    refresh_token: str
    refresh_expires_in: int
    session_id: str


@dataclass
class Revoked:
    """Access tokens (jti, exp) a change made useless, for the gateways to deny."""

    tokens: list[tuple[str, int]] = field(default_factory=list)


class RefreshRefused(Exception):
    """The refresh token cannot be used; ``reason`` is for logs and metrics only."""

    def __init__(self, reason: str, revoked: Revoked | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.revoked = revoked or Revoked()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def is_disabled(account: Account) -> bool:
    """The account may not sign in (the ``disabled`` column of account administration)."""
    return bool(getattr(account, "disabled", False))


def _issue(
    *,
    session: Session,
    login_session: LoginSession,
    account: Account,
    tokens: TokenService,
    settings: AuthSettings,
    now: datetime,
) -> SessionTokens:
    """A new access token and refresh token for ``login_session``, committed with it."""
    access = tokens.issue(account, session_id=login_session.id)
    refresh = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
    expires = min(
        now + timedelta(seconds=settings.refresh_token_ttl_seconds),
        _aware(login_session.expires_at),
    )
    session.add(
        RefreshToken(
            token_hash=hash_token(refresh),
            session_id=login_session.id,
            created_at=now,
            expires_at=expires,
            access_jti=access.jti,
            access_expires_at=datetime.fromtimestamp(access.expires_at, UTC),
        )
    )
    session.add(login_session)
    session.commit()
    return SessionTokens(
        access=access,
        refresh_token=refresh,
        refresh_expires_in=max(0, int((expires - now).total_seconds())),
        session_id=login_session.id,
    )


def open_session(
    *,
    session: Session,
    account: Account,
    tokens: TokenService,
    settings: AuthSettings,
    client_address: str | None,
    user_agent: str | None,
) -> SessionTokens:
    """Start a session for a login and commit it."""
    now = utcnow()
    if account.id is None:
        raise ValueError("a session needs a stored account")
    login_session = LoginSession(
        id=uuid.uuid4().hex,
        account_id=account.id,
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(seconds=settings.session_max_seconds),
        client_address=(client_address or None) and client_address[:CLIENT_ADDRESS_CHARS],
        user_agent=(user_agent or None) and user_agent[:USER_AGENT_CHARS],
    )
    return _issue(
        session=session,
        login_session=login_session,
        account=account,
        tokens=tokens,
        settings=settings,
        now=now,
    )


def end_session(*, session: Session, login_session: LoginSession, now: datetime) -> Revoked:
    """Mark the session revoked (not committed); its access tokens still live, to revoke.

    A session already ended gives nothing new to revoke.
    """
    if login_session.revoked_at is not None:
        return Revoked()
    login_session.revoked_at = now
    session.add(login_session)
    live = session.exec(
        select(RefreshToken.access_jti, RefreshToken.access_expires_at).where(
            RefreshToken.session_id == login_session.id,
            col(RefreshToken.access_expires_at) > now,
        )
    ).all()
    return Revoked([(jti, int(_aware(exp).timestamp())) for jti, exp in live])


def end_sessions_of(*, session: Session, account_id: int) -> Revoked:
    """End every live session of an account (not committed): "sign out everywhere"."""
    now = utcnow()
    revoked = Revoked()
    live = session.exec(
        select(LoginSession).where(
            LoginSession.account_id == account_id, col(LoginSession.revoked_at).is_(None)
        )
    ).all()
    for login_session in live:
        revoked.tokens += end_session(session=session, login_session=login_session, now=now).tokens
    return revoked


def find_session(*, session: Session, refresh_token: str) -> LoginSession | None:
    """The session a refresh token (used or not) belongs to."""
    row = session.get(RefreshToken, hash_token(refresh_token))
    return None if row is None else session.get(LoginSession, row.session_id)


def audit_ended(
    *,
    session: Session,
    account_id: int,
    reason: str,
    revoked: Revoked,
    client: str | None,
    by_owner: bool,
) -> None:
    """A ``token_revoked`` row for ended sessions (not committed).

    ``by_owner``: the account itself asked (logout), so it is the actor; a
    reuse is no one's request. The detail holds counts, never a token or jti.
    """
    account = crud.get_account(session=session, account_id=account_id)
    audit.record(
        session,
        audit.AuditAction.token_revoked,
        actor=account if by_owner else None,
        target=account.email if account is not None else str(account_id),
        client=client,
        detail={
            "reason": reason,
            "account_id": account_id,
            "revoked_count": len(dict(revoked.tokens)),
        },
    )


def _reuse(
    *, session: Session, login_session: LoginSession, now: datetime, client: str | None
) -> RefreshRefused:
    was_live = login_session.revoked_at is None
    revoked = end_session(session=session, login_session=login_session, now=now)
    if was_live:
        audit_ended(
            session=session,
            account_id=login_session.account_id,
            reason="refresh_token_reused",
            revoked=revoked,
            client=client,
            by_owner=False,
        )
    session.commit()
    return RefreshRefused("reused", revoked)


def refresh(
    *,
    session: Session,
    refresh_token: str,
    tokens: TokenService,
    settings: AuthSettings,
    client: str | None = None,
) -> SessionTokens:
    """Trade a refresh token for a new pair; raises :class:`RefreshRefused`.

    A reused token ends its session (committed here, with its audit row from
    ``client``) and the refusal carries the access tokens to revoke.
    """
    now = utcnow()
    row = session.get(RefreshToken, hash_token(refresh_token))
    if row is None:
        raise RefreshRefused("unknown")
    login_session = session.get(LoginSession, row.session_id)
    if login_session is None:
        raise RefreshRefused("unknown")
    if row.used_at is not None:
        raise _reuse(session=session, login_session=login_session, now=now, client=client)
    if login_session.revoked_at is not None:
        raise RefreshRefused("revoked")
    if _aware(row.expires_at) <= now or _aware(login_session.expires_at) <= now:
        raise RefreshRefused("expired")
    account = crud.get_account(session=session, account_id=login_session.account_id)
    if account is None or is_disabled(account):
        raise RefreshRefused("account")
    marked: CursorResult[tuple[()]] = session.execute(  # type: ignore[assignment]
        update(RefreshToken)
        .where(
            col(RefreshToken.token_hash) == row.token_hash,
            col(RefreshToken.used_at).is_(None),
        )
        .values(used_at=now)
    )
    if marked.rowcount != 1:  # a concurrent request used it first
        session.rollback()
        reloaded = session.get(LoginSession, row.session_id)
        if reloaded is None:
            raise RefreshRefused("unknown")
        raise _reuse(session=session, login_session=reloaded, now=now, client=client)
    login_session.last_used_at = now
    return _issue(
        session=session,
        login_session=login_session,
        account=account,
        tokens=tokens,
        settings=settings,
        now=now,
    )


def session_is_live(*, session: Session, session_id: str) -> bool:
    """False when the session an access token names was ended (logout, reuse, sign-out)."""
    login_session = session.get(LoginSession, session_id)
    return login_session is None or login_session.revoked_at is None


def purge_finished(*, session: Session, keep_revoked: timedelta) -> int:
    """Delete sessions that can matter no more; the number deleted.

    Expired sessions, and sessions revoked longer ago than ``keep_revoked``
    (the access token lifetime: their tokens have expired, and a refresh
    token of theirs is refused alike whether the row is there or not).
    Refresh tokens go first: SQLite does not enforce the cascade.
    """
    now = utcnow()
    finished = or_(
        col(LoginSession.expires_at) < now,
        col(LoginSession.revoked_at) < now - keep_revoked,
    )
    ids = select(LoginSession.id).where(finished)
    session.execute(delete(RefreshToken).where(col(RefreshToken.session_id).in_(ids)))
    deleted: CursorResult[tuple[()]] = session.execute(  # type: ignore[assignment]
        delete(LoginSession).where(finished)
    )
    session.commit()
    return int(deleted.rowcount)
