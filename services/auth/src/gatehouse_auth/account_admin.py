"""What an admin does to an account: disable, enable, change its role, sign it out everywhere.

Each change is committed with its audit row, then its tokens are revoked:
``tokens_not_before`` makes this service refuse them at once, and
:meth:`Revocations.revoke_subject` tells every gateway. Revoking after the
commit means a gateway never refuses a token that the database still
accepts (the other way round it could, for as long as the commit takes).

The service always keeps one enabled admin: a change that would leave none
(an admin disabling or demoting the last one, themselves included) is a 409,
decided with the admin rows locked so two admins demoting each other at once
cannot both win.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import status
from sqlmodel import Session, col, select

from gatehouse_auth import audit, sessions
from gatehouse_auth.audit import AuditAction
from gatehouse_auth.models import Account, Role, utcnow
from gatehouse_auth.revocation import Revocations
from gatehouse_auth.session_models import LoginSession
from gatehouse_auth.sessions import Revoked
from gatehouse_common.errors import ServiceError


class LastAdmin(ServiceError):
    def __init__(self) -> None:
        super().__init__(
            status.HTTP_409_CONFLICT,
            "last_admin",
            "this would leave no enabled admin; make another admin first",
        )


def _enabled_admin_ids(session: Session) -> list[int]:
    """The enabled admins' ids, their rows locked until the transaction ends (PostgreSQL)."""
    query = (
        select(Account.id)
        .where(Account.role == Role.admin.value, col(Account.disabled).is_(False))
        .with_for_update()
    )
    return [account_id for account_id in session.exec(query).all() if account_id is not None]


def _check_not_last_admin(session: Session, account: Account) -> None:
    if account.role != Role.admin.value or account.disabled:
        return
    if _enabled_admin_ids(session) == [account.id]:
        session.rollback()
        raise LastAdmin()


def end_other_sessions(session: Session, account: Account, *, keep: str | None) -> Revoked:
    """End the account's sessions but ``keep``; the live access tokens they issued, to revoke.

    The caller commits, then revokes those tokens one by one (the subject's
    other tokens, the kept session's among them, stay good).
    """
    now = utcnow()
    live = session.exec(
        select(LoginSession).where(
            LoginSession.account_id == account.id,
            col(LoginSession.revoked_at).is_(None),
            col(LoginSession.id) != (keep or ""),
        )
    ).all()
    revoked = Revoked()
    for login_session in live:
        revoked.tokens += sessions.end_session(
            session=session, login_session=login_session, now=now
        ).tokens
    return revoked


def revoke_tokens(session: Session, account: Account) -> None:
    """Refuse every token and session the account holds until now (the caller commits)."""
    account.tokens_not_before = time.time()
    if account.id is not None:
        sessions.end_sessions_of(session=session, account_id=account.id)


def publish_revocation(revocations: Revocations, account: Account) -> None:
    """Tell the gateways, after the commit (see the module docstring)."""
    revocations.revoke_subject(str(account.id), now=account.tokens_not_before)


@dataclass(frozen=True)
class AdminChange:
    """One admin's change to one account: who, to whom, from where, and where it is written."""

    session: Session
    account: Account
    admin: Account
    client: str
    revocations: Revocations

    def commit(
        self, action: AuditAction, *, revoke: bool, detail: dict[str, Any] | None = None
    ) -> None:
        """Commit the account with its audit row; with ``revoke``, its tokens revoked too."""
        account = self.account
        if revoke:
            revoke_tokens(self.session, account)
        audit.record(
            self.session,
            action,
            actor=self.admin,
            target=account.email,
            client=self.client,
            detail={"account_id": account.id, **(detail or {})},
        )
        self.session.add(account)
        self.session.commit()
        self.session.refresh(account)
        if revoke:
            publish_revocation(self.revocations, account)


def set_disabled(change: AdminChange, disabled: bool) -> None:
    """Disable (tokens revoked) or enable the account; nothing when it already is."""
    account = change.account
    if account.disabled == disabled:
        return
    if disabled:
        _check_not_last_admin(change.session, account)
    account.disabled = disabled
    action = AuditAction.account_disabled if disabled else AuditAction.account_enabled
    change.commit(action, revoke=disabled)


def set_role(change: AdminChange, role: Role) -> None:
    """Change the role, revoking the tokens that carry the old one; nothing when unchanged."""
    account = change.account
    if account.role == role.value:
        return
    if role != Role.admin:
        _check_not_last_admin(change.session, account)
    detail = {"from": account.role, "to": role.value}
    account.role = role.value
    change.commit(AuditAction.role_changed, revoke=True, detail=detail)


def sign_out_everywhere(change: AdminChange) -> None:
    """Revoke every token and session the account holds now."""
    change.commit(AuditAction.signed_out_everywhere, revoke=True)
