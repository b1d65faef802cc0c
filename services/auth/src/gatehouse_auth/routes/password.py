"""Passwords changed by their owners: with the current one, or with a one-time reset link."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status

from gatehouse_auth import account_admin, audit, crud, resets
from gatehouse_auth.admin_schemas import PasswordChange, PasswordReset
from gatehouse_auth.audit import AuditAction
from gatehouse_auth.deps import BearerClaims, ClientAddress, CurrentAccount, SessionDep, StateDep
from gatehouse_auth.errors import BadRequest, Forbidden, RateLimited
from gatehouse_auth.routes._common import require_strong_password
from gatehouse_auth.schemas import error_responses

logger = logging.getLogger(__name__)
router = APIRouter(tags=["passwords"])


@router.put(
    "/account/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change your own password; your other sessions are signed out",
    responses=error_responses(
        400,
        401,
        403,
        413,
        422,
        429,
        503,
        s403="The current password is wrong (`wrong_password`)",
        s429="Too many wrong current passwords; see Retry-After",
    ),
)
def change_password(
    change: PasswordChange,
    account: CurrentAccount,
    claims: BearerClaims,
    session: SessionDep,
    state: StateDep,
    client: ClientAddress,
) -> Response:
    """The current password is checked (and wrong guesses count against the same limits as
    logins). The session this token belongs to stays signed in; every other session ends
    and the access tokens they hold are revoked at every gateway."""
    attempt = state.limiter.check(email=account.email, client=client)
    if attempt.wait:
        raise RateLimited(attempt.wait, "password attempts")
    if not state.hasher.verify(change.current_password, account.hashed_password):
        audit.record(
            session,
            AuditAction.login_failed,
            actor=account,
            target=account.email,
            client=client,
            detail={"reason": "wrong_current_password"},
        )
        session.commit()
        raise Forbidden("the current password is wrong", code="wrong_password")
    state.limiter.succeeded(attempt)
    require_strong_password(
        change.new_password,
        email=account.email,
        username=account.username,
        min_score=state.settings.password_min_score,
        field="new_password",
    )
    sid = claims.get("sid")
    account.hashed_password = state.hasher.hash(change.new_password)
    ended = account_admin.end_other_sessions(
        session, account, keep=sid if isinstance(sid, str) else None
    )
    audit.record(
        session,
        AuditAction.password_changed,
        actor=account,
        target=account.email,
        client=client,
        detail={"account_id": account.id, "access_revoked": len(ended.tokens)},
    )
    session.add(account)
    session.commit()
    for jti, exp in ended.tokens:
        state.revocations.revoke_token(jti, exp)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password/reset",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Choose a new password with a one-time reset link's token (no bearer)",
    responses=error_responses(
        400,
        413,
        422,
        503,
        s400="The token is unknown, used, superseded or expired (`invalid_reset_token`)",
    ),
)
def reset_password(
    reset_in: PasswordReset, session: SessionDep, state: StateDep, client: ClientAddress
) -> Response:
    """A refused new password (422) leaves the link usable; a used one is gone for good.
    Every session and token of the account is revoked: whoever held it before is out."""
    invalid = BadRequest("invalid_reset_token", "this reset link is not valid (used or expired?)")
    reset = resets.find_usable(session=session, token=reset_in.token)
    account = crud.get_account(session=session, account_id=reset.account_id) if reset else None
    if reset is None or account is None:
        raise invalid
    require_strong_password(
        reset_in.new_password,
        email=account.email,
        username=account.username,
        min_score=state.settings.password_min_score,
        field="new_password",
    )
    hashed = state.hasher.hash(reset_in.new_password)
    if not resets.use(session=session, reset=reset):
        session.rollback()
        raise invalid
    account.hashed_password = hashed
    account_admin.revoke_tokens(session, account)
    audit.record(
        session,
        AuditAction.password_reset_used,
        target=account.email,
        client=client,
        detail={"account_id": account.id, "reset_id": reset.id},
    )
    session.add(account)
    session.commit()
    account_admin.publish_revocation(state.revocations, account)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
