"""``GET /accounts_page/audit``: the audit log, filtered and paged, for admins.

Every value in a row (actor, target, client address, the detail JSON) came
from somewhere else, so each is rendered as text by the autoescaping templates.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gatehouse_accounts_ui.audit_query import ACTIONS, audit_pager, parse_audit
from gatehouse_accounts_ui.deps import BrowserSessionDep, RendererDep, SettingsDep
from gatehouse_accounts_ui.paths import AUDIT_PATH
from gatehouse_accounts_ui.settings import PAGE_SIZES

router = APIRouter(tags=["audit"])


@router.get(AUDIT_PATH, response_class=HTMLResponse, summary="The audit log (admins)")
async def audit_page(
    request: Request,
    settings: SettingsDep,
    renderer: RendererDep,
    session: BrowserSessionDep,
) -> HTMLResponse:
    query = parse_audit(request.query_params, settings.default_page_size)
    if not session.signed_in:
        return renderer.signin(request)
    page = await session.call(lambda token: session.auth.list_audit(token, query.params()))
    response = renderer.render(
        request,
        "audit.html",
        {
            "rows": page.items,
            "query": query,
            "pager": audit_pager(query, page),
            "actions": ACTIONS,
            "page_sizes": sorted({*PAGE_SIZES, query.size}),
        },
    )
    return session.store(response)
