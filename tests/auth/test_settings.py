"""AuthSettings: the shared unprefixed names, URL normalisation, production guards."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gatehouse_auth.settings import AuthSettings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "GATEHOUSE_ADMIN_EMAIL", "GATEHOUSE_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file of the repo's


def test_defaults_are_the_embedded_setup() -> None:
    settings = AuthSettings()
    assert settings.port == 8001
    assert settings.sqlalchemy_url == "sqlite:///.data/auth.db"
    assert settings.redis_url is None
    assert settings.bcrypt_rounds == 12
    assert settings.token_ttl_seconds == 900
    assert settings.key_algorithm == "EdDSA"
    assert settings.should_generate_keys
    assert settings.admin_email == "admin@example.com"
    assert settings.keys_dir == Path(".data/keys")
    assert AuthSettings(data_dir=Path("/srv/auth")).keys_dir == Path("/srv/auth/keys")
    assert AuthSettings(keys_dir=Path("/run/secrets/keys")).keys_dir == Path("/run/secrets/keys")


def test_shared_names_are_read_unprefixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db:5432/gatehouse")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/1")
    monkeypatch.setenv("GATEHOUSE_ADMIN_EMAIL", "root@example.org")
    monkeypatch.setenv("GATEHOUSE_ADMIN_PASSWORD", "s3cret-enough")
    monkeypatch.setenv("GATEHOUSE_AUTH_REDIS_PREFIX", "mine:")
    monkeypatch.setenv("GATEHOUSE_AUTH_BCRYPT_ROUNDS", "13")
    settings = AuthSettings()
    assert settings.sqlalchemy_url == "postgresql+psycopg2://u@db:5432/gatehouse"
    assert settings.redis_url == "redis://cache:6379/1"
    assert settings.admin_email == "root@example.org"
    assert settings.admin_password is not None
    assert settings.admin_password.get_secret_value() == "s3cret-enough"
    assert "s3cret" not in repr(settings)
    assert settings.redis_prefix == "mine:"
    assert settings.bcrypt_rounds == 13


def test_prefixed_spelling_works_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_AUTH_DATABASE_URL", "postgresql://x@h/d")
    assert AuthSettings().sqlalchemy_url == "postgresql+psycopg2://x@h/d"


def test_flags_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_AUTH_PORT", "9999")
    assert AuthSettings(port=1234).port == 1234


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEHOUSE_AUTH_BCRYPT_ROUNDS", "3"),
        ("GATEHOUSE_AUTH_KEY_ALGORITHM", "HS256"),
        ("GATEHOUSE_AUTH_TOKEN_TTL_SECONDS", "0"),
    ],
)
def test_unsafe_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        AuthSettings()


def test_production_refuses_placeholder_admin_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_AUTH_ENVIRONMENT", "production")
    monkeypatch.setenv("GATEHOUSE_ADMIN_PASSWORD", "changeme")
    with pytest.raises(ValidationError, match="placeholder"):
        AuthSettings()
    monkeypatch.setenv("GATEHOUSE_ADMIN_PASSWORD", "a-real-long-password")
    settings = AuthSettings()
    assert not settings.should_generate_keys  # production never invents keys


def test_login_and_signup_limits_default_to_owasps_shape() -> None:
    settings = AuthSettings()
    assert settings.rate_limit_per_email_client == 10  # per address, a minute
    assert settings.rate_limit_per_email == 100  # every address, an hour
    assert settings.rate_limit_email_window_seconds == 3600
    assert settings.signup_rate_limit_per_client == 20
    assert settings.password_min_score == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('["10.1.0.0/16", "::1/128"]', ["10.1.0.0/16", "::1/128"]),
        ("10.1.0.0/16, 192.0.2.7/32", ["10.1.0.0/16", "192.0.2.7/32"]),
        ("[]", []),
    ],
)
def test_trusted_proxies_take_json_or_commas(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv("GATEHOUSE_AUTH_TRUSTED_PROXIES", value)
    assert [str(n) for n in AuthSettings().trusted_proxies] == expected


@pytest.mark.parametrize("value", ["not-a-network", '["10.0.0.1/8"]', "[", "10.0.0.0/33"])
def test_bad_trusted_proxies_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("GATEHOUSE_AUTH_TRUSTED_PROXIES", value)
    with pytest.raises(ValidationError):
        AuthSettings()
