"""``GET /accounts_page``: the sign-in form, or the accounts table for a signed-in admin."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse

from gatehouse_accounts_ui.cookies import delete_cookie
from gatehouse_accounts_ui.deps import AuthClientDep, RendererDep, SessionTokenDep, SettingsDep
from gatehouse_accounts_ui.errors import PageNotFound, SessionExpired
from gatehouse_accounts_ui.listing import paginate, parse_listing
from gatehouse_accounts_ui.paths import PREFIX
from gatehouse_accounts_ui.settings import PAGE_SIZES

router = APIRouter(prefix=PREFIX, tags=["page"])

_NOTICES = {"signed_out": "You have signed out."}


@router.get("", response_class=HTMLResponse, summary="The accounts page")
@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def accounts_page(
    request: Request,
    settings: SettingsDep,
    auth: AuthClientDep,
    renderer: RendererDep,
    token: SessionTokenDep,
) -> HTMLResponse:
    query = parse_listing(request.query_params, settings.default_page_size)
    if token is None:
        notice = _NOTICES.get(request.query_params.get("notice", ""), "")
        return renderer.render(request, "signin.html", {"notice": notice, "error": "", "email": ""})
    try:
        page = await auth.list_accounts(
            token, limit=query.limit, offset=query.offset, search=query.search
        )
    except SessionExpired:
        response = renderer.render(
            request,
            "signin.html",
            {
                "notice": "",
                "error": "Your session has expired. Please sign in again.",
                "email": "",
                "signed_in": False,
            },
        )
        delete_cookie(response, request, settings, settings.session_cookie)
        return response
    return renderer.render(
        request,
        "accounts.html",
        {
            "accounts": page.items,
            "query": query,
            "pagination": paginate(query, page),
            "page_sizes": sorted({*PAGE_SIZES, query.limit}),
        },
    )


@router.get("/login", include_in_schema=False)
@router.get("/logout", include_in_schema=False)
async def form_address() -> RedirectResponse:
    """The address bar shows the form's URL after a refused sign-in; loading it shows the page."""
    return RedirectResponse(PREFIX, status_code=status.HTTP_303_SEE_OTHER)


# Registered after the static mount (see app.py), so it only sees what nothing
# else under the prefix claimed: a person who mistyped gets a page, not JSON.
not_found_router = APIRouter(prefix=PREFIX, include_in_schema=False)


@not_found_router.get("/{rest:path}")
async def not_found() -> None:
    raise PageNotFound("There is no page at this address.")
