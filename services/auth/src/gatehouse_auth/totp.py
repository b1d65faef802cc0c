"""TOTP second factor (RFC 6238, via pyotp) and its single-use recovery codes.

Secrets are sealed at rest when keys are set (see :mod:`gatehouse_auth.sealing`).
Enrolment is two steps: a pending secret is handed out once (with its
``otpauth://`` URI for an authenticator app) and becomes the account's only
when a code made from it is confirmed; the secret is never shown again.

A code is accepted for the current 30-second step or one either side (clock
drift), and only for a step later than the last one accepted: a code seen
once (over a shoulder, in a log) cannot be replayed, even within its window.
The step is claimed with one conditional UPDATE, so two logins racing with
the same code cannot both pass.

Recovery codes: ten at confirmation, 50 random bits each, stored as SHA-256
(no slow hash is needed at that entropy), each usable once in place of a code.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

import pyotp
from sqlalchemy import delete, func, or_, update
from sqlmodel import Field, Session, SQLModel, col, select

from gatehouse_auth.models import Account, account_id_column, utcnow, when_column
from gatehouse_auth.sealing import Sealer, SealError

logger = logging.getLogger(__name__)
RECOVERY_CODES = 10
# A TOTP code, or a recovery code as shown (xxxxx-xxxxx) with or without its dash.
CODE_MAX_CHARS = 32
_TOTP_CODE = re.compile(r"[0-9]{6}")
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
STEP_SECONDS = 30
DRIFT_STEPS = 1


class RecoveryCode(SQLModel, table=True):
    """A row of ``totp_recovery_codes``; ``code_hash`` is the SHA-256 of the normalised code."""

    __tablename__ = "totp_recovery_codes"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(sa_column=account_id_column())
    code_hash: str = Field(max_length=64, unique=True)
    used_at: datetime | None = Field(default=None, sa_column=when_column(nullable=True))


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str


def start_enrolment(*, account: Account, issuer: str, sealer: Sealer) -> Enrolment:
    """A new pending secret for ``account`` (replacing any unconfirmed one). The caller commits."""
    secret = pyotp.random_base32()
    account.totp_pending_secret = sealer.seal(secret)
    uri = pyotp.TOTP(secret).provisioning_uri(name=account.email, issuer_name=issuer)
    return Enrolment(secret=secret, otpauth_uri=uri)


def _matching_step(secret: str, code: str, *, after: int | None, now: float) -> int | None:
    """The time step (within the drift) whose code is ``code`` and is later than ``after``."""
    if not _TOTP_CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now) // STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _open(sealer: Sealer, stored: str) -> str | None:
    """The secret, or None (logged) when no configured key opens it: codes are then refused,
    recovery codes still work, and the log says which key setting to fix."""
    try:
        return sealer.open(stored)
    except SealError as exc:
        logger.error("cannot check a TOTP code: %s", exc)
        return None


def _claim_step(session: Session, account: Account, step: int) -> bool:
    """Record ``step`` as used unless a request got there first (same transaction)."""
    result = session.connection().execute(
        update(Account)
        .where(
            col(Account.id) == account.id,
            or_(col(Account.totp_last_step).is_(None), col(Account.totp_last_step) < step),
        )
        .values(totp_last_step=step)
    )
    if result.rowcount != 1:
        return False
    account.totp_last_step = step
    return True


def confirm(*, session: Session, account: Account, code: str, sealer: Sealer) -> list[str] | None:
    """Make the pending secret the account's when ``code`` fits; its recovery codes, or None.

    The caller commits.
    """
    pending = account.totp_pending_secret
    if pending is None:
        return None
    secret = _open(sealer, pending)
    if secret is None:
        return None
    step = _matching_step(secret, code.strip(), after=None, now=time.time())
    if step is None:
        return None
    account.totp_secret = pending
    account.totp_pending_secret = None
    account.totp_last_step = step
    session.add(account)
    return _new_recovery_codes(session, account)


def _normalise_recovery(code: str) -> str:
    return code.strip().replace("-", "").replace(" ", "").lower()


def _recovery_hash(code: str) -> str:
    return hashlib.sha256(_normalise_recovery(code).encode("utf-8")).hexdigest()


def _new_recovery_codes(session: Session, account: Account) -> list[str]:
    session.connection().execute(
        delete(RecoveryCode).where(col(RecoveryCode.account_id) == account.id)
    )
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(account_id=account.stored_id, code_hash=_recovery_hash(raw)))
    return codes


class CodeCheck:
    """The outcome of :func:`check_code`: which kind of code passed, if any."""

    TOTP = "totp"
    RECOVERY = "recovery"


def check_code(*, session: Session, account: Account, code: str, sealer: Sealer) -> str | None:
    """``"totp"`` or ``"recovery"`` when ``code`` passes (and is now spent), else None.

    The caller commits; until then the spent step or recovery code is held by
    this transaction, so a racing request waits and then fails.
    """
    if account.totp_secret is None:
        return None
    secret = _open(sealer, account.totp_secret)
    code = code.strip()
    if _TOTP_CODE.fullmatch(code):
        if secret is None:
            return None
        step = _matching_step(secret, code, after=account.totp_last_step, now=time.time())
        if step is not None and _claim_step(session, account, step):
            return CodeCheck.TOTP
        return None
    result = session.connection().execute(
        update(RecoveryCode)
        .where(
            col(RecoveryCode.account_id) == account.id,
            col(RecoveryCode.code_hash) == _recovery_hash(code),
            col(RecoveryCode.used_at).is_(None),
        )
        .values(used_at=utcnow())
    )
    return CodeCheck.RECOVERY if result.rowcount == 1 else None


def recovery_codes_left(*, session: Session, account: Account) -> int:
    query = (
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.account_id == account.id, col(RecoveryCode.used_at).is_(None))
    )
    return int(session.exec(query).one())


def disable(*, session: Session, account: Account) -> None:
    """Forget the secret and the recovery codes. The caller commits."""
    account.totp_secret = None
    account.totp_pending_secret = None
    account.totp_last_step = None
    session.add(account)
    session.connection().execute(
        delete(RecoveryCode).where(col(RecoveryCode.account_id) == account.id)
    )
