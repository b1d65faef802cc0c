"""Login lockouts for an admin: which emails are refused from where, and lifting them.

Lockouts end by themselves when their window passes; an admin lifts one early
when a real user is locked out (the per-email ceiling locks an account from
every address, which is the price of stopping a guesser spread over many).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from gatehouse_auth import audit
from gatehouse_auth.audit import AuditAction
from gatehouse_auth.deps import AdminAccount, ClientAddress, SessionDep, StateDep, admin_account
from gatehouse_auth.errors import LimiterUnavailable, NotFound, invalid_field
from gatehouse_auth.limits import LimiterUnavailableError, Lockout
from gatehouse_auth.models import EMAIL_MAX_LENGTH, check_text, normalize_email
from gatehouse_auth.schemas import LockoutPublic, LockoutsLifted, LockoutsList, error_responses

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/lockouts", tags=["lockouts"], dependencies=[Depends(admin_account)])

# Login takes any email-like text (an unknown one is just wrong), so a lockout
# may name any; this only asks for one '@' and no control characters.
EmailPath = Annotated[
    str,
    Path(
        min_length=3,
        max_length=EMAIL_MAX_LENGTH,
        pattern=r"^[^\x00-\x1f\x7f@]+@[^\x00-\x1f\x7f@]+$",
        description="The email whose lockouts to lift (any case)",
        examples=["admin@example.com"],
    ),
]


def _public(lockout: Lockout) -> LockoutPublic:
    return LockoutPublic(
        email=lockout.email,
        scope="address" if lockout.client is not None else "account",
        client=lockout.client,
        retry_after=max(1, round(lockout.retry_after + 0.499)),
    )


@router.get(
    "",
    summary="Login lockouts in force (admin)",
    responses=error_responses(401, 403, 503),
)
def list_lockouts(state: StateDep) -> LockoutsList:
    try:
        lockouts = state.limiter.lockouts()
    except LimiterUnavailableError as exc:
        logger.warning("cannot read lockouts: %s", exc)
        raise LimiterUnavailable() from None
    return LockoutsList(items=[_public(lockout) for lockout in lockouts], total=len(lockouts))


@router.delete(
    "/{email}",
    summary="Lift every login lockout of an email (admin)",
    responses=error_responses(401, 403, 404, 422, 503, s404="No lockout of this email is in force"),
)
def lift_lockouts(
    email: EmailPath,
    state: StateDep,
    admin: AdminAccount,
    session: SessionDep,
    client: ClientAddress,
) -> LockoutsLifted:
    try:
        wanted = normalize_email(check_text(email))
    except ValueError as exc:
        raise invalid_field(("path", "email"), str(exc)) from None
    try:
        lifted = state.limiter.lift(wanted)
    except LimiterUnavailableError as exc:
        logger.warning("cannot lift lockouts: %s", exc)
        raise LimiterUnavailable() from None
    if not lifted:
        raise NotFound("no lockout of this email is in force")
    audit.record(
        session,
        AuditAction.lockout_lifted,
        actor=admin,
        target=wanted,
        client=client,
        detail={"lifted": lifted},
    )
    session.commit()
    return LockoutsLifted(email=wanted, lifted=lifted)
