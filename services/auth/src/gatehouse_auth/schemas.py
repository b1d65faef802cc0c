"""Request and response bodies that are not accounts themselves."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatehouse_auth.models import EMAIL_MAX_LENGTH, AccountPublic, check_text, normalize_email
from gatehouse_common.openapi import ErrorBody, ValidationErrorBody

# Long enough for any real password; a longer one is wrong without hashing it.
LOGIN_PASSWORD_MAX_CHARS = 1024


class LoginRequest(BaseModel):
    """The body of ``POST /login``.

    The email is not syntax-checked here: a malformed one simply matches no
    account, so login answers it exactly like any other unknown email.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"email": "alice@example.com", "password": "correct horse"}]
        },
    )

    email: str = Field(min_length=1, max_length=EMAIL_MAX_LENGTH)
    password: str = Field(min_length=1, max_length=LOGIN_PASSWORD_MAX_CHARS)
    totp_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="The TOTP code (or a recovery code) of an account with a second factor",
    )

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return normalize_email(check_text(value))

    @field_validator("password")
    @classmethod
    def _encodable(cls, value: str) -> str:
        return check_text(value, allow_nul=True)


class TokenResponse(BaseModel):
    """A signed access token and the refresh token of its session.

    ``token`` repeats the access token for clients of the original API.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9...",
                    "token_type": "bearer",
                    "expires_in": 900,
                    "token": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9...",
                    "refresh_token": "bW9yZSB0aGFuIDI1NiBiaXRzIG9mIHJhbmRvbQ...",
                    "refresh_expires_in": 1209600,
                }
            ]
        }
    )

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    token: str
    refresh_token: str = Field(
        description="Opaque; trade it once at POST /token/refresh for a new pair"
    )
    refresh_expires_in: int = Field(description="Seconds the refresh token stays usable")


# Refresh tokens are 43 characters; anything much longer is not one.
REFRESH_TOKEN_MAX_CHARS = 512


class RefreshRequest(BaseModel):
    """The body of ``POST /token/refresh``."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=REFRESH_TOKEN_MAX_CHARS)


class LogoutRequest(BaseModel):
    """The body of ``POST /logout`` (optional when a bearer token is sent)."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: str | None = Field(
        default=None, min_length=1, max_length=REFRESH_TOKEN_MAX_CHARS
    )


class AccountsPage(BaseModel):
    """One page of accounts, newest first."""

    items: list[AccountPublic]
    total: int
    limit: int
    offset: int


class LockoutPublic(BaseModel):
    """A login lockout in force: an email refused from one address, or from all of them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "admin@example.com",
                    "scope": "address",
                    "client": "203.0.113.7",
                    "retry_after": 42,
                }
            ]
        }
    )

    email: str = Field(
        description="The email as typed at login (lower-cased); it may name no account"
    )
    scope: Literal["address", "account"] = Field(
        description="`address`: too many failures from `client`; "
        "`account`: too many failures from every address together"
    )
    client: str | None = Field(
        description="The locked-out client address, an IPv6 client's /64 (null for `account`)"
    )
    retry_after: int = Field(description="Seconds until the lockout ends by itself")


class LockoutsList(BaseModel):
    """Every lockout in force, by email."""

    items: list[LockoutPublic]
    total: int


class LockoutsLifted(BaseModel):
    """What ``DELETE /lockouts/{email}`` cleared."""

    email: str
    lifted: int = Field(description="Lockouts that were in force and are lifted")


class OpenIDConfiguration(BaseModel):
    """OpenID Connect Discovery 1.0 metadata (and RFC 8414's), for Gatehouse's tokens."""

    model_config = ConfigDict(extra="allow")

    issuer: str
    jwks_uri: str
    token_endpoint: str
    revocation_endpoint: str
    end_session_endpoint: str
    refresh_endpoint: str
    response_types_supported: list[str]
    subject_types_supported: list[str]
    grant_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    claims_supported: list[str]


class JWKS(BaseModel):
    """A JSON Web Key Set (RFC 7517) of every public key that may have signed a live token."""

    keys: list[dict[str, Any]]


_DESCRIPTIONS = {
    400: "The body is not readable (not UTF-8 text, say)",
    401: "No valid bearer token, or wrong credentials",
    403: "The token is not an admin's",
    404: "Nothing by that name",
    409: "The email or username is taken",
    413: "The body is too large",
    422: "The request is not valid; `fields` says which parts and why",
    429: "Too many attempts; see Retry-After",
    503: "The database (or, for lockouts, Redis) is unavailable; retry shortly",
}


def error_responses(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for error codes, documented with the shape they really have.

    ``descriptions`` overrides a default description, keyed ``s401`` and so on.
    """
    return {
        code: {
            "model": ValidationErrorBody if code == 422 else ErrorBody,
            "description": descriptions.get(f"s{code}", _DESCRIPTIONS[code]),
        }
        for code in codes
    }
