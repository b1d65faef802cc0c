"""The accounts page's only view of the data: two calls to the auth service's API.

``POST /login`` signs an admin in; ``GET /accounts`` lists the accounts with the
admin's bearer token. Every transport failure, timeout or 5xx becomes
:class:`~gatehouse_accounts_ui.errors.AuthUnavailable` (a 503 page), every answer
that does not fit the contract :class:`~gatehouse_accounts_ui.errors.AuthBadAnswer`,
so the user never sees a traceback.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, TypeVar

import httpx
from fastapi import status
from pydantic import BaseModel, ValidationError

from gatehouse_accounts_ui.errors import (
    AuthBadAnswer,
    AuthUnavailable,
    InvalidCredentials,
    LoginRejected,
    LoginThrottled,
    NotAdmin,
    SessionExpired,
)
from gatehouse_common.request_id import REQUEST_ID_HEADER, current_request_id

logger = logging.getLogger(__name__)

_MAX_RETRY_AFTER = 3600
ModelT = TypeVar("ModelT", bound=BaseModel)


class Account(BaseModel):
    id: int | str
    username: str
    email: str
    role: str = ""
    created_at: datetime


class AccountPage(BaseModel):
    items: list[Account]
    total: int
    limit: int
    offset: int


class LoginResult(BaseModel):
    access_token: str
    expires_in: int | None = None


def _retry_after(response: httpx.Response) -> int:
    try:
        seconds = int(response.headers.get("retry-after", "60"))
    except ValueError:
        seconds = 60
    return max(1, min(seconds, _MAX_RETRY_AFTER))


class AuthClient:
    """Calls to the auth service over one pooled ``httpx.AsyncClient``."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        request_id = current_request_id()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        try:
            response = await self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            logger.warning("auth service timed out on %s %s", method, path)
            raise AuthUnavailable("The auth service did not answer in time.") from exc
        except httpx.HTTPError as exc:
            logger.warning("auth service unreachable on %s %s: %s", method, path, exc)
            raise AuthUnavailable("The auth service cannot be reached right now.") from exc
        if response.status_code >= status.HTTP_500_INTERNAL_SERVER_ERROR:
            logger.warning("auth service answered %d on %s %s", response.status_code, method, path)
            raise AuthUnavailable("The auth service is failing right now.")
        return response

    @staticmethod
    def _parse(model: type[ModelT], response: httpx.Response) -> ModelT:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            logger.warning("auth service answer does not fit %s: %s", model.__name__, exc)
            raise AuthBadAnswer("The auth service answered in an unexpected way.") from exc

    async def login(self, email: str, password: str, *, forwarded_for: str = "") -> LoginResult:
        """Sign in; ``forwarded_for`` names the browser, so auth rate-limits per person.

        Without it every sign-in would count against this service's own
        address and one person's guessing would lock every admin out.
        """
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        response = await self._send(
            "POST", "/login", json={"email": email, "password": password}, headers=headers
        )
        if response.status_code == status.HTTP_200_OK:
            return self._parse(LoginResult, response)
        if response.status_code == status.HTTP_401_UNAUTHORIZED:
            raise InvalidCredentials()
        if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
            raise LoginThrottled(_retry_after(response))
        if response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT:
            raise LoginRejected()
        logger.warning("auth service answered %d to a login", response.status_code)
        raise AuthBadAnswer("The auth service refused the sign-in unexpectedly.")

    async def list_accounts(
        self, token: str, *, limit: int, offset: int, search: str
    ) -> AccountPage:
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if search:
            params["search"] = search
        response = await self._send(
            "GET", "/accounts", params=params, headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code == status.HTTP_200_OK:
            return self._parse(AccountPage, response)
        if response.status_code == status.HTTP_401_UNAUTHORIZED:
            raise SessionExpired()
        if response.status_code == status.HTTP_403_FORBIDDEN:
            raise NotAdmin("Your account can sign in, but only administrators may see accounts.")
        logger.warning("auth service answered %d to an accounts listing", response.status_code)
        raise AuthBadAnswer("The auth service refused the listing unexpectedly.")
