"""The audit log for admins, and operator actions recorded from the gateway."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from gatehouse_auth import audit
from gatehouse_auth.admin_schemas import AuditEventPublic, AuditPage, OperatorAuditRequest
from gatehouse_auth.audit import AuditAction
from gatehouse_auth.deps import AdminAccount, ClientAddress, SessionDep, StateDep, admin_account
from gatehouse_auth.errors import invalid_field
from gatehouse_auth.models import check_text
from gatehouse_auth.schemas import error_responses

router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[Depends(admin_account)])
_NO_NUL = r"^[^\x00]*$"
# A date far enough out for any audit; later ones are refused rather than overflowing.
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_DETAIL_DEPTH = 4


def _page_bounds(
    limit: Annotated[int | None, Query(ge=1, le=audit.MAX_PAGE_SIZE)] = None,
    offset: Annotated[int | None, Query(ge=0, le=10_000_000)] = None,
    page: Annotated[int | None, Query(ge=1, le=100_000, description="1-based; with `size`")] = None,
    size: Annotated[
        int | None, Query(ge=1, le=audit.MAX_PAGE_SIZE, description="Page size")
    ] = None,
) -> tuple[int, int]:
    """``limit``/``offset`` as GET /accounts takes them, or ``page``/``size`` (1-based)."""
    count = limit or size or 20
    if offset is None:
        offset = (page - 1) * count if page else 0
    return count, offset


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise invalid_field(("query", name), "give a time zone (Z or +hh:mm)")
    if value > _LATEST:
        raise invalid_field(("query", name), "too far in the future")
    # In UTC: PostgreSQL takes offsets up to 15:59, ISO 8601 writes up to 23:59.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise invalid_field(("query", name), "before the year 1 in UTC") from None


@router.get(
    "",
    summary="Audit rows, newest first, filtered (admin)",
    responses=error_responses(401, 403, 422, 503),
)
def list_audit(
    session: SessionDep,
    bounds: Annotated[tuple[int, int], Depends(_page_bounds)],
    actor: Annotated[
        str | None,
        Query(max_length=254, pattern=_NO_NUL, description="The actor's account id or email"),
    ] = None,
    target: Annotated[
        str | None, Query(max_length=254, pattern=_NO_NUL, description="Exact target")
    ] = None,
    action: Annotated[AuditAction | None, Query(description="One action")] = None,
    since: Annotated[
        datetime | None, Query(description="From this time (inclusive, ISO 8601)")
    ] = None,
    until: Annotated[datetime | None, Query(description="Before this time (ISO 8601)")] = None,
) -> AuditPage:
    limit, offset = bounds
    items, total = audit.list_events(
        session=session,
        limit=limit,
        offset=offset,
        actor=actor or None,
        target=target or None,
        action=action.value if action else None,
        since=_aware(since, "since"),
        until=_aware(until, "until"),
    )
    return AuditPage(
        items=[AuditEventPublic.of(event) for event in items],
        total=total,
        limit=limit,
        offset=offset,
    )


def _detail_problem(value: object, depth: int = 0) -> str | None:
    """Why ``value`` may not go into the log (nesting, secrets, unstorable text), or None."""
    if depth > _DETAIL_DEPTH:
        return f"detail nests deeper than {_DETAIL_DEPTH}"
    if isinstance(value, dict):
        for key, item in value.items():
            if audit.is_secret_key(str(key)):
                return f"detail may not hold secrets (key {str(key)[:40]!r})"
            problem = _detail_problem(str(key), depth) or _detail_problem(item, depth + 1)
            if problem:
                return problem
    elif isinstance(value, list):
        for item in value:
            problem = _detail_problem(item, depth + 1)
            if problem:
                return problem
    elif isinstance(value, str):
        try:
            check_text(value)
        except ValueError as exc:
            return f"detail text {exc}"
    elif isinstance(value, float) and not math.isfinite(value):
        return "detail numbers must be finite"
    return None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Record an operator action done elsewhere (admin; the gateway's operator API)",
    responses=error_responses(401, 403, 413, 422, 503),
)
def record_operator_action(
    body: OperatorAuditRequest,
    session: SessionDep,
    state: StateDep,
    admin: AdminAccount,
    client: ClientAddress,
) -> AuditEventPublic:
    """The actor is the admin whose token calls; `action` is one of the operator actions.
    `detail` is capped in size and depth and may not carry keys that name secrets."""
    problem = _detail_problem(body.detail)
    if problem:
        raise invalid_field(("body", "detail"), problem)
    limit = state.settings.audit_detail_max_bytes
    if len(json.dumps(body.detail, separators=(",", ":"))) > limit:
        raise invalid_field(("body", "detail"), f"detail is over {limit} bytes of JSON")
    event = audit.record(
        session,
        AuditAction(body.action),
        actor=admin,
        target=body.target,
        client=client,
        detail=body.detail,
    )
    session.commit()
    session.refresh(event)
    return AuditEventPublic.of(event)
