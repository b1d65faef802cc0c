"""The page's two cookies: the session (the admin's token) and the CSRF nonce.

Both are HttpOnly (no script of ours reads them, so no injected one can),
SameSite=Strict (never sent on a request another site started), scoped to the
page's path, and Secure whenever the browser reached us over TLS. The session
cookie has no Max-Age: it ends with the browser session, and a token that
expires before then is refused by the auth service, which sends the user back
to the sign-in form with a message instead of a silently empty page.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gatehouse_accounts_ui.headers import scope_over_tls
from gatehouse_accounts_ui.paths import PREFIX
from gatehouse_accounts_ui.settings import AccountsUISettings


def _secure(request: Request, settings: AccountsUISettings) -> bool:
    if settings.cookie_secure == "auto":
        return scope_over_tls(request.scope)
    return settings.cookie_secure == "always"


def set_cookie(
    response: Response, request: Request, settings: AccountsUISettings, name: str, value: str
) -> None:
    response.set_cookie(
        name,
        value,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_secure(request, settings),
    )


def delete_cookie(
    response: Response, request: Request, settings: AccountsUISettings, name: str
) -> None:
    response.delete_cookie(
        name,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_secure(request, settings),
    )
