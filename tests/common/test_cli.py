"""gatehouse_common.cli: the flags every service takes, and flags > env > defaults."""

from __future__ import annotations

import os

import pytest
from common.settings_factories import DemoSettings

from gatehouse_common.cli import service_parser, settings_from_args

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("clean_env")]


def test_flags_beat_env_and_are_exported_for_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_DEMO_PORT", "7002")
    monkeypatch.setenv("GATEHOUSE_DEMO_HOST", "10.0.0.1")
    args = service_parser("demo").parse_args(["--port", "7004", "--log-level", "debug"])
    settings = settings_from_args(DemoSettings, args)
    assert settings.port == 7004
    assert settings.host == "10.0.0.1"  # no flag: the environment's value
    assert settings.log_level == "debug"
    assert settings.workers == 1  # neither: the default
    # a uvicorn worker building its own settings sees the same values
    assert os.environ["GATEHOUSE_DEMO_PORT"] == "7004"
    assert os.environ["GATEHOUSE_DEMO_LOG_LEVEL"] == "debug"
    assert "GATEHOUSE_DEMO_WORKERS" not in os.environ
    assert DemoSettings().port == 7004


def test_every_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    args = service_parser("demo").parse_args(
        ["--host", "0.0.0.0", "--port", "7005", "--workers", "3", "--log-level", "warning"]
    )
    settings = settings_from_args(DemoSettings, args)
    assert (settings.host, settings.port, settings.workers, settings.log_level) == (
        "0.0.0.0",
        7005,
        3,
        "warning",
    )


def test_parser_without_workers() -> None:
    parser = service_parser("demo", workers=False)
    with pytest.raises(SystemExit) as caught:
        parser.parse_args(["--workers", "2"])
    assert caught.value.code == 2


@pytest.mark.parametrize(
    "argv", [["--port", "eighty"], ["--log-level", "verbose"], ["--unknown"], ["--workers", "x"]]
)
def test_bad_flags_exit_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        service_parser("demo").parse_args(argv)
    assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        service_parser("the demo service").parse_args(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--workers", "--log-level"):
        assert flag in out
    assert "the demo service" in out
