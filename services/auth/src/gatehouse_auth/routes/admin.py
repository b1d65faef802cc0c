"""Account administration (admin): disable, enable, change role, sign out everywhere, reset link.

Every change is audited and revokes what it must at once (see
:mod:`gatehouse_auth.account_admin`); asking for the state an account is
already in changes nothing and records nothing.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Response, status

from gatehouse_auth import account_admin, audit, resets
from gatehouse_auth.admin_schemas import PasswordResetIssued, RoleChange
from gatehouse_auth.audit import AuditAction
from gatehouse_auth.deps import AdminAccount, ClientAddress, SessionDep, StateDep, admin_account
from gatehouse_auth.models import AccountPublic
from gatehouse_auth.routes._common import AccountIdPath, account_or_404
from gatehouse_auth.schemas import error_responses

logger = logging.getLogger(__name__)
router = APIRouter(
    prefix="/accounts/{account_id}",
    tags=["account administration"],
    dependencies=[Depends(admin_account)],
)
# Where the demo's people reach the suite (the gateway), when public_url is unset.
DEFAULT_PUBLIC_URL = "http://localhost:8080"
_LAST_ADMIN = "It would leave no enabled admin (`last_admin`)"


def _public(account: object) -> AccountPublic:
    return AccountPublic.model_validate(account, from_attributes=True)


@router.post(
    "/disable",
    summary="Disable an account: no login, its tokens and sessions revoked (admin)",
    responses=error_responses(401, 403, 404, 409, 422, 503, s409=_LAST_ADMIN),
)
def disable(
    account_id: AccountIdPath,
    session: SessionDep,
    state: StateDep,
    admin: AdminAccount,
    client: ClientAddress,
) -> AccountPublic:
    account = account_or_404(session, account_id)
    account_admin.set_disabled(
        session=session,
        account=account,
        disabled=True,
        admin=admin,
        client=client,
        revocations=state.revocations,
    )
    return _public(account)


@router.post(
    "/enable",
    summary="Enable a disabled account (admin)",
    responses=error_responses(401, 403, 404, 422, 503),
)
def enable(
    account_id: AccountIdPath,
    session: SessionDep,
    state: StateDep,
    admin: AdminAccount,
    client: ClientAddress,
) -> AccountPublic:
    account = account_or_404(session, account_id)
    account_admin.set_disabled(
        session=session,
        account=account,
        disabled=False,
        admin=admin,
        client=client,
        revocations=state.revocations,
    )
    return _public(account)


@router.put(
    "/role",
    summary="Change an account's role; its tokens are revoked so the new role applies now (admin)",
    responses=error_responses(401, 403, 404, 409, 422, 503, s409=_LAST_ADMIN),
)
def change_role(
    account_id: AccountIdPath,
    change: RoleChange,
    session: SessionDep,
    state: StateDep,
    admin: AdminAccount,
    client: ClientAddress,
) -> AccountPublic:
    account = account_or_404(session, account_id)
    account_admin.set_role(
        session=session,
        account=account,
        role=change.role,
        admin=admin,
        client=client,
        revocations=state.revocations,
    )
    return _public(account)


@router.post(
    "/sign-out",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign an account out everywhere: every token and session revoked (admin)",
    responses=error_responses(401, 403, 404, 422, 503),
)
def sign_out(
    account_id: AccountIdPath,
    session: SessionDep,
    state: StateDep,
    admin: AdminAccount,
    client: ClientAddress,
) -> Response:
    account = account_or_404(session, account_id)
    account_admin.sign_out_everywhere(
        session=session, account=account, admin=admin, client=client, revocations=state.revocations
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password-reset",
    summary="Issue a one-time password-reset link to hand to the owner (admin)",
    responses=error_responses(401, 403, 404, 422, 503),
)
def issue_password_reset(
    account_id: AccountIdPath,
    session: SessionDep,
    state: StateDep,
    admin: AdminAccount,
    client: ClientAddress,
) -> PasswordResetIssued:
    """The link works once, until `expires_at`, and only while it is the account's newest.
    It is not sent anywhere: the admin passes it on. The token is stored only hashed."""
    settings = state.settings
    account = account_or_404(session, account_id)
    issued = resets.issue(
        session=session,
        account=account,
        admin=admin,
        ttl_seconds=settings.password_reset_ttl_seconds,
    )
    audit.record(
        session,
        AuditAction.password_reset_issued,
        actor=admin,
        target=account.email,
        client=client,
        detail={"account_id": account.id, "expires_at": issued.expires_at.isoformat()},
    )
    session.commit()
    base = (settings.public_url or DEFAULT_PUBLIC_URL).rstrip("/")
    url = f"{base}{settings.password_reset_path}?token={issued.token}"
    return PasswordResetIssued(reset_url=url, expires_at=issued.expires_at)
