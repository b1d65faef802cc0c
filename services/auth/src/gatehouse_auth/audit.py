"""The audit log: who did what to whom, from where, and when.

Every admin action and security event is a row of ``audit_events``, written
in the same transaction as the change it records (so a change never lands
without its row, nor a row without its change). ``detail`` is JSON for the
particulars (old and new role, a reason); it never holds a secret:
:func:`redact` replaces any value under a key that names one (password,
token, secret, code) and any value that looks like a JWT, and the operator
endpoint refuses such keys outright.

Other modules (key rotation, say) record with :func:`record` inside their
own session, or :func:`record_in` with an engine of their own.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, get_args

from sqlalchemy import JSON, Column, DateTime, Engine, Index, func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, col, select

from gatehouse_auth.models import Account, utcnow

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
REDACTED = "[redacted]"
# Keys whose values are secrets wherever they appear in a detail.
_SECRET_KEY = re.compile(r"pass|token|secret|code|otp|key|hash|credential", re.IGNORECASE)
# A compact JWS: three base64url parts, the first a JSON header ("eyJ").
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_ACCOUNT_ID = re.compile(r"[0-9]{1,12}")
MAX_ACCOUNT_ID = 2**31 - 1
# Keys that name a resource rather than hold a secret, though they match the pattern.
_ALLOWED_KEYS = frozenset({"kid", "key_id", "reason"})


class AuditAction(StrEnum):
    """Every action the log records. The operator ones come from the gateway."""

    login_failed = "login_failed"
    lockout = "lockout"
    lockout_lifted = "lockout_lifted"
    role_changed = "role_changed"
    account_disabled = "account_disabled"
    account_enabled = "account_enabled"
    signed_out_everywhere = "signed_out_everywhere"
    token_revoked = "token_revoked"
    key_rotated = "key_rotated"
    password_reset_issued = "password_reset_issued"
    password_reset_used = "password_reset_used"
    password_changed = "password_changed"
    totp_enabled = "totp_enabled"
    totp_disabled = "totp_disabled"
    totp_recovery_code_used = "totp_recovery_code_used"
    backend_drained = "backend_drained"
    backend_undrained = "backend_undrained"
    canary_weights_changed = "canary_weights_changed"


# What POST /audit may record: the gateway's operator actions, nothing that
# would let a caller forge a security event of this service's own.
OperatorAction = Literal["backend_drained", "backend_undrained", "canary_weights_changed"]
OPERATOR_ACTIONS = frozenset(AuditAction(action) for action in get_args(OperatorAction))


class AuditEvent(SQLModel, table=True):
    """A row of ``audit_events``. No foreign keys: the log outlives what it names."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_action_at", "action", "at"),
        Index("ix_audit_events_target_at", "target", "at"),
        Index("ix_audit_events_actor_at", "actor_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True),
    )
    actor_id: int | None = Field(default=None)
    actor_email: str | None = Field(default=None, max_length=254)
    action: str = Field(max_length=64)
    target: str | None = Field(default=None, max_length=254)
    client_address: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


def is_secret_key(key: str) -> bool:
    return key not in _ALLOWED_KEYS and bool(_SECRET_KEY.search(key))


def redact(value: Any) -> Any:
    """``value`` with every secret-looking entry replaced by ``[redacted]``."""
    if isinstance(value, dict):
        return {str(k): REDACTED if is_secret_key(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str) and _JWT.search(value):
        return REDACTED
    return value


def record(
    session: Session,
    action: AuditAction,
    *,
    actor: Account | None = None,
    target: str | None = None,
    client: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add a row to ``session`` (the caller commits it with the change it records)."""
    event = AuditEvent(
        actor_id=actor.id if actor else None,
        actor_email=actor.email if actor else None,
        action=action.value,
        target=target[:254] if target else None,
        client_address=client[:64] if client else None,
        detail=redact(detail or {}),
    )
    session.add(event)
    logger.info("audit %s by %s on %s from %s", action.value, event.actor_id, event.target, client)
    return event


def record_in(
    engine: Engine,
    action: AuditAction,
    *,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record an event with no request behind it (a scheduled key rotation, the CLI)."""
    with Session(engine) as session:
        record(session, action, target=target, detail=detail)
        session.commit()


def record_key_rotations(engine: Engine, created: list[str], *, by: str) -> None:
    """``key_rotated`` rows for new key files (``by``: ``schedule`` or ``cli``).

    The rotation has happened whatever the database says: a database that
    cannot take the rows is logged, never raised into the rotation.
    """
    for name in created:
        try:
            record_in(engine, AuditAction.key_rotated, target=name, detail={"by": by})
        except SQLAlchemyError as exc:
            logger.error("key rotation %s not audited (database: %s)", name, exc)


def list_events(
    *,
    session: Session,
    limit: int,
    offset: int,
    actor: str | None = None,
    target: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[AuditEvent], int]:
    """One page, newest first, and the total matching every filter given.

    ``actor`` is an account id or an email; ``since`` is inclusive, ``until`` exclusive.
    """
    conditions = []
    if actor:
        if _ACCOUNT_ID.fullmatch(actor):
            # An id past any account's simply matches nothing.
            conditions.append(col(AuditEvent.actor_id) == min(int(actor), MAX_ACCOUNT_ID + 1))
        else:
            conditions.append(col(AuditEvent.actor_email) == actor.strip().lower())
    if target:
        conditions.append(col(AuditEvent.target) == target)
    if action:
        conditions.append(col(AuditEvent.action) == action)
    if since:
        conditions.append(col(AuditEvent.at) >= since)
    if until:
        conditions.append(col(AuditEvent.at) < until)
    query = select(AuditEvent).where(*conditions)
    count = select(func.count()).select_from(AuditEvent).where(*conditions)
    page = query.order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
    items = list(session.exec(page.offset(offset).limit(min(limit, MAX_PAGE_SIZE))).all())
    return items, int(session.exec(count).one())
