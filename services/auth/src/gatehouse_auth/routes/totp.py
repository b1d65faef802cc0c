"""TOTP second factor of the caller's own account: enrol, confirm, remove."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from gatehouse_auth import audit, totp
from gatehouse_auth.admin_schemas import RecoveryCodes, TotpCode, TotpEnrolment
from gatehouse_auth.audit import AuditAction
from gatehouse_auth.deps import AuthState, ClientAddress, CurrentAccount, SessionDep, StateDep
from gatehouse_auth.errors import BadRequest, Conflict, NotFound, RateLimited
from gatehouse_auth.limits import LoginAttempt
from gatehouse_auth.models import Account
from gatehouse_auth.schemas import error_responses

router = APIRouter(prefix="/account/totp", tags=["second factor"])
_WRONG_CODE = "The code is wrong or already used (`invalid_totp_code`)"


def _wrong_code() -> BadRequest:
    return BadRequest("invalid_totp_code", "the code is wrong or already used")


def _limited(state: AuthState, account: Account, client: str) -> LoginAttempt:
    """Code guesses count against the login limits: a stolen session cannot try them all."""
    attempt = state.limiter.check(email=account.email, client=client)
    if attempt.wait:
        raise RateLimited(attempt.wait, "code attempts")
    return attempt


@router.post(
    "",
    summary="Start TOTP enrolment: a new secret to put in an authenticator app",
    responses=error_responses(401, 409, 503, s409="TOTP is already on (`totp_already_enabled`)"),
)
def start(account: CurrentAccount, session: SessionDep, state: StateDep) -> TotpEnrolment:
    """The secret is shown this once; it counts only after `POST /account/totp/confirm`.
    Starting again replaces an unconfirmed secret."""
    if account.totp_enabled:
        raise Conflict("totp_already_enabled", "TOTP is already on; remove it first")
    enrolment = totp.start_enrolment(
        account=account, issuer=state.settings.totp_issuer, sealer=state.sealer
    )
    session.add(account)
    session.commit()
    return TotpEnrolment(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri)


@router.post(
    "/confirm",
    summary="Confirm enrolment with a code from the app; answers the recovery codes",
    responses=error_responses(
        400,
        401,
        409,
        422,
        503,
        429,
        s400=_WRONG_CODE,
        s429="Too many wrong codes; see Retry-After",
        s409="No enrolment started, or TOTP already on (`totp_not_started`, "
        "`totp_already_enabled`)",
    ),
)
def confirm(
    body: TotpCode,
    account: CurrentAccount,
    session: SessionDep,
    state: StateDep,
    client: ClientAddress,
) -> RecoveryCodes:
    """From now on login asks for a code. The ten recovery codes are shown this once."""
    if account.totp_enabled:
        raise Conflict("totp_already_enabled", "TOTP is already on")
    if account.totp_pending_secret is None:
        raise Conflict("totp_not_started", "start with POST /account/totp")
    attempt = _limited(state, account, client)
    codes = totp.confirm(session=session, account=account, code=body.code, sealer=state.sealer)
    if codes is None:
        session.rollback()
        raise _wrong_code()
    state.limiter.succeeded(attempt)
    audit.record(
        session,
        AuditAction.totp_enabled,
        actor=account,
        target=account.email,
        client=client,
        detail={"account_id": account.id},
    )
    session.commit()
    return RecoveryCodes(recovery_codes=codes)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Turn TOTP off, with a current code or a recovery code",
    responses=error_responses(
        400,
        401,
        404,
        422,
        429,
        503,
        s400=_WRONG_CODE,
        s404="TOTP is not on (`not_found`)",
        s429="Too many wrong codes; see Retry-After",
    ),
)
def remove(
    body: TotpCode,
    account: CurrentAccount,
    session: SessionDep,
    state: StateDep,
    client: ClientAddress,
) -> Response:
    """With `require_admin_totp`, an admin without TOTP is refused by admin endpoints."""
    if not account.totp_enabled:
        raise NotFound("TOTP is not on for this account")
    attempt = _limited(state, account, client)
    used = totp.check_code(session=session, account=account, code=body.code, sealer=state.sealer)
    if used is None:
        session.rollback()
        raise _wrong_code()
    state.limiter.succeeded(attempt)
    totp.disable(session=session, account=account)
    audit.record(
        session,
        AuditAction.totp_disabled,
        actor=account,
        target=account.email,
        client=client,
        detail={"account_id": account.id, "with": used},
    )
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
