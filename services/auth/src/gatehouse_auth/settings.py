"""AuthSettings: where accounts live, how tokens are signed, how logins are limited.

Everything has the ``GATEHOUSE_AUTH_`` prefix except the few names the whole
suite shares on purpose (``DATABASE_URL``, ``REDIS_URL``,
``GATEHOUSE_ADMIN_EMAIL``, ``GATEHOUSE_ADMIN_PASSWORD``); those are read
unprefixed first, and the prefixed spelling works too.
"""

from __future__ import annotations

import json
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from gatehouse_auth.sealing import check_keys
from gatehouse_common.redis_url import check_redis_url
from gatehouse_common.settings import ServiceSettings

KeyAlgorithm = Literal["EdDSA", "RS256"]
_PLACEHOLDER_PASSWORDS = {"changeme", "change-me", "password", "admin", "secret"}


def _loopback() -> list[IPv4Network | IPv6Network]:
    return [IPv4Network("127.0.0.1/32"), IPv6Network("::1/128")]


def _alias(shared: str, field: str) -> AliasChoices:
    return AliasChoices(shared, f"GATEHOUSE_AUTH_{field}")


class AuthSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEHOUSE_AUTH_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
        # REDIS_URL and DATABASE_URL may carry passwords: a refusal names the field only.
        hide_input_in_errors=True,
    )

    service_name: str = "auth"
    port: int = Field(default=8001, ge=0, le=65535)

    # Storage. Unset means an SQLite file under data_dir (the embedded default).
    database_url: str | None = Field(
        default=None, validation_alias=_alias("DATABASE_URL", "DATABASE_URL")
    )
    data_dir: Path = Path(".data")
    # Seconds to wait for a database connection before answering 503: an outage
    # must be an answer, never a hang.
    db_connect_timeout: float = Field(default=3.0, gt=0, le=60)
    db_statement_timeout_ms: int = Field(default=10_000, ge=0)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # Apply migrations at start (for one-process setups); deployments run `migrate`.
    migrate_on_start: bool = False

    # Rate limiting. Unset REDIS_URL means an in-process store (one process only).
    # One server, Redis Cluster or Sentinel: the forms of gatehouse_common.redis_url.
    redis_url: str | None = Field(default=None, validation_alias=_alias("REDIS_URL", "REDIS_URL"))
    _check_redis_url = field_validator("redis_url")(check_redis_url)
    redis_prefix: str = "gatehouse:auth:"
    # Login limits (see limits.py); 0 turns one off (a load test from one address).
    rate_limit_window_seconds: float = Field(default=60.0, gt=0, le=86_400)
    # Every login attempt from one client address, per window.
    rate_limit_per_client: int = Field(default=300, ge=0)
    # Failed logins at one email from one client address, per window: the lockout
    # a guesser meets, which nobody elsewhere can impose on the account's owner.
    rate_limit_per_email_client: int = Field(default=10, ge=0)
    # Failed logins at one email from every address, per email window: a ceiling
    # well above what one address may try, for guessers spread over many.
    rate_limit_per_email: int = Field(default=100, ge=0)
    rate_limit_email_window_seconds: float = Field(default=3600.0, gt=0, le=7 * 86_400)
    # Sign-ups from one client address per window (an enumeration of taken emails
    # costs a sign-up each).
    signup_rate_limit_per_client: int = Field(default=20, ge=0)
    signup_rate_limit_window_seconds: float = Field(default=600.0, gt=0, le=86_400)
    # Peers whose X-Forwarded-For is believed (the gateway); the default trusts loopback.
    # A JSON list or a comma-separated list of CIDRs; the service alone reads the
    # header (uvicorn's proxy-headers middleware is off, see cli.py).
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=_loopback
    )

    # Tokens. Keys default to <data_dir>/keys (.data/keys).
    keys_dir: Path = Path(".data/keys")
    key_algorithm: KeyAlgorithm = "EdDSA"
    # Generate a key when keys_dir holds none; None means "in development only".
    generate_keys: bool | None = None
    issuer: str = "gatehouse-auth"
    audience: str = "gatehouse"
    token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    # Refresh tokens (sessions.py): each one lives this long unused, and a
    # session, however often refreshed, ends session_max_seconds after login.
    refresh_token_ttl_seconds: int = Field(default=14 * 86_400, ge=60, le=365 * 86_400)
    session_max_seconds: int = Field(default=30 * 86_400, ge=60, le=365 * 86_400)
    # The URL clients reach this service at (behind the gateway, the gateway's),
    # for /.well-known/openid-configuration; unset: the URL of the request.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s?#]+$")

    # Signing key rotation (rotation.py). A new key is published this long
    # before it signs: at least the gateways' JWKS cache time (auth.jwks_ttl,
    # 300 s by default) plus keys_check_seconds, so every verifier has it first.
    key_publish_ahead_seconds: float = Field(default=600.0, ge=0, le=7 * 86_400)
    # A scheduled rotation every this many days; 0 (the default) rotates only
    # with `gatehouse-auth keys rotate`, because deployments often mount the
    # keys read-only from a secret store that owns rotation (see README).
    key_rotation_interval_days: float = Field(default=0.0, ge=0, le=3650)
    # How often each replica rereads the keys folder (keys another replica or
    # the CLI added) and does the rotation work that is due.
    keys_check_seconds: float = Field(default=10.0, gt=0, le=3600)

    # Revocations for the gateways (revocation.py), under their own prefix so
    # gateway and auth share it while tests isolate it.
    revocation_prefix: str = Field(default="gatehouse:revocation:", min_length=1, max_length=200)
    # How often revocations that Redis refused are tried again.
    revocation_retry_seconds: float = Field(default=2.0, gt=0, le=600)

    # Passwords. 12 is the floor the design asks for; tests lower it for speed.
    bcrypt_rounds: int = Field(default=12, ge=4, le=31)
    # zxcvbn's score (0-4) a new password needs; 3 is "safely unguessable" against
    # an online attack with throttling (NIST SP 800-63B 5.1.1.2: refuse common,
    # context-specific passwords). 0 turns the check off.
    password_min_score: int = Field(default=3, ge=0, le=4)
    max_body_bytes: int = Field(default=16_384, ge=1024)

    # Account administration (see account_admin.py, resets.py, totp.py).
    # The accounts page path that takes a password-reset link's token; the link
    # starts with public_url (default http://localhost:8080, the demo's gateway).
    password_reset_path: str = Field(
        default="/accounts_page/password-reset", pattern=r"^/[^\s?#]*$"
    )
    password_reset_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 86_400)
    # Admins need a confirmed TOTP second factor before any admin endpoint answers
    # them (they may still log in and enrol); off in the demo, on in production.
    require_admin_totp: bool = False
    totp_issuer: str = Field(default="Gatehouse", min_length=1, max_length=64)
    # Fernet keys sealing TOTP secrets at rest (see sealing.py); the first seals,
    # all open. Unset: secrets are stored readable (a warning at start).
    totp_encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Largest `detail` (JSON bytes) an operator action may carry into the audit log.
    audit_detail_max_bytes: int = Field(default=4096, ge=256, le=65_536)

    # The admin ensured at start (see bootstrap.py).
    admin_email: str = Field(
        default="admin@example.com",
        validation_alias=_alias("GATEHOUSE_ADMIN_EMAIL", "ADMIN_EMAIL"),
    )
    admin_password: SecretStr | None = Field(
        default=None, validation_alias=_alias("GATEHOUSE_ADMIN_PASSWORD", "ADMIN_PASSWORD")
    )
    admin_username: str = "admin"

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _cidr_list(cls, value: object) -> object:
        """``["10.0.0.0/8"]`` (JSON, as compose and Helm write it) or ``10.0.0.0/8, ::1/128``."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]

    @field_validator("totp_encryption_keys", mode="before")
    @classmethod
    def _key_list(cls, value: object) -> object:
        """Comma-separated Fernet keys, checked here so a bad one fails at start."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            check_keys(
                [str(v.get_secret_value() if isinstance(v, SecretStr) else v) for v in value]
            )
        return value

    @model_validator(mode="after")
    def _keys_under_data_dir(self) -> AuthSettings:
        """Keys default to <data_dir>/keys, so moving the data folder moves them too."""
        if "keys_dir" not in self.model_fields_set:
            self.keys_dir = self.data_dir / "keys"
        return self

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> AuthSettings:
        password = self.admin_password.get_secret_value() if self.admin_password else None
        if self.is_production and password and password.lower() in _PLACEHOLDER_PASSWORDS:
            raise ValueError("GATEHOUSE_ADMIN_PASSWORD is a placeholder; set a real one")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the driver SQLAlchemy needs spelled out."""
        url = self.database_url
        if not url:
            return f"sqlite:///{self.data_dir / 'auth.db'}"
        for scheme in ("postgres://", "postgresql://"):
            if url.startswith(scheme):
                return "postgresql+psycopg2://" + url[len(scheme) :]
        return url

    @property
    def should_generate_keys(self) -> bool:
        return not self.is_production if self.generate_keys is None else self.generate_keys


@lru_cache
def get_settings() -> AuthSettings:
    return AuthSettings()
