"""What login checks after the password, and the audit rows of refused logins.

Kept apart from the login route so the route reads as its steps: limits,
password, :func:`refuse_disabled`, :func:`require_second_factor`, token.
"""

from __future__ import annotations

from typing import NoReturn

from sqlmodel import Session

from gatehouse_auth import audit, totp
from gatehouse_auth.audit import AuditAction
from gatehouse_auth.errors import InvalidCredentials, TotpRequired
from gatehouse_auth.limits import LoginAttempt
from gatehouse_auth.models import Account
from gatehouse_auth.sealing import Sealer


def refuse(
    session: Session, *, email: str, client: str, reason: str, attempt: LoginAttempt
) -> NoReturn:
    """Record a failed login (and the lockout it starts) and answer the one generic 401."""
    session.rollback()
    audit.record(
        session, AuditAction.login_failed, target=email, client=client, detail={"reason": reason}
    )
    if attempt.locks_out:
        audit.record(
            session,
            AuditAction.lockout,
            target=email,
            client=client,
            detail={"scope": attempt.locks_out},
        )
    session.commit()
    raise InvalidCredentials()


def refuse_disabled(
    session: Session, account: Account, *, client: str, attempt: LoginAttempt
) -> None:
    """A disabled account is refused like a wrong password (after the same bcrypt work)."""
    if account.disabled:
        refuse(
            session, email=account.email, client=client, reason="account_disabled", attempt=attempt
        )


def require_second_factor(
    session: Session,
    account: Account,
    code: str | None,
    *,
    client: str,
    attempt: LoginAttempt,
    sealer: Sealer,
) -> None:
    """401 ``totp_required`` without a code, ``invalid_totp_code`` with a wrong or used one.

    Wrong codes count against the login limits like wrong passwords do (the
    attempt is not taken back), so codes cannot be guessed faster than passwords.
    """
    if not account.totp_enabled:
        return
    if not code:
        raise TotpRequired()
    used = totp.check_code(session=session, account=account, code=code, sealer=sealer)
    if used is None:
        try:
            refuse(
                session,
                email=account.email,
                client=client,
                reason="invalid_totp_code",
                attempt=attempt,
            )
        except InvalidCredentials:
            raise TotpRequired("invalid_totp_code") from None
    if used == totp.CodeCheck.RECOVERY:
        audit.record(
            session,
            AuditAction.totp_recovery_code_used,
            actor=account,
            target=account.email,
            client=client,
            detail={"left": totp.recovery_codes_left(session=session, account=account)},
        )
    session.commit()
