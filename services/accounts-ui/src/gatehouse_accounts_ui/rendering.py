"""Rendering the page's templates, each with a CSRF token for its forms.

Jinja2 with autoescape on for every template, whatever its file name, and
StrictUndefined so a misspelt variable fails a test instead of rendering empty.
Every rendered page carries a form token; when the browser has no valid nonce
cookie yet, the response sets one.
"""

from __future__ import annotations

import json
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
from gatehouse_accounts_ui.paths import (
    AUDIT_PATH,
    LIFT_LOCKOUT_PATH,
    LOGIN_PATH,
    LOGOUT_PATH,
    PASSWORD_PATH,
    PREFIX,
    RESET_PATH,
    STATIC_PREFIX,
    TOTP_CONFIRM_PATH,
    TOTP_DISABLE_PATH,
    TOTP_PATH,
    TOTP_START_PATH,
    action_path,
)
from gatehouse_accounts_ui.settings import AccountsUISettings


def _as_utc(moment: datetime) -> datetime:
    """Naive times from the auth service are UTC (it stores them so)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_utc(moment: datetime) -> str:
    return _as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def format_iso(moment: datetime) -> str:
    return _as_utc(moment).isoformat()


MAX_DETAIL_CHARS = 500


def as_json(value: Any) -> str:
    """An audit row's detail as compact JSON text, cut short (escaped by the template)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= MAX_DETAIL_CHARS else text[:MAX_DETAIL_CHARS] + "…"


def build_templates() -> Jinja2Templates:
    env = Environment(
        loader=PackageLoader("gatehouse_accounts_ui", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        prefix=PREFIX,
        static=STATIC_PREFIX,
        login_path=LOGIN_PATH,
        logout_path=LOGOUT_PATH,
        audit_path=AUDIT_PATH,
        password_path=PASSWORD_PATH,
        reset_path=RESET_PATH,
        lift_lockout_path=LIFT_LOCKOUT_PATH,
        totp_path=TOTP_PATH,
        totp_start_path=TOTP_START_PATH,
        totp_confirm_path=TOTP_CONFIRM_PATH,
        totp_disable_path=TOTP_DISABLE_PATH,
        action_path=action_path,
    )
    env.filters.update(utc=format_utc, iso=format_iso, as_json=as_json)
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
        signed_in = bool(
            request.cookies.get(self.settings.session_cookie)
            or request.cookies.get(self.settings.refresh_cookie)
        )
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

    def signin(
        self,
        request: Request,
        *,
        notice: str = "",
        error: str = "",
        email: str = "",
        totp: bool = False,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        signed_in: bool | None = None,
    ) -> HTMLResponse:
        """The sign-in form; ``totp`` asks for the authenticator code as well."""
        context: dict[str, Any] = {"notice": notice, "error": error, "email": email, "totp": totp}
        if signed_in is not None:
            context["signed_in"] = signed_in
        return self.render(
            request, "signin.html", context, status_code=status_code, headers=headers
        )

    def error(self, request: Request, exc: PageError) -> HTMLResponse:
        return self.render(
            request,
            "error.html",
            {
                "title": exc.title,
                "message": exc.message,
                "status_code": exc.status_code,
                "next_url": exc.next_url,
                "next_label": exc.next_label,
            },
            status_code=exc.status_code,
            headers=exc.headers,
        )
