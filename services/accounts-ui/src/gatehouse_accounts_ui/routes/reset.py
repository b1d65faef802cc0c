"""``/accounts_page/password-reset?token=...``: the owner of a reset link picks a new password.

No session: the link's token is the credential. It travels in the form (never
in a cookie), and the page's ``Referrer-Policy: same-origin`` keeps the
address, token included, from leaking to another site. Auth decides whether
the token is still good; a refused new password leaves the link usable.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gatehouse_accounts_ui.deps import AuthClientDep, RendererDep, verify_csrf
from gatehouse_accounts_ui.errors import PasswordRefused, ResetLinkInvalid
from gatehouse_accounts_ui.paths import RESET_PATH, page_url

router = APIRouter(tags=["password reset"])

MAX_TOKEN = 512
MAX_PASSWORD = 1024


def _form(
    renderer: RendererDep, request: Request, token: str, error: str = "", status_code: int = 200
) -> HTMLResponse:
    return renderer.render(
        request,
        "reset.html",
        {"token": token, "error": error},
        status_code=status_code,
    )


def _token(value: str) -> str:
    """The token if it could be one (printable ASCII, bounded), else empty."""
    value = value.strip()
    if len(value) > MAX_TOKEN or not value.isascii() or not value.isprintable():
        return ""
    return value


@router.get(RESET_PATH, response_class=HTMLResponse, summary="Choose a new password (reset link)")
async def reset_form(request: Request, renderer: RendererDep) -> HTMLResponse:
    token = _token(request.query_params.get("token", ""))
    if not token:
        return _form(renderer, request, "", "This reset link is incomplete.", 400)
    return _form(renderer, request, token)


@router.post(RESET_PATH, summary="Use a reset link", dependencies=[Depends(verify_csrf)])
async def reset_password(
    request: Request,
    renderer: RendererDep,
    auth: AuthClientDep,
    token: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    new_password_again: Annotated[str, Form()] = "",
) -> Response:
    token = _token(token)
    bad = status.HTTP_400_BAD_REQUEST
    if not token:
        return _form(renderer, request, "", "This reset link is incomplete.", bad)
    if not new_password or max(len(new_password), len(new_password_again)) > MAX_PASSWORD:
        return _form(renderer, request, token, "Enter a new password.", bad)
    if new_password != new_password_again:
        return _form(renderer, request, token, "The two new passwords are not the same.", bad)
    try:
        await auth.reset_password(token, new_password)
    except ResetLinkInvalid:
        return _form(
            renderer,
            request,
            "",
            "This reset link no longer works (used, replaced or expired). "
            "Ask an admin for a new one.",
            bad,
        )
    except PasswordRefused as exc:
        message = (
            f"The new password was refused: {exc.reason}"
            if exc.reason
            else ("The new password was refused.")
        )
        return _form(renderer, request, token, message, bad)
    return RedirectResponse(
        page_url(notice="password_reset"), status_code=status.HTTP_303_SEE_OTHER
    )
