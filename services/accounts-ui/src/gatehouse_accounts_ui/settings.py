"""AccountsUISettings: where the auth service is, and how the page keeps its cookies.

The CSRF secret signs the tokens in the page's forms. It has no default in
production (a forgeable token is no protection); in development one is made per
process, so a fresh checkout runs without configuration. The CLI exports the
generated secret so every uvicorn worker of one process group shares it.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from gatehouse_common.settings import ServiceSettings

PAGE_SIZES: tuple[int, ...] = (10, 25, 50, 100)
# Values that read like "fill me in"; refusing them outside development stops a
# copied example file from going live with a public secret.
_PLACEHOLDER_SECRETS = {"changethis", "changeme", "secret", "dev", "development", "test"}
_MIN_SECRET_LENGTH = 32


class AccountsUISettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEHOUSE_ACCOUNTS_UI_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    service_name: str = "accounts-ui"
    port: int = Field(default=8002, ge=0, le=65535)
    # Base URL of the auth service's API (no trailing slash needed).
    auth_url: str = "http://127.0.0.1:8001"
    # Seconds one call to the auth service may take before the page says 503.
    auth_timeout: float = Field(default=5.0, gt=0, le=60)
    # The access token (every call to auth) and the refresh token (only to renew it).
    session_cookie: str = Field(default="gatehouse_session", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    refresh_cookie: str = Field(default="gatehouse_refresh", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    csrf_cookie: str = Field(default="gatehouse_csrf", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # "auto": Secure when the request came over TLS (scheme or X-Forwarded-Proto).
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    csrf_secret: SecretStr | None = None
    # Origins besides the page's own that may post its forms (a public host name
    # in front of a proxy that rewrites Host and sets no X-Forwarded-Host).
    trusted_origins: list[str] = Field(default_factory=list)
    default_page_size: int = 25

    _secret_generated: bool = PrivateAttr(default=False)

    @field_validator("auth_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("auth_url must be an http:// or https:// URL")
        return value

    @field_validator("default_page_size")
    @classmethod
    def _known_page_size(cls, value: int) -> int:
        if value not in PAGE_SIZES:
            raise ValueError(f"default_page_size must be one of {PAGE_SIZES}")
        return value

    @model_validator(mode="after")
    def _csrf_secret_present(self) -> AccountsUISettings:
        if self.csrf_secret is None:
            if self.is_production:
                raise ValueError("GATEHOUSE_ACCOUNTS_UI_CSRF_SECRET must be set in production")
            self.csrf_secret = SecretStr(secrets.token_urlsafe(32))
            self._secret_generated = True
            return self
        value = self.csrf_secret.get_secret_value()
        if self.is_production and (
            value.lower() in _PLACEHOLDER_SECRETS or len(value) < _MIN_SECRET_LENGTH
        ):
            raise ValueError(
                f"GATEHOUSE_ACCOUNTS_UI_CSRF_SECRET must be a random value of at least "
                f"{_MIN_SECRET_LENGTH} characters in production"
            )
        return self

    @property
    def secret_generated(self) -> bool:
        """True when the CSRF secret was made for this process (development only)."""
        return self._secret_generated

    @property
    def csrf_key(self) -> bytes:
        """The CSRF secret as HMAC key bytes."""
        if self.csrf_secret is None:  # the validator always fills it
            raise RuntimeError("csrf_secret is not set")
        return self.csrf_secret.get_secret_value().encode()


@lru_cache
def get_settings() -> AccountsUISettings:
    return AccountsUISettings()
