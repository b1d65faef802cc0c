"""``/accounts_page/two-factor``: the signed-in person's own TOTP second factor.

Any signed-in account may (an admin must, where auth requires it: auth's 403
``totp_enrolment_required`` on an admin page links here). Three CSRF-checked
posts, each one call to auth:

- ``start``: a new pending secret (``POST /account/totp``), shown once as
  text, as the ``otpauth://`` URI and as a QR code, with the form to confirm it;
- ``confirm``: a code from the app turns it on (``POST /account/totp/confirm``);
  the answer shows the recovery codes, once;
- ``disable``: a current code or a recovery code turns it off
  (``DELETE /account/totp``).

The secret and the recovery codes appear only in those answers (never in an
address or a cookie), which the browser never stores (``Cache-Control:
no-store``). A wrong or malformed code is a form message, not an error page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gatehouse_accounts_ui.browser_session import BrowserSession
from gatehouse_accounts_ui.deps import BrowserSessionDep, RendererDep, verify_csrf
from gatehouse_accounts_ui.errors import TotpStateChanged, WrongTotpCode
from gatehouse_accounts_ui.notices import notice_of
from gatehouse_accounts_ui.paths import (
    TOTP_CONFIRM_PATH,
    TOTP_DISABLE_PATH,
    TOTP_PATH,
    TOTP_START_PATH,
    page_url,
)
from gatehouse_accounts_ui.qr import qr_svg
from gatehouse_accounts_ui.rendering import PageRenderer

T = TypeVar("T")
router = APIRouter(tags=["two-factor"])
posts = APIRouter(tags=["two-factor"], dependencies=[Depends(verify_csrf)])

# Auth's own bound on a code (a TOTP code or a recovery code).
MAX_CODE = 32
NO_STORE = {"Cache-Control": "no-store"}
WRONG_CODE = "That code is wrong or was already used. Try the newest code from your app."
NO_CODE = "Enter the 6-digit code from your app (or, to turn it off, a recovery code)."
BAD, CONFLICT = status.HTTP_400_BAD_REQUEST, status.HTTP_409_CONFLICT
Code = Annotated[str, Form()]


def clean_code(raw: str) -> str:
    """The code as typed, less the spaces and dashes people copy with it; "" if unusable."""
    code = "".join(raw.split())
    if not code or len(code) > MAX_CODE or not code.isascii() or not code.isprintable():
        return ""
    return code


def _page(
    renderer: PageRenderer,
    request: Request,
    session: BrowserSession,
    template: str,
    context: dict[str, Any],
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    response = renderer.render(
        request, template, context, status_code=status_code, headers=NO_STORE
    )
    return session.store(response)


async def _overview(
    renderer: PageRenderer,
    request: Request,
    session: BrowserSession,
    error: str = "",
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    """The two-factor page: on or off, and the one form that changes it."""
    me = await session.call(session.auth.me)
    context = {
        "enabled": me.totp_enabled,
        "error": error,
        "notice": "" if error else notice_of(request),
    }
    return _page(renderer, request, session, "totp.html", context, status_code)


def _confirm_form(
    renderer: PageRenderer,
    request: Request,
    session: BrowserSession,
    *,
    secret: str = "",
    uri: str = "",
    error: str = "",
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    """The pending secret (when just made) and the form that confirms it."""
    context = {
        "secret": secret,
        "otpauth_uri": uri,
        "qr": qr_svg(uri) if uri else "",
        "error": error,
    }
    return _page(renderer, request, session, "totp_enrol.html", context, status_code)


@router.get(TOTP_PATH, response_class=HTMLResponse, summary="Your two-factor sign-in")
async def two_factor(
    request: Request, renderer: RendererDep, session: BrowserSessionDep
) -> HTMLResponse:
    if not session.signed_in:
        return renderer.signin(request)
    return await _overview(renderer, request, session)


@posts.post(TOTP_START_PATH, summary="Start setting up TOTP: a new secret, shown once")
async def start(request: Request, renderer: RendererDep, session: BrowserSessionDep) -> Response:
    if not session.signed_in:
        return renderer.signin(request, error="Sign in first.", status_code=401)
    try:
        enrolment = await session.call(session.auth.start_totp)
    except TotpStateChanged as exc:
        return await _overview(renderer, request, session, exc.message, CONFLICT)
    return _confirm_form(
        renderer, request, session, secret=enrolment.secret, uri=enrolment.otpauth_uri
    )


class CodeRefused(Exception):
    """A code the form cannot use (empty, or auth said wrong): ``message`` says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def _with_code(
    session: BrowserSession, raw: str, work: Callable[[str, str], Awaitable[T]]
) -> T:
    """``work(token, code)`` with the cleaned code; :class:`CodeRefused` when it cannot pass.

    :class:`TotpStateChanged` goes up as it is: that is no fault of the code.
    """
    cleaned = clean_code(raw)
    if not cleaned:
        raise CodeRefused(NO_CODE)
    try:
        return await session.call(lambda token: work(token, cleaned))
    except WrongTotpCode:
        raise CodeRefused(WRONG_CODE) from None


@posts.post(TOTP_CONFIRM_PATH, summary="Turn TOTP on with a code; shows the recovery codes once")
async def confirm(
    request: Request, renderer: RendererDep, session: BrowserSessionDep, code: Code = ""
) -> Response:
    if not session.signed_in:
        return renderer.signin(request, error="Sign in first.", status_code=401)
    try:
        codes = await _with_code(session, code, session.auth.confirm_totp)
    except CodeRefused as exc:
        return _confirm_form(renderer, request, session, error=exc.message, status_code=BAD)
    except TotpStateChanged as exc:
        return await _overview(renderer, request, session, exc.message, CONFLICT)
    return _page(renderer, request, session, "totp_codes.html", {"codes": codes})


@posts.post(TOTP_DISABLE_PATH, summary="Turn TOTP off with a code or a recovery code")
async def disable(
    request: Request, renderer: RendererDep, session: BrowserSessionDep, code: Code = ""
) -> Response:
    if not session.signed_in:
        return renderer.signin(request, error="Sign in first.", status_code=401)
    try:
        await _with_code(session, code, session.auth.disable_totp)
    except CodeRefused as exc:
        return await _overview(renderer, request, session, exc.message, BAD)
    except TotpStateChanged as exc:
        return await _overview(renderer, request, session, exc.message, CONFLICT)
    done = RedirectResponse(
        page_url(TOTP_PATH, notice="totp_disabled"), status_code=status.HTTP_303_SEE_OTHER
    )
    return session.store(done)
