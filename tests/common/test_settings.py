"""ServiceSettings: a service's own env prefix, a .env file, and flags > env > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from common.settings_factories import DemoSettings
from pydantic import ValidationError

from gatehouse_common.settings import ServiceSettings

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("clean_env")]


def test_defaults() -> None:
    settings = DemoSettings()
    assert (settings.service_name, settings.host, settings.port, settings.workers) == (
        "demo",
        "127.0.0.1",
        8123,
        1,
    )
    assert (settings.log_level, settings.log_json, settings.environment) == (
        "info",
        True,
        "development",
    )
    assert not settings.is_production


def test_the_service_prefix_is_read_and_the_others_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_DEMO_PORT", "9555")
    monkeypatch.setenv("GATEHOUSE_DEMO_LOG_LEVEL", "debug")
    monkeypatch.setenv("GATEHOUSE_DEMO_ENVIRONMENT", "production")
    monkeypatch.setenv("GATEHOUSE_PORT", "1111")  # the base prefix: another service's business
    monkeypatch.setenv("GATEHOUSE_OTHER_PORT", "2222")
    settings = DemoSettings()
    assert settings.port == 9555
    assert settings.log_level == "debug"
    assert settings.is_production


def test_base_class_reads_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_PORT", "1111")
    assert ServiceSettings().port == 1111


def test_dotenv_file_is_read_and_env_beats_it(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    (clean_env / ".env").write_text(
        "GATEHOUSE_DEMO_PORT=7001\nGATEHOUSE_DEMO_HOST=0.0.0.0\nUNRELATED=1\n"
    )
    from_file = DemoSettings()
    assert (from_file.port, from_file.host) == (7001, "0.0.0.0")
    monkeypatch.setenv("GATEHOUSE_DEMO_PORT", "7002")
    assert DemoSettings().port == 7002


def test_init_arguments_beat_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_DEMO_PORT", "7002")
    assert DemoSettings(port=7003).port == 7003


def test_empty_variables_mean_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_DEMO_HOST", "")
    monkeypatch.setenv("GATEHOUSE_DEMO_PORT", "")
    settings = DemoSettings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8123)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "65536"),
        ("PORT", "-1"),
        ("PORT", "eighty"),
        ("WORKERS", "0"),
        ("WORKERS", "65"),
        ("LOG_LEVEL", "verbose"),
        ("ENVIRONMENT", "staging"),
        ("GRACEFUL_TIMEOUT", "-1"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"GATEHOUSE_DEMO_{name}", value)
    with pytest.raises(ValidationError) as caught:
        DemoSettings()
    assert caught.value.errors()[0]["loc"] == (name.lower(),)
