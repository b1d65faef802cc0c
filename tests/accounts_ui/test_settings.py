"""AccountsUISettings: secrets, bounds, URL checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gatehouse_accounts_ui.settings import AccountsUISettings

pytestmark = pytest.mark.unit

REAL_SECRET = "8f1c6d0b3e7a4c2b9d5e1f0a7b3c6d2e"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENVIRONMENT", "CSRF_SECRET", "AUTH_URL", "DEFAULT_PAGE_SIZE"):
        monkeypatch.delenv(f"GATEHOUSE_ACCOUNTS_UI_{name}", raising=False)


def test_development_makes_a_secret_per_process() -> None:
    first, second = AccountsUISettings(), AccountsUISettings()
    assert first.secret_generated and second.secret_generated
    assert first.csrf_key != second.csrf_key
    assert len(first.csrf_key) >= 32


def test_production_requires_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_ACCOUNTS_UI_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="CSRF_SECRET must be set in production"):
        AccountsUISettings()


@pytest.mark.parametrize("secret", ["changethis", "short-but-not-placeholder"])
def test_production_refuses_weak_secrets(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("GATEHOUSE_ACCOUNTS_UI_ENVIRONMENT", "production")
    monkeypatch.setenv("GATEHOUSE_ACCOUNTS_UI_CSRF_SECRET", secret)
    with pytest.raises(ValidationError, match="at least 32 characters"):
        AccountsUISettings()


def test_production_takes_a_real_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_ACCOUNTS_UI_ENVIRONMENT", "production")
    monkeypatch.setenv("GATEHOUSE_ACCOUNTS_UI_CSRF_SECRET", REAL_SECRET)
    settings = AccountsUISettings()
    assert not settings.secret_generated
    assert settings.csrf_key == REAL_SECRET.encode()
    assert REAL_SECRET not in repr(settings)


def test_defaults_are_the_demos() -> None:
    settings = AccountsUISettings()
    assert settings.port == 8002
    assert settings.auth_url == "http://127.0.0.1:8001"


@pytest.mark.parametrize("url", ["127.0.0.1:8001", "ftp://x", "javascript:alert(1)"])
def test_auth_url_must_be_http(url: str) -> None:
    with pytest.raises(ValidationError, match="auth_url"):
        AccountsUISettings(auth_url=url)


def test_auth_url_loses_its_trailing_slash() -> None:
    assert AccountsUISettings(auth_url="http://auth:8001/ ").auth_url == "http://auth:8001"


def test_page_size_must_be_offered() -> None:
    with pytest.raises(ValidationError, match="default_page_size"):
        AccountsUISettings(default_page_size=33)
