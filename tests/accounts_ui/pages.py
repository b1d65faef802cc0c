"""The page's real templates rendered in-process, for tests that need rows auth would not return."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request

from gatehouse_accounts_ui.auth_models import Account, AccountPage
from gatehouse_accounts_ui.listing import ListingQuery, paginate
from gatehouse_accounts_ui.rendering import PageRenderer, build_templates
from gatehouse_accounts_ui.routes.page import ROLES
from gatehouse_accounts_ui.settings import PAGE_SIZES, AccountsUISettings


def account(username: str, email: str, role: str = "user") -> Account:
    return Account(
        id=1, username=username, email=email, role=role, created_at=datetime(2026, 1, 2, tzinfo=UTC)
    )


def render_listing(accounts: list[Account], search: str = "") -> str:
    """The accounts page's HTML for these rows, exactly as the service renders it."""
    request = Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/accounts_page",
            "headers": [],
            "query_string": b"",
        }
    )
    query = ListingQuery(limit=25, offset=0, search=search)
    page = AccountPage(items=accounts, total=len(accounts), limit=25, offset=0)
    renderer = PageRenderer(build_templates(), AccountsUISettings())
    response = renderer.render(
        request,
        "accounts.html",
        {
            "accounts": accounts,
            "query": query,
            "pagination": paginate(query, page),
            "page_sizes": list(PAGE_SIZES),
            "roles": ROLES,
            "notice": "",
        },
    )
    return bytes(response.body).decode()
