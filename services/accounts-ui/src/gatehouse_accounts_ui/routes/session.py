"""Signing in and out: ``POST /accounts_page/login`` and ``POST /accounts_page/logout``.

Both are CSRF-checked form posts that answer with a 303 back to the page
(post/redirect/get), so a reload never re-posts a password. Signing in keeps
the access and refresh tokens in HttpOnly cookies (:mod:`..browser_session`);
an account with a second factor is asked for its code. Signing out ends the
session at auth too (``POST /logout``: its refresh family and this access
token, at every gateway), and forgets the cookies even when auth is down.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gatehouse_accounts_ui import csrf
from gatehouse_accounts_ui.cookies import set_cookie
from gatehouse_accounts_ui.deps import (
    AuthClientDep,
    BrowserSessionDep,
    RendererDep,
    SettingsDep,
    verify_csrf,
)
from gatehouse_accounts_ui.errors import (
    AuthBadAnswer,
    AuthUnavailable,
    InvalidCredentials,
    LoginRejected,
    LoginThrottled,
    TotpRequired,
)
from gatehouse_accounts_ui.paths import PREFIX, page_url
from gatehouse_accounts_ui.rendering import PageRenderer

logger = logging.getLogger(__name__)
router = APIRouter(prefix=PREFIX, tags=["session"], dependencies=[Depends(verify_csrf)])

MAX_EMAIL = 320
MAX_PASSWORD = 1024
MAX_TOTP_CODE = 64


def _forwarded_for(request: Request) -> str:
    """The X-Forwarded-For chain a proxy sent us, with the peer we saw appended."""
    chain = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    if request.client is not None:
        chain.append(request.client.host)
    return ", ".join(chain[-10:])


def _form_error(
    renderer: PageRenderer,
    request: Request,
    message: str,
    email: str,
    status_code: int,
    headers: dict[str, str] | None = None,
    *,
    totp: bool = False,
) -> HTMLResponse:
    return renderer.signin(
        request,
        error=message,
        email=email[:MAX_EMAIL],
        totp=totp,
        status_code=status_code,
        headers=headers,
    )


@router.post("/login", summary="Sign in through the auth service")
async def login(
    request: Request,
    settings: SettingsDep,
    auth: AuthClientDep,
    renderer: RendererDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    totp_code: Annotated[str, Form()] = "",
) -> Response:
    email = email.strip()
    totp_code = totp_code.strip()
    if not email or not password:
        return _form_error(
            renderer, request, "Enter your email and password.", email, status.HTTP_400_BAD_REQUEST
        )
    if len(email) > MAX_EMAIL or len(password) > MAX_PASSWORD or len(totp_code) > MAX_TOTP_CODE:
        return _form_error(
            renderer, request, "Email or password is too long.", email, status.HTTP_400_BAD_REQUEST
        )
    try:
        result = await auth.login(
            email, password, totp_code=totp_code, forwarded_for=_forwarded_for(request)
        )
    except TotpRequired as exc:
        message = (
            "That code is wrong or was already used."
            if exc.wrong
            else "Enter the code from your authenticator app (or a recovery code)."
        )
        return _form_error(
            renderer, request, message, email, status.HTTP_401_UNAUTHORIZED, totp=True
        )
    except InvalidCredentials:
        return _form_error(
            renderer,
            request,
            "Email or password is incorrect.",
            email,
            status.HTTP_401_UNAUTHORIZED,
        )
    except LoginRejected:
        return _form_error(
            renderer,
            request,
            "That does not look like an email address.",
            email,
            status.HTTP_400_BAD_REQUEST,
        )
    except LoginThrottled as exc:
        return _form_error(
            renderer,
            request,
            f"Too many sign-in attempts. Try again in {exc.retry_after} seconds.",
            email,
            status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(exc.retry_after)},
        )
    response = RedirectResponse(PREFIX, status_code=status.HTTP_303_SEE_OTHER)
    set_cookie(response, request, settings, settings.session_cookie, result.access_token)
    if result.refresh_token:
        set_cookie(response, request, settings, settings.refresh_cookie, result.refresh_token)
    # A new nonce once signed in: a token seen before sign-in is worth nothing after.
    set_cookie(response, request, settings, settings.csrf_cookie, csrf.new_nonce())
    return response


@router.post("/logout", summary="Sign out: end the session at auth and forget the tokens")
async def logout(request: Request, settings: SettingsDep, session: BrowserSessionDep) -> Response:
    if session.signed_in:
        try:
            ended = await session.auth.logout(
                access_token=session.access, refresh_token=session.refresh
            )
        except (AuthUnavailable, AuthBadAnswer):
            ended = False
        if not ended:
            # The cookies go anyway; the tokens then end by expiry.
            logger.warning("auth did not end the session at sign-out")
    response = RedirectResponse(
        page_url(notice="signed_out"), status_code=status.HTTP_303_SEE_OTHER
    )
    session.forget(response)
    set_cookie(response, request, settings, settings.csrf_cookie, csrf.new_nonce())
    return response
