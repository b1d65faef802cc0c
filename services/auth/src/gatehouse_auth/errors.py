"""The auth service's errors, all answered as ``{"error": code, "detail": ...}``::

    ServiceError (gatehouse_common.errors)
    ├── AccountExists        409 email_taken / username_taken
    ├── Conflict             409 (a code per case: last_admin, totp_already_enabled, ...)
    ├── InvalidCredentials   401 invalid_credentials (one body for every cause)
    ├── TotpRequired         401 totp_required / invalid_totp_code (password was right)
    ├── NotAuthenticated     401 not_authenticated (missing, bad, expired or revoked token)
    ├── InvalidRefreshToken  401 invalid_refresh_token (one body for every cause)
    ├── Forbidden            403 forbidden / totp_enrolment_required / wrong_password
    ├── NotFound             404 not_found
    ├── BadRequest           400 invalid_reset_token / invalid_totp_code
    ├── RateLimited          429 rate_limited, with Retry-After
    ├── DatabaseUnavailable  503 database_unavailable
    └── LimiterUnavailable   503 rate_limit_store_unavailable (admin's lockout views)
    (413 for a large body: gatehouse_common.bodylimit, before anything parses it)

SQLAlchemy's connection errors are mapped to DatabaseUnavailable by
:func:`install_database_error_handlers`, so an outage is a quick 503 wherever
it surfaces, never a traceback.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from gatehouse_common.errors import ServiceError, error_response

logger = logging.getLogger(__name__)

BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}
DATABASE_ERRORS = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)


class AccountExists(ServiceError):
    def __init__(self, field: str) -> None:
        super().__init__(
            status.HTTP_409_CONFLICT, f"{field}_taken", f"an account with this {field} exists"
        )


class InvalidCredentials(ServiceError):
    def __init__(self) -> None:
        super().__init__(
            status.HTTP_401_UNAUTHORIZED,
            "invalid_credentials",
            "the email or password is incorrect",
            headers=BEARER_CHALLENGE,
        )


class NotAuthenticated(ServiceError):
    def __init__(self, detail: str = "a valid bearer token is required") -> None:
        super().__init__(
            status.HTTP_401_UNAUTHORIZED, "not_authenticated", detail, headers=BEARER_CHALLENGE
        )


class InvalidRefreshToken(ServiceError):
    """Unknown, used, expired or revoked, or its account disabled: one answer for all."""

    def __init__(self) -> None:
        super().__init__(
            status.HTTP_401_UNAUTHORIZED,
            "invalid_refresh_token",
            "the refresh token is invalid, expired or revoked; log in again",
        )


class Forbidden(ServiceError):
    def __init__(self, detail: str = "this needs the admin role", code: str = "forbidden") -> None:
        super().__init__(status.HTTP_403_FORBIDDEN, code, detail)


class TotpRequired(ServiceError):
    """Login needs a (right) TOTP or recovery code: ``code`` says which case."""

    def __init__(self, code: str = "totp_required") -> None:
        detail = (
            "this account needs a TOTP code (or a recovery code) in totp_code"
            if code == "totp_required"
            else "the TOTP or recovery code is wrong or already used"
        )
        super().__init__(status.HTTP_401_UNAUTHORIZED, code, detail, headers=BEARER_CHALLENGE)


class Conflict(ServiceError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(status.HTTP_409_CONFLICT, code, detail)


class BadRequest(ServiceError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(status.HTTP_400_BAD_REQUEST, code, detail)


class NotFound(ServiceError):
    def __init__(self, detail: str) -> None:
        super().__init__(status.HTTP_404_NOT_FOUND, "not_found", detail)


class RateLimited(ServiceError):
    def __init__(self, retry_after: float, what: str = "login attempts") -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "rate_limited",
            f"too many {what}; retry in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


class LimiterUnavailable(ServiceError):
    def __init__(self) -> None:
        super().__init__(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "rate_limit_store_unavailable",
            "the rate limit store (Redis) is unavailable; retry shortly",
            headers={"Retry-After": "2"},
        )


class DatabaseUnavailable(ServiceError):
    def __init__(self) -> None:
        super().__init__(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the account database is unavailable; retry shortly",
            headers={"Retry-After": "2"},
        )


def invalid_field(location: tuple[str, ...], message: str, kind: str = "value_error") -> Exception:
    """A 422 about one field, shaped like pydantic's own, for checks made in a handler."""
    return RequestValidationError([{"type": kind, "loc": location, "msg": message, "input": None}])


async def _database_error(_: Request, exc: Exception) -> Response:
    logger.warning("database unavailable: %s", str(exc).splitlines()[0][:300] if str(exc) else "")
    error = DatabaseUnavailable()
    return error_response(error.status_code, error.code, error.detail, headers=error.headers)


def install_database_error_handlers(app: FastAPI) -> None:
    """Answer a lost database as 503 wherever in a request it is noticed."""
    for exc_class in DATABASE_ERRORS:
        app.add_exception_handler(exc_class, _database_error)
