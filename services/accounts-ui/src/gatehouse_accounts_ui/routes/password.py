"""``/accounts_page/password``: the signed-in person changes their own password.

Any signed-in account may (not only admins). Auth checks the current
password (wrong guesses count like failed sign-ins), applies the sign-up
rules to the new one, keeps this session and ends every other one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gatehouse_accounts_ui.deps import BrowserSessionDep, RendererDep, verify_csrf
from gatehouse_accounts_ui.errors import PasswordRefused, WrongPassword
from gatehouse_accounts_ui.notices import notice_of
from gatehouse_accounts_ui.paths import PASSWORD_PATH, page_url

router = APIRouter(tags=["password"])

MAX_PASSWORD = 1024


def _form(
    renderer: RendererDep, request: Request, error: str = "", status_code: int = 200
) -> HTMLResponse:
    return renderer.render(
        request,
        "password.html",
        {"error": error, "notice": "" if error else notice_of(request)},
        status_code=status_code,
    )


@router.get(PASSWORD_PATH, response_class=HTMLResponse, summary="The change-password form")
async def password_form(
    request: Request, renderer: RendererDep, session: BrowserSessionDep
) -> HTMLResponse:
    if not session.signed_in:
        return renderer.signin(request)
    return _form(renderer, request)


@router.post(
    PASSWORD_PATH,
    summary="Change your own password (other sessions end)",
    dependencies=[Depends(verify_csrf)],
)
async def change_password(
    request: Request,
    renderer: RendererDep,
    session: BrowserSessionDep,
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    new_password_again: Annotated[str, Form()] = "",
) -> Response:
    if not session.signed_in:
        return renderer.signin(request, error="Sign in first.", status_code=401)
    bad = status.HTTP_400_BAD_REQUEST
    if not current_password or not new_password:
        return _form(renderer, request, "Enter your current password and a new one.", bad)
    if max(len(current_password), len(new_password), len(new_password_again)) > MAX_PASSWORD:
        return _form(renderer, request, "That password is far too long.", bad)
    if new_password != new_password_again:
        return _form(renderer, request, "The two new passwords are not the same.", bad)
    try:
        await session.call(
            lambda token: session.auth.change_password(token, current_password, new_password)
        )
    except WrongPassword:
        response = _form(
            renderer, request, "Your current password is not right.", status.HTTP_403_FORBIDDEN
        )
        return session.store(response)
    except PasswordRefused as exc:
        message = (
            f"The new password was refused: {exc.reason}"
            if exc.reason
            else ("The new password was refused.")
        )
        return session.store(_form(renderer, request, message, bad))
    done = RedirectResponse(
        page_url(PASSWORD_PATH, notice="password_changed"), status_code=status.HTTP_303_SEE_OTHER
    )
    return session.store(done)
