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


def _commit_change(
    session: Session,
    account: Account,
    action: AuditAction,
    *,
    admin: Account,
    client: str,
    detail: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session,
        action,
        actor=admin,
        target=account.email,
        client=client,
        detail={"account_id": account.id, **(detail or {})},
    )
    session.add(account)
    session.commit()
    session.refresh(account)


def set_disabled(
    *,
    session: Session,
    account: Account,
    disabled: bool,
    admin: Account,
    client: str,
    revocations: Revocations,
) -> bool:
    """Disable (tokens revoked) or enable ``account``; False when it already was."""
    if account.disabled == disabled:
        return False
    if disabled:
        _check_not_last_admin(session, account)
        revoke_tokens(session, account)
    account.disabled = disabled
    action = AuditAction.account_disabled if disabled else AuditAction.account_enabled
    _commit_change(session, account, action, admin=admin, client=client)
    if disabled:
        publish_revocation(revocations, account)
    return True


def set_role(
    *,
    session: Session,
    account: Account,
    role: Role,
    admin: Account,
    client: str,
    revocations: Revocations,
) -> bool:
    """Change the role, revoking the tokens that carry the old one; False when unchanged."""
    if account.role == role.value:
        return False
    if role != Role.admin:
        _check_not_last_admin(session, account)
    detail = {"from": account.role, "to": role.value}
    account.role = role.value
    revoke_tokens(session, account)
    _commit_change(
        session, account, AuditAction.role_changed, admin=admin, client=client, detail=detail
    )
    publish_revocation(revocations, account)
    return True


def sign_out_everywhere(
    *,
    session: Session,
    account: Account,
    admin: Account,
    client: str,
    revocations: Revocations,
) -> None:
    """Revoke every token the account holds now."""
    revoke_tokens(session, account)
    _commit_change(session, account, AuditAction.signed_out_everywhere, admin=admin, client=client)
    publish_revocation(revocations, account)
