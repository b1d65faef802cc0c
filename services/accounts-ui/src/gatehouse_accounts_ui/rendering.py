"""Rendering the page's templates, each with a CSRF token for its forms.

Jinja2 with autoescape on for every template, whatever its file name, and
StrictUndefined so a misspelt variable fails a test instead of rendering empty.
Every rendered page carries a form token; when the browser has no valid nonce
cookie yet, the response sets one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

from gatehouse_accounts_ui import csrf
from gatehouse_accounts_ui.cookies import set_cookie
from gatehouse_accounts_ui.errors import PageError
from gatehouse_accounts_ui.paths import LOGIN_PATH, LOGOUT_PATH, PREFIX, STATIC_PREFIX
from gatehouse_accounts_ui.settings import AccountsUISettings


def _as_utc(moment: datetime) -> datetime:
    """Naive times from the auth service are UTC (it stores them so)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_utc(moment: datetime) -> str:
    return _as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def format_iso(moment: datetime) -> str:
    return _as_utc(moment).isoformat()


def build_templates() -> Jinja2Templates:
    env = Environment(
        loader=PackageLoader("gatehouse_accounts_ui", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        prefix=PREFIX, static=STATIC_PREFIX, login_path=LOGIN_PATH, logout_path=LOGOUT_PATH
    )
    env.filters.update(utc=format_utc, iso=format_iso)
    return Jinja2Templates(env=env)


class PageRenderer:
    """Renders a template as a full page, with the CSRF nonce cookie it needs."""

    def __init__(self, templates: Jinja2Templates, settings: AccountsUISettings) -> None:
        self.templates = templates
        self.settings = settings

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        cookie = request.cookies.get(self.settings.csrf_cookie)
        fresh = cookie is None or not csrf.valid_nonce(cookie)
        nonce = csrf.new_nonce() if cookie is None or fresh else cookie
        signed_in = bool(request.cookies.get(self.settings.session_cookie))
        response = self.templates.TemplateResponse(
            request,
            template,
            {
                "csrf_token": csrf.sign(self.settings.csrf_key, nonce),
                "signed_in": signed_in,
                **(context or {}),
            },
            status_code=status_code,
            headers=dict(headers or {}),
        )
        if fresh:
            set_cookie(response, request, self.settings, self.settings.csrf_cookie, nonce)
        return response

    def error(self, request: Request, exc: PageError) -> HTMLResponse:
        return self.render(
            request,
            "error.html",
            {"title": exc.title, "message": exc.message, "status_code": exc.status_code},
            status_code=exc.status_code,
            headers=exc.headers,
        )
