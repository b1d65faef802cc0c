"""What can go wrong while serving the page, each answered as an HTML page.

The page is for people in a browser, so its failures render the error template
(with the usual security headers) rather than the JSON body the APIs answer::

    PageError                 rendered as error.html with its status
    ├── BadQuery              400: a listing parameter is out of bounds
    ├── ActionRejected        400: auth refused an admin action's input (422/400)
    ├── CsrfRejected          403: form token missing/wrong, or a foreign Origin
    ├── NotAdmin              403: signed in, but the auth service says not an admin
    ├── TotpEnrolmentRequired 403: an admin must turn on two-factor sign-in first
    ├── PageNotFound          404: an address (or account id) the page does not have
    ├── ActionConflict        409: auth refused the change (it would leave no admin)
    ├── LengthRequired        411: a form post that does not say its size
    ├── FormTooLarge          413: a form post far bigger than the page's forms send
    ├── ActionThrottled       429: auth rate-limited the call (carries Retry-After)
    ├── AuthBadAnswer         502: the auth service answered something unexpected
    └── AuthUnavailable       503: the auth service cannot be reached in time

    AuthClientError           raised by AuthClient, handled by the routes
    ├── InvalidCredentials    POST /login said 401
    ├── TotpRequired          POST /login said 401 totp_required / invalid_totp_code
    ├── LoginThrottled        POST /login said 429 (carries Retry-After)
    ├── LoginRejected         POST /login said 422 (the email is not an email, say)
    ├── SessionExpired        401 on a call, and no refresh helped: back to sign-in
    ├── WrongPassword         PUT /account/password: the current password is wrong
    ├── PasswordRefused       a new password was refused (422: too weak, say)
    ├── WrongTotpCode         /account/totp*: the code is wrong, used or malformed (400/422)
    ├── TotpStateChanged      /account/totp*: already on, not started, not on (409/404)
    └── ResetLinkInvalid      POST /password/reset said 400 (used, superseded, expired)
"""

from __future__ import annotations

from fastapi import status

from gatehouse_accounts_ui.paths import TOTP_PATH


class PageError(Exception):
    """A failure shown to the user as a page of its own."""

    status_code: int = status.HTTP_500_INTERNAL_SERVER_ERROR
    title: str = "Something went wrong"
    # Where the page sends the person next, when that is not the accounts page.
    next_url: str = ""
    next_label: str = ""

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadQuery(PageError):
    status_code = status.HTTP_400_BAD_REQUEST
    title = "Bad request"


class ActionRejected(PageError):
    status_code = status.HTTP_400_BAD_REQUEST
    title = "Request refused"


class ActionConflict(PageError):
    status_code = status.HTTP_409_CONFLICT
    title = "Change refused"


class ActionThrottled(PageError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    title = "Too many attempts"


class CsrfRejected(PageError):
    status_code = status.HTTP_403_FORBIDDEN
    title = "Form refused"


class NotAdmin(PageError):
    status_code = status.HTTP_403_FORBIDDEN
    title = "Administrators only"


class TotpEnrolmentRequired(PageError):
    """Auth's 403 ``totp_enrolment_required``: the way out is the two-factor page."""

    status_code = status.HTTP_403_FORBIDDEN
    title = "Turn on two-factor sign-in first"
    next_url = TOTP_PATH
    next_label = "Set up two-factor sign-in"

    def __init__(self) -> None:
        super().__init__(
            "Administrators here must use two-factor sign-in (an authenticator app) "
            "before they can see or change accounts. Set it up, then come back."
        )


class PageNotFound(PageError):
    status_code = status.HTTP_404_NOT_FOUND
    title = "Page not found"


class LengthRequired(PageError):
    status_code = status.HTTP_411_LENGTH_REQUIRED
    title = "Length required"


class FormTooLarge(PageError):
    status_code = status.HTTP_413_CONTENT_TOO_LARGE
    title = "Form too large"


class AuthBadAnswer(PageError):
    status_code = status.HTTP_502_BAD_GATEWAY
    title = "Accounts unavailable"


class AuthUnavailable(PageError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    title = "Accounts unavailable"


class AuthClientError(Exception):
    """An answer of the auth service that the calling route turns into a form message."""


class InvalidCredentials(AuthClientError):
    pass


class LoginThrottled(AuthClientError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class LoginRejected(AuthClientError):
    pass


class SessionExpired(AuthClientError):
    pass


class TotpRequired(AuthClientError):
    def __init__(self, *, wrong: bool) -> None:
        super().__init__("totp code wrong" if wrong else "totp code required")
        self.wrong = wrong


class WrongPassword(AuthClientError):
    pass


class ResetLinkInvalid(AuthClientError):
    pass


class PasswordRefused(AuthClientError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WrongTotpCode(AuthClientError):
    pass


class TotpStateChanged(AuthClientError):
    """Two-factor is not in the state the form assumed (another tab changed it, say)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
