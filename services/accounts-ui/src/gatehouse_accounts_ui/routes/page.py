"""``GET /accounts_page``: the sign-in form, or the accounts table for a signed-in admin."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse

from gatehouse_accounts_ui.deps import BrowserSessionDep, RendererDep, SettingsDep
from gatehouse_accounts_ui.errors import PageNotFound
from gatehouse_accounts_ui.listing import paginate, parse_listing
from gatehouse_accounts_ui.notices import notice_of
from gatehouse_accounts_ui.paths import PREFIX
from gatehouse_accounts_ui.settings import PAGE_SIZES

router = APIRouter(prefix=PREFIX, tags=["page"])

ROLES = ("user", "admin")


@router.get("", response_class=HTMLResponse, summary="The accounts page")
@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def accounts_page(
    request: Request,
    settings: SettingsDep,
    renderer: RendererDep,
    session: BrowserSessionDep,
) -> HTMLResponse:
    query = parse_listing(request.query_params, settings.default_page_size)
    if not session.signed_in:
        return renderer.signin(request, notice=notice_of(request))
    page = await session.call(
        lambda token: session.auth.list_accounts(
            token, limit=query.limit, offset=query.offset, search=query.search
        )
    )
    response = renderer.render(
        request,
        "accounts.html",
        {
            "accounts": page.items,
            "query": query,
            "pagination": paginate(query, page),
            "page_sizes": sorted({*PAGE_SIZES, query.limit}),
            "roles": ROLES,
            "notice": notice_of(request),
        },
    )
    return session.store(response)


@router.get("/login", include_in_schema=False)
@router.get("/logout", include_in_schema=False)
async def form_address() -> RedirectResponse:
    """The address bar shows the form's URL after a refused sign-in; loading it shows the page."""
    return RedirectResponse(PREFIX, status_code=status.HTTP_303_SEE_OTHER)


# Registered after the static mount (see app.py), so it only sees what nothing
# else under the prefix claimed: a person who mistyped gets a page, not JSON.
not_found_router = APIRouter(prefix=PREFIX, include_in_schema=False)


@not_found_router.get("/{rest:path}")
@not_found_router.post("/{rest:path}")
async def not_found() -> None:
    raise PageNotFound("There is no page at this address.")
