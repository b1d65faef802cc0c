"""FastAPI dependencies of the page's routes, as ``Annotated`` aliases.

Everything long-lived (settings, the auth client, the renderer) hangs off
``app.state``, put there by the app factory and its lifespan, so a test can
build an app with settings of its own and nothing is a module global.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gatehouse_accounts_ui import csrf
from gatehouse_accounts_ui.auth_client import AuthClient
from gatehouse_accounts_ui.browser_session import BrowserSession
from gatehouse_accounts_ui.errors import CsrfRejected, FormTooLarge, LengthRequired
from gatehouse_accounts_ui.rendering import PageRenderer
from gatehouse_accounts_ui.settings import AccountsUISettings

# The page's forms (sign-in, a password change, an admin action) need a few
# hundred bytes. Anything far beyond is refused before it is parsed.
MAX_FORM_BYTES = 16 * 1024


def get_settings(request: Request) -> AccountsUISettings:
    settings: AccountsUISettings = request.app.state.settings
    return settings


def get_auth_client(request: Request) -> AuthClient:
    client: AuthClient = request.app.state.auth_client
    return client


def get_renderer(request: Request) -> PageRenderer:
    renderer: PageRenderer = request.app.state.renderer
    return renderer


SettingsDep = Annotated[AccountsUISettings, Depends(get_settings)]
AuthClientDep = Annotated[AuthClient, Depends(get_auth_client)]
RendererDep = Annotated[PageRenderer, Depends(get_renderer)]


def get_browser_session(
    request: Request, settings: SettingsDep, auth: AuthClientDep
) -> BrowserSession:
    """The person's tokens from their cookies (either may be missing)."""
    return BrowserSession(request, settings, auth)


BrowserSessionDep = Annotated[BrowserSession, Depends(get_browser_session)]


async def verify_csrf(request: Request, settings: SettingsDep) -> None:
    """Refuse a form post (403) unless its token signs the cookie's nonce and its Origin is ours."""
    # Browsers always send Content-Length with a form; a chunked body of no
    # stated size would be parsed whole before any limit could apply.
    length = request.headers.get("content-length")
    if length is None or not length.isascii() or not length.isdigit():
        raise LengthRequired("A form post must state its length (Content-Length).")
    if int(length) > MAX_FORM_BYTES:
        raise FormTooLarge("This form post is far larger than the page's forms send.")
    origin = request.headers.get("origin")
    if origin is not None and not csrf.origin_allowed(
        origin, request.headers, settings.trusted_origins
    ):
        raise CsrfRejected("This form was posted from another site, so it was refused.")
    form = await request.form()
    token = form.get("csrf_token")
    nonce = request.cookies.get(settings.csrf_cookie)
    if not isinstance(token, str) or not csrf.token_matches(settings.csrf_key, nonce, token):
        raise CsrfRejected(
            "The form's security token is missing or out of date. Reload the page and try again."
        )
