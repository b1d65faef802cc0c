"""What an admin does to an account from its row: form posts, each through the auth API.

``POST /accounts_page/accounts/{id}/<action>`` for ``disable``, ``enable``,
``role``, ``sign-out`` and ``password-reset``, and ``POST
/accounts_page/lockouts/lift`` (by email). Every post is CSRF-checked. The
destructive ones (disable, change role, sign out everywhere, a new reset link,
which makes older ones void) first answer with a confirmation page whose own
form posts again with ``confirm=yes``; no script is involved. Done, they
redirect back to the page with a notice (post/redirect/get), except the reset
link, which is shown once on the answer itself (never in an address or a
cookie) and never stored by the browser (``Cache-Control: no-store``).

An id that is not a plain number in range is a 404 page before auth is asked;
auth's own 404 (no such account) is the same page.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gatehouse_accounts_ui.auth_client import AuthClient
from gatehouse_accounts_ui.deps import BrowserSessionDep, RendererDep, verify_csrf
from gatehouse_accounts_ui.errors import ActionRejected, PageNotFound
from gatehouse_accounts_ui.paths import LIFT_LOCKOUT_PATH, PREFIX, action_path, page_url
from gatehouse_accounts_ui.routes.page import ROLES

router = APIRouter(prefix=PREFIX, tags=["account actions"], dependencies=[Depends(verify_csrf)])

MAX_ACCOUNT_ID = 2**31 - 1
_ACCOUNT_ID = re.compile(r"^[0-9]{1,10}$")
MAX_LABEL = 320
MAX_EMAIL = 254
_EMAIL = re.compile(r"^[^\x00-\x1f\x7f@\s]+@[^\x00-\x1f\x7f@\s]+$")

Confirm = Annotated[str, Form()]
Label = Annotated[str, Form()]


@dataclass(frozen=True)
class Action:
    """How one action is confirmed and reported."""

    title: str
    question: str
    button: str
    notice: str


ACTIONS = {
    "disable": Action(
        "Disable the account",
        "It will not be able to sign in, and every session and token it holds ends now.",
        "Disable",
        "disabled",
    ),
    "role": Action(
        "Change the role",
        "Its current tokens stop working at once; it gets the new role when it signs in again.",
        "Change role",
        "role_changed",
    ),
    "sign-out": Action(
        "Sign out everywhere",
        "Every session and token of the account ends now, on every gateway.",
        "Sign out everywhere",
        "signed_out_everywhere",
    ),
    "password-reset": Action(
        "Issue a password-reset link",
        "A one-time link is made for you to pass on; any earlier link stops working.",
        "Issue link",
        "",
    ),
}


def account_id_of(raw: str) -> int:
    """The id from the address, or a 404 page: no junk reaches auth."""
    if not _ACCOUNT_ID.match(raw) or not 1 <= int(raw) <= MAX_ACCOUNT_ID:
        raise PageNotFound("There is no account with that id.")
    return int(raw)


def _done(notice: str) -> RedirectResponse:
    return RedirectResponse(page_url(notice=notice), status_code=status.HTTP_303_SEE_OTHER)


def _confirm(
    renderer: RendererDep,
    request: Request,
    account_id: int,
    action: str,
    label: str,
    extra: dict[str, str] | None = None,
) -> HTMLResponse:
    return renderer.render(
        request,
        "confirm.html",
        {
            "action": ACTIONS[action],
            "post_to": action_path(account_id, action),
            "account_id": account_id,
            "label": label[:MAX_LABEL],
            "extra": extra or {},
        },
    )


AccountWork = Callable[[AuthClient, str, int], Awaitable[object]]


def _confirmed(action: str, work: AccountWork) -> Callable[..., Awaitable[Response]]:
    """The endpoint of an action that only asks first, then does ``work`` and says so."""

    async def endpoint(
        request: Request,
        account_id: str,
        session: BrowserSessionDep,
        renderer: RendererDep,
        confirm: Confirm = "",
        label: Label = "",
    ) -> Response:
        ident = account_id_of(account_id)
        if confirm != "yes":
            return _confirm(renderer, request, ident, action, label)
        await session.call(lambda token: work(session.auth, token, ident))
        return session.store(_done(ACTIONS[action].notice))

    return endpoint


_CONFIRMED: dict[str, tuple[str, AccountWork]] = {
    "disable": (
        "Disable an account (confirmed)",
        lambda auth, token, ident: auth.set_disabled(token, ident, True),
    ),
    "sign-out": (
        "Sign an account out everywhere (confirmed)",
        lambda auth, token, ident: auth.sign_out_everywhere(token, ident),
    ),
}
for _action, (_summary, _work) in _CONFIRMED.items():
    router.add_api_route(
        f"/accounts/{{account_id}}/{_action}",
        _confirmed(_action, _work),
        methods=["POST"],
        summary=_summary,
        name=_action,
    )


@router.post("/accounts/{account_id}/enable", summary="Enable a disabled account")
async def enable(account_id: str, session: BrowserSessionDep) -> Response:
    ident = account_id_of(account_id)
    await session.call(lambda token: session.auth.set_disabled(token, ident, False))
    return session.store(_done("enabled"))


@router.post("/accounts/{account_id}/role", summary="Change an account's role (confirmed)")
async def change_role(
    request: Request,
    account_id: str,
    session: BrowserSessionDep,
    renderer: RendererDep,
    role: Annotated[str, Form()] = "",
    confirm: Confirm = "",
    label: Label = "",
) -> Response:
    ident = account_id_of(account_id)
    if role not in ROLES:
        raise ActionRejected(f"The role must be one of: {', '.join(ROLES)}.")
    if confirm != "yes":
        return _confirm(renderer, request, ident, "role", label, {"role": role})
    await session.call(lambda token: session.auth.set_role(token, ident, role))
    return session.store(_done("role_changed"))


@router.post(
    "/accounts/{account_id}/password-reset", summary="Issue a one-time reset link (confirmed)"
)
async def password_reset(
    request: Request,
    account_id: str,
    session: BrowserSessionDep,
    renderer: RendererDep,
    confirm: Confirm = "",
    label: Label = "",
) -> Response:
    ident = account_id_of(account_id)
    if confirm != "yes":
        return _confirm(renderer, request, ident, "password-reset", label)
    link = await session.call(lambda token: session.auth.issue_reset_link(token, ident))
    response = renderer.render(
        request,
        "reset_link.html",
        {"link": link, "label": label[:MAX_LABEL], "account_id": ident},
    )
    return session.store(response)


@router.post(LIFT_LOCKOUT_PATH.removeprefix(PREFIX), summary="Lift an email's sign-in lockouts")
async def lift_lockout(session: BrowserSessionDep, email: Annotated[str, Form()] = "") -> Response:
    email = email.strip()
    if len(email) > MAX_EMAIL or not _EMAIL.match(email):
        raise ActionRejected("That is not an email address an account could have.")
    lifted = await session.call(lambda token: session.auth.lift_lockout(token, email))
    return session.store(_done("lockout_lifted" if lifted else "no_lockout"))
