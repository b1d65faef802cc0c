"""Account administration (admin): disable, enable, change role, sign out everywhere, reset link.

Every change is audited and revokes what it must at once (see
:mod:`gatehouse_auth.account_admin`); asking for the state an account is
already in changes nothing and records nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from gatehouse_auth import account_admin, audit, resets
from gatehouse_auth.account_admin import AdminChange
from gatehouse_auth.admin_schemas import PasswordResetIssued, RoleChange
from gatehouse_auth.audit import AuditAction
from gatehouse_auth.deps import AdminAccount, ClientAddress, SessionDep, StateDep, admin_account
from gatehouse_auth.models import AccountPublic
from gatehouse_auth.routes._common import AccountIdPath, account_or_404
from gatehouse_auth.schemas import error_responses

router = APIRouter(
    prefix="/accounts/{account_id}",
    tags=["account administration"],
    dependencies=[Depends(admin_account)],
)
# Where the demo's people reach the suite (the gateway), when public_url is unset.
DEFAULT_PUBLIC_URL = "http://localhost:8080"
_LAST_ADMIN = "It would leave no enabled admin (`last_admin`)"


def admin_change(
    account_id: AccountIdPath,
    session: SessionDep,
    state: StateDep,
    admin: AdminAccount,
    client: ClientAddress,
) -> AdminChange:
    """The account named by the path (404 when none) and the admin changing it."""
    account = account_or_404(session, account_id)
    return AdminChange(session, account, admin, client, state.revocations)


ChangeDep = Annotated[AdminChange, Depends(admin_change)]


def _public(change: AdminChange) -> AccountPublic:
    return AccountPublic.model_validate(change.account, from_attributes=True)


@router.post(
    "/disable",
    summary="Disable an account: no login, its tokens and sessions revoked (admin)",
    responses=error_responses(401, 403, 404, 409, 422, 503, s409=_LAST_ADMIN),
)
def disable(change: ChangeDep) -> AccountPublic:
    account_admin.set_disabled(change, True)
    return _public(change)


@router.post(
    "/enable",
    summary="Enable a disabled account (admin)",
    responses=error_responses(401, 403, 404, 422, 503),
)
def enable(change: ChangeDep) -> AccountPublic:
    account_admin.set_disabled(change, False)
    return _public(change)


@router.put(
    "/role",
    summary="Change an account's role; its tokens are revoked so the new role applies now (admin)",
    responses=error_responses(401, 403, 404, 409, 422, 503, s409=_LAST_ADMIN),
)
def change_role(role_change: RoleChange, change: ChangeDep) -> AccountPublic:
    account_admin.set_role(change, role_change.role)
    return _public(change)


@router.post(
    "/sign-out",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign an account out everywhere: every token and session revoked (admin)",
    responses=error_responses(401, 403, 404, 422, 503),
)
def sign_out(change: ChangeDep) -> Response:
    account_admin.sign_out_everywhere(change)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password-reset",
    summary="Issue a one-time password-reset link to hand to the owner (admin)",
    responses=error_responses(401, 403, 404, 422, 503),
)
def issue_password_reset(change: ChangeDep, state: StateDep) -> PasswordResetIssued:
    """The link works once, until `expires_at`, and only while it is the account's newest.
    It is not sent anywhere: the admin passes it on. The token is stored only hashed."""
    settings = state.settings
    account = change.account
    issued = resets.issue(
        session=change.session,
        account=account,
        admin=change.admin,
        ttl_seconds=settings.password_reset_ttl_seconds,
    )
    audit.record(
        change.session,
        AuditAction.password_reset_issued,
        actor=change.admin,
        target=account.email,
        client=change.client,
        detail={"account_id": account.id, "expires_at": issued.expires_at.isoformat()},
    )
    change.session.commit()
    base = (settings.public_url or DEFAULT_PUBLIC_URL).rstrip("/")
    url = f"{base}{settings.password_reset_path}?token={issued.token}"
    return PasswordResetIssued(reset_url=url, expires_at=issued.expires_at)
