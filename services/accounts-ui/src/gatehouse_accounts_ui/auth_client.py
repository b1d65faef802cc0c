"""The accounts page's only view of the data: calls to the auth service's API.

Sign-in (``POST /login``), the session's upkeep (``POST /token/refresh``,
``POST /logout``), the listing (``GET /accounts``), the admin actions
(``/accounts/{id}/...``, ``DELETE /lockouts/{email}``), the audit log
(``GET /audit``), the owner's password change (``PUT /account/password``),
their second factor (``GET /me``, ``/account/totp``) and the use of a reset
link (``POST /password/reset``).
Every transport failure, timeout or 5xx becomes
:class:`~gatehouse_accounts_ui.errors.AuthUnavailable` (a 503 page), every answer
that does not fit the contract :class:`~gatehouse_accounts_ui.errors.AuthBadAnswer`,
so the user never sees a traceback. What auth refuses maps to one page error
each (:func:`_refusal`), or to a form message where a form can be corrected.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from fastapi import status
from pydantic import BaseModel, ValidationError

from gatehouse_accounts_ui.auth_models import (
    Account,
    AccountPage,
    AuditPage,
    RecoveryCodes,
    ResetLink,
    TokenPair,
    TotpEnrolment,
)
from gatehouse_accounts_ui.errors import (
    ActionConflict,
    ActionRejected,
    ActionThrottled,
    AuthBadAnswer,
    AuthUnavailable,
    InvalidCredentials,
    LoginRejected,
    LoginThrottled,
    NotAdmin,
    PageNotFound,
    PasswordRefused,
    ResetLinkInvalid,
    SessionExpired,
    TotpEnrolmentRequired,
    TotpRequired,
    TotpStateChanged,
    WrongPassword,
    WrongTotpCode,
)
from gatehouse_common.request_id import REQUEST_ID_HEADER, current_request_id

logger = logging.getLogger(__name__)

_MAX_RETRY_AFTER = 3600
_MAX_DETAIL = 300
ModelT = TypeVar("ModelT", bound=BaseModel)


def _retry_after(response: httpx.Response) -> int:
    try:
        seconds = int(response.headers.get("retry-after", "60"))
    except ValueError:
        seconds = 60
    return max(1, min(seconds, _MAX_RETRY_AFTER))


def _error(response: httpx.Response) -> tuple[str, str]:
    """Auth's error code and human detail (bounded), or empty strings."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    code, detail = body.get("error"), body.get("detail")
    return (
        code if isinstance(code, str) else "",
        detail[:_MAX_DETAIL] if isinstance(detail, str) else "",
    )


def _refusal(response: httpx.Response, what: str) -> Exception:
    """The page error for an admin call auth refused."""
    code = response.status_code
    _, detail = _error(response)
    if code == status.HTTP_401_UNAUTHORIZED:
        return SessionExpired()
    if code == status.HTTP_403_FORBIDDEN:
        return _forbidden(
            response, "Your account can sign in, but only administrators may do this."
        )
    if code == status.HTTP_404_NOT_FOUND:
        return PageNotFound(detail or f"There is no such {what}.")
    if code == status.HTTP_409_CONFLICT:
        return ActionConflict(detail or "The auth service refused this change.")
    if code in (status.HTTP_400_BAD_REQUEST, status.HTTP_422_UNPROCESSABLE_CONTENT):
        return ActionRejected(detail or "The auth service refused this request.")
    if code == status.HTTP_429_TOO_MANY_REQUESTS:
        seconds = _retry_after(response)
        return ActionThrottled(
            f"Too many attempts. Try again in {seconds} seconds.",
            headers={"Retry-After": str(seconds)},
        )
    logger.warning("auth service answered %d to a %s call", code, what)
    return AuthBadAnswer("The auth service refused this request unexpectedly.")


def _forbidden(response: httpx.Response, message: str) -> Exception:
    """Auth's 403 on an admin call: not an admin, or an admin who must enrol TOTP first."""
    code, _ = _error(response)
    if code == "totp_enrolment_required":
        return TotpEnrolmentRequired()
    return NotAdmin(message)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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

    async def _admin(
        self, method: str, path: str, token: str, what: str, **kwargs: Any
    ) -> httpx.Response:
        response = await self._send(method, path, headers=_bearer(token), **kwargs)
        if response.is_success:
            return response
        raise _refusal(response, what)

    # Signing in and the session ------------------------------------------

    async def login(
        self, email: str, password: str, *, totp_code: str = "", forwarded_for: str = ""
    ) -> TokenPair:
        """Sign in; ``forwarded_for`` names the browser, so auth rate-limits per person.

        Without it every sign-in would count against this service's own
        address and one person's guessing would lock every admin out.
        """
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        body = {"email": email, "password": password}
        if totp_code:
            body["totp_code"] = totp_code
        response = await self._send("POST", "/login", json=body, headers=headers)
        if response.status_code == status.HTTP_200_OK:
            return self._parse(TokenPair, response)
        if response.status_code == status.HTTP_401_UNAUTHORIZED:
            code, _ = _error(response)
            if code in ("totp_required", "invalid_totp_code"):
                raise TotpRequired(wrong=code == "invalid_totp_code")
            raise InvalidCredentials()
        if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
            raise LoginThrottled(_retry_after(response))
        if response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT:
            raise LoginRejected()
        logger.warning("auth service answered %d to a login", response.status_code)
        raise AuthBadAnswer("The auth service refused the sign-in unexpectedly.")

    async def refresh(self, refresh_token: str) -> TokenPair:
        """A new token pair for the refresh token; :class:`SessionExpired` when refused."""
        response = await self._send("POST", "/token/refresh", json={"refresh_token": refresh_token})
        if response.status_code == status.HTTP_200_OK:
            return self._parse(TokenPair, response)
        if response.status_code in (
            status.HTTP_400_BAD_REQUEST,
            status.HTTP_401_UNAUTHORIZED,
            status.HTTP_422_UNPROCESSABLE_CONTENT,
        ):
            raise SessionExpired()
        logger.warning("auth service answered %d to a refresh", response.status_code)
        raise AuthBadAnswer("The auth service refused to renew the session unexpectedly.")

    async def logout(self, *, access_token: str | None, refresh_token: str | None) -> bool:
        """End the session at auth (its refresh family and this access token); True when done."""
        body = {"refresh_token": refresh_token} if refresh_token else {}
        headers = _bearer(access_token) if access_token else {}
        response = await self._send("POST", "/logout", json=body, headers=headers)
        return response.is_success

    # Reading ----------------------------------------------------------------

    async def list_accounts(
        self, token: str, *, limit: int, offset: int, search: str
    ) -> AccountPage:
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if search:
            params["search"] = search
        response = await self._send("GET", "/accounts", params=params, headers=_bearer(token))
        if response.status_code == status.HTTP_200_OK:
            return self._parse(AccountPage, response)
        if response.status_code == status.HTTP_401_UNAUTHORIZED:
            raise SessionExpired()
        if response.status_code == status.HTTP_403_FORBIDDEN:
            raise _forbidden(
                response, "Your account can sign in, but only administrators may see accounts."
            )
        logger.warning("auth service answered %d to an accounts listing", response.status_code)
        raise AuthBadAnswer("The auth service refused the listing unexpectedly.")

    async def list_audit(self, token: str, params: dict[str, str | int]) -> AuditPage:
        response = await self._admin("GET", "/audit", token, "audit listing", params=params)
        return self._parse(AuditPage, response)

    # Admin actions -----------------------------------------------------------

    async def set_disabled(self, token: str, account_id: int, disabled: bool) -> Account:
        action = "disable" if disabled else "enable"
        response = await self._admin("POST", f"/accounts/{account_id}/{action}", token, "account")
        return self._parse(Account, response)

    async def set_role(self, token: str, account_id: int, role: str) -> Account:
        response = await self._admin(
            "PUT", f"/accounts/{account_id}/role", token, "account", json={"role": role}
        )
        return self._parse(Account, response)

    async def sign_out_everywhere(self, token: str, account_id: int) -> None:
        await self._admin("POST", f"/accounts/{account_id}/sign-out", token, "account")

    async def issue_reset_link(self, token: str, account_id: int) -> ResetLink:
        response = await self._admin(
            "POST", f"/accounts/{account_id}/password-reset", token, "account"
        )
        return self._parse(ResetLink, response)

    async def lift_lockout(self, token: str, email: str) -> bool:
        """True when a lockout was lifted, False when none was in force."""
        response = await self._send(
            "DELETE", f"/lockouts/{quote(email, safe='@')}", headers=_bearer(token)
        )
        if response.is_success:
            return True
        if response.status_code == status.HTTP_404_NOT_FOUND:
            return False
        raise _refusal(response, "lockout")

    # The signed-in person's own account --------------------------------------

    async def change_password(self, token: str, current: str, new: str) -> None:
        """Change the caller's password; their other sessions end."""
        response = await self._send(
            "PUT",
            "/account/password",
            json={"current_password": current, "new_password": new},
            headers=_bearer(token),
        )
        if response.is_success:
            return
        code, detail = _error(response)
        if response.status_code == status.HTTP_403_FORBIDDEN and code == "wrong_password":
            raise WrongPassword()
        if response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT:
            raise PasswordRefused(_field_messages(response) or detail)
        raise _refusal(response, "account")

    async def me(self, token: str) -> Account:
        """The signed-in person's own account (whether TOTP is on, say)."""
        response = await self._send("GET", "/me", headers=_bearer(token))
        if response.is_success:
            return self._parse(Account, response)
        raise _refusal(response, "account")

    async def start_totp(self, token: str) -> TotpEnrolment:
        """A new pending TOTP secret (it counts only once a code confirms it)."""
        response = await self._totp("POST", "/account/totp", token)
        return self._parse(TotpEnrolment, response)

    async def confirm_totp(self, token: str, code: str) -> list[str]:
        """Turn TOTP on with a code from the app; the recovery codes, to show once."""
        response = await self._totp("POST", "/account/totp/confirm", token, code)
        return self._parse(RecoveryCodes, response).recovery_codes

    async def disable_totp(self, token: str, code: str) -> None:
        """Turn TOTP off with a current code or a recovery code."""
        await self._totp("DELETE", "/account/totp", token, code)

    async def _totp(
        self, method: str, path: str, token: str, code: str | None = None
    ) -> httpx.Response:
        """A call to ``/account/totp*``: what a person can fix in the form is a form error."""
        body = {"json": {"code": code}} if code is not None else {}
        response = await self._send(method, path, headers=_bearer(token), **body)
        if response.is_success:
            return response
        error, _ = _error(response)
        if response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT or (
            response.status_code == status.HTTP_400_BAD_REQUEST and error == "invalid_totp_code"
        ):
            raise WrongTotpCode()
        if response.status_code == status.HTTP_409_CONFLICT:
            raise TotpStateChanged(
                "Two-factor sign-in is already on."
                if error == "totp_already_enabled"
                else "Start the set-up again: there is no pending secret to confirm."
            )
        if response.status_code == status.HTTP_404_NOT_FOUND:
            raise TotpStateChanged("Two-factor sign-in is already off.")
        raise _refusal(response, "second factor")

    async def reset_password(self, token: str, new: str) -> None:
        """Use a one-time reset link's token (no session needed)."""
        response = await self._send(
            "POST", "/password/reset", json={"token": token, "new_password": new}
        )
        if response.is_success:
            return
        code, detail = _error(response)
        if response.status_code == status.HTTP_400_BAD_REQUEST and code == "invalid_reset_token":
            raise ResetLinkInvalid()
        if response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT:
            raise PasswordRefused(_field_messages(response) or detail)
        raise _refusal(response, "reset link")


def _field_messages(response: httpx.Response) -> str:
    """The messages of a 422's ``fields`` list, joined: what to fix in the form."""
    try:
        fields = response.json().get("fields", [])
    except (ValueError, AttributeError):
        return ""
    if not isinstance(fields, list):
        return ""
    messages = [str(f.get("message", ""))[:_MAX_DETAIL] for f in fields if isinstance(f, dict)]
    return "; ".join(m for m in messages if m)
