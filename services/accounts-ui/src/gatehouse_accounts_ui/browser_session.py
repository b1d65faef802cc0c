"""The signed-in person's tokens: a short access token, renewed with the refresh token.

Both live in HttpOnly, SameSite=Strict cookies (:mod:`.cookies`): the access
token (``session_cookie``) is what every call to auth carries; the refresh
token (``refresh_cookie``) is sent to auth only to renew it. When auth says
401 to a call, the session is renewed once (``POST /token/refresh``, which
rotates the refresh token) and the call is made again; the response then
carries both new cookies (:meth:`BrowserSession.store`). When renewing fails
too, :class:`~gatehouse_accounts_ui.errors.SessionExpired` goes up and the
route shows the sign-in form.

Auth treats a refresh token presented twice as stolen and ends the session,
so two requests renewing at the same moment sign the person out; the page
makes one call per page view, so that needs two tabs expiring at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from gatehouse_accounts_ui.auth_client import AuthClient
from gatehouse_accounts_ui.cookies import delete_cookie, set_cookie
from gatehouse_accounts_ui.errors import SessionExpired
from gatehouse_accounts_ui.settings import AccountsUISettings

T = TypeVar("T")
ResponseT = TypeVar("ResponseT", bound=Response)
MAX_TOKEN_CHARS = 8192


def cookie_token(request: Request, name: str) -> str | None:
    """A token cookie the browser sent, if it is a sane one."""
    token = request.cookies.get(name)
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    return token


class BrowserSession:
    """One request's view of the session cookies, renewing them at most once."""

    def __init__(self, request: Request, settings: AccountsUISettings, auth: AuthClient) -> None:
        self.request = request
        self.settings = settings
        self.auth = auth
        self.access = cookie_token(request, settings.session_cookie)
        self.refresh = cookie_token(request, settings.refresh_cookie)
        self.renewed = False

    @property
    def signed_in(self) -> bool:
        return self.access is not None or self.refresh is not None

    async def call(self, work: Callable[[str], Awaitable[T]]) -> T:
        """``work(access_token)``, renewing the session once if auth says it expired."""
        if self.access is not None:
            try:
                return await work(self.access)
            except SessionExpired:
                if self.refresh is None or self.renewed:
                    raise
        await self.renew()
        if self.access is None:  # renew() sets it or raises
            raise SessionExpired()
        return await work(self.access)

    async def renew(self) -> None:
        if self.refresh is None or self.renewed:
            raise SessionExpired()
        self.renewed = True
        pair = await self.auth.refresh(self.refresh)
        self.access = pair.access_token
        self.refresh = pair.refresh_token or self.refresh

    def store(self, response: ResponseT) -> ResponseT:
        """Put renewed tokens on ``response`` (nothing when nothing was renewed)."""
        if self.renewed and self.access is not None:
            set_cookie(
                response, self.request, self.settings, self.settings.session_cookie, self.access
            )
            if self.refresh is not None:
                set_cookie(
                    response,
                    self.request,
                    self.settings,
                    self.settings.refresh_cookie,
                    self.refresh,
                )
        return response

    def forget(self, response: ResponseT) -> ResponseT:
        """Drop both token cookies (signed out, or the session is over)."""
        delete_cookie(response, self.request, self.settings, self.settings.session_cookie)
        delete_cookie(response, self.request, self.settings, self.settings.refresh_cookie)
        return response
