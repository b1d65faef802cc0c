"""AccountsUISettings and the CLI: secrets, bounds, flags over environment."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from gatehouse_accounts_ui.settings import AccountsUISettings

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


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gatehouse_accounts_ui", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def test_cli_help_names_the_flags() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    for flag in ("--host", "--port", "--workers", "--auth-url"):
        assert flag in result.stdout


def test_cli_refuses_production_without_a_secret_cleanly() -> None:
    env = {"PATH": "/usr/bin:/bin", "GATEHOUSE_ACCOUNTS_UI_ENVIRONMENT": "production"}
    result = _cli("--port", "0", env=env)
    assert result.returncode == 1
    assert "invalid settings" in result.stderr
    assert "CSRF_SECRET must be set in production" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_refuses_a_bad_auth_url_flag() -> None:
    result = _cli("--auth-url", "not-a-url", "--port", "0")
    assert result.returncode == 1
    assert "auth_url must be an http:// or https:// URL" in result.stderr
