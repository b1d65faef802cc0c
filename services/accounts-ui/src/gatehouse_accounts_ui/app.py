"""The accounts page's ASGI app: routes under ``/accounts_page``, health and metrics at the root."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from gatehouse_accounts_ui.auth_client import AuthClient
from gatehouse_accounts_ui.cookies import delete_cookie
from gatehouse_accounts_ui.errors import PageError, SessionExpired
from gatehouse_accounts_ui.headers import SecurityHeadersMiddleware
from gatehouse_accounts_ui.paths import STATIC_PREFIX
from gatehouse_accounts_ui.rendering import PageRenderer, build_templates
from gatehouse_accounts_ui.routes import actions, audit, page, password, reset, session, totp
from gatehouse_accounts_ui.settings import AccountsUISettings, get_settings
from gatehouse_common.app import create_service_app
from gatehouse_common.bodylimit import install_body_limit

logger = logging.getLogger(__name__)


MAX_BODY_BYTES = 64 * 1024


def create_app(settings: AccountsUISettings | None = None) -> FastAPI:
    """The app; its one ``httpx.AsyncClient`` to the auth service lives as long as its lifespan."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # trust_env off: a proxy variable meant for the outside world must not
        # reroute calls to a neighbour service.
        async with httpx.AsyncClient(
            base_url=settings.auth_url,
            timeout=settings.auth_timeout,
            trust_env=False,
            headers={"user-agent": "gatehouse-accounts-ui"},
        ) as http:
            app.state.auth_client = AuthClient(http)
            logger.info("accounts page ready, auth service at %s", settings.auth_url)
            yield

    # Readiness deliberately leaves the auth service out. While auth is down
    # this page still has the best answer for a person (its own 503 page);
    # withdrawing it from rotation would only swap that for the gateway's
    # JSON error. Auth's own readiness reports the outage.
    app = create_service_app(
        settings,
        checks={},
        lifespan=lifespan,
        title="Gatehouse accounts page",
        summary="Server-rendered accounts table for administrators",
        # Swagger UI loads its script from a CDN, which the page's CSP refuses.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    renderer = PageRenderer(build_templates(), settings)
    app.state.renderer = renderer

    async def page_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, PageError):  # pragma: no cover - registration guarantees it
            raise exc
        return renderer.error(request, exc)

    async def session_expired(request: Request, exc: Exception) -> Response:
        """Auth refused the tokens and renewing them failed: sign in again."""
        response = renderer.signin(
            request, error="Your session has expired. Please sign in again.", signed_in=False
        )
        for name in (settings.session_cookie, settings.refresh_cookie):
            delete_cookie(response, request, settings, name)
        return response

    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(SessionExpired, session_expired)
    app.include_router(page.router)
    app.include_router(session.router)
    app.include_router(actions.router)
    app.include_router(audit.router)
    app.include_router(password.router)
    app.include_router(reset.router)
    app.include_router(totp.router)
    app.include_router(totp.posts)
    app.mount(
        STATIC_PREFIX,
        StaticFiles(directory=str(files("gatehouse_accounts_ui") / "static")),
        name="static",
    )
    app.include_router(page.not_found_router)
    app.add_middleware(SecurityHeadersMiddleware, static_prefix=STATIC_PREFIX + "/")
    # Far above any form this page sends (those over MAX_FORM_BYTES get the page's
    # own 413), and refused before the form parser reads a byte.
    install_body_limit(app, MAX_BODY_BYTES)
    return app
