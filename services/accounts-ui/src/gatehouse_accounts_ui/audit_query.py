"""The audit view's filters and pages, parsed from the address bar.

Like the listing's (:mod:`.listing`): every parameter is bounded and checked
here, and a wrong one is a 400 page naming it, never passed on for auth to
refuse. Times come from the form's date inputs (``YYYY-MM-DD`` or
``YYYY-MM-DDTHH:MM``) and are read as UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.datastructures import QueryParams

from gatehouse_accounts_ui.auth_models import AuditPage
from gatehouse_accounts_ui.errors import BadQuery
from gatehouse_accounts_ui.listing import Pagination, bounded_int, pagination
from gatehouse_accounts_ui.paths import AUDIT_PATH, page_url
from gatehouse_accounts_ui.settings import PAGE_SIZES

# The actions auth records (the contract's list), for the filter's menu.
ACTIONS = (
    "login_failed",
    "lockout",
    "lockout_lifted",
    "role_changed",
    "account_disabled",
    "account_enabled",
    "signed_out_everywhere",
    "token_revoked",
    "key_rotated",
    "password_reset_issued",
    "password_reset_used",
    "password_changed",
    "totp_enabled",
    "totp_disabled",
    "totp_recovery_code_used",
    "backend_drained",
    "backend_undrained",
    "canary_weights_changed",
)
MAX_TEXT = 254
MAX_PAGE = 100_000
_TIME_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class AuditQuery:
    actor: str
    target: str
    action: str
    since: str
    until: str
    page: int
    size: int

    def params(self) -> dict[str, str | int]:
        """What ``GET /audit`` is asked."""
        params: dict[str, str | int] = {"limit": self.size, "offset": (self.page - 1) * self.size}
        for name in ("actor", "target", "action"):
            value = getattr(self, name)
            if value:
                params[name] = value
        for name in ("since", "until"):
            value = getattr(self, name)
            if value:
                params[name] = _utc(value).isoformat()
        return params

    def url(self, page: int) -> str:
        return page_url(
            AUDIT_PATH,
            actor=self.actor,
            target=self.target,
            action=self.action,
            since=self.since,
            until=self.until,
            size=self.size,
            page=page if page > 1 else "",
        )


def _utc(value: str) -> datetime:
    for layout in _TIME_FORMATS:
        try:
            return datetime.strptime(value, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise BadQuery("since and until must be dates (YYYY-MM-DD) or times (YYYY-MM-DDTHH:MM).")


def _text(params: QueryParams, name: str) -> str:
    value = params.get(name, "").strip()
    if len(value) > MAX_TEXT:
        raise BadQuery(f"{name} may be at most {MAX_TEXT} characters.")
    if any(not ch.isprintable() for ch in value):
        raise BadQuery(f"{name} may not contain control characters.")
    return value


def parse_audit(params: QueryParams, default_size: int) -> AuditQuery:
    """The rows asked for, or :class:`BadQuery` naming the parameter that is wrong."""
    action = params.get("action", "")
    if action and action not in ACTIONS:
        raise BadQuery("action must be one of the actions the audit log records.")
    since, until = _text(params, "since"), _text(params, "until")
    for value in (since, until):
        if value:
            _utc(value)
    size = bounded_int(params, "size", default_size, 1, max(PAGE_SIZES))
    return AuditQuery(
        actor=_text(params, "actor"),
        target=_text(params, "target"),
        action=action,
        since=since,
        until=until,
        page=bounded_int(params, "page", 1, 1, MAX_PAGE),
        size=size,
    )


def audit_pager(query: AuditQuery, page: AuditPage) -> Pagination:
    return pagination(
        offset=(query.page - 1) * query.size,
        limit=query.size,
        shown=len(page.items),
        total=page.total,
        url=lambda offset: query.url(offset // query.size + 1),
    )
