"""The readable log lines `make demo` selects (GATEHOUSE_<SERVICE>_LOG_JSON=false):
one line per event with time, service, level, message, fields and request id,
coloured only for a terminal, and the health checks' access lines left out
when a service is told to."""

from __future__ import annotations

import io
import logging
import re
import sys

import pytest
from common.log_capture import configure_into

from gatehouse_common.logs import HumanFormatter, configure_logging, wants_colour
from gatehouse_common.request_id import request_id_var
from gatehouse_common.settings import ServiceSettings

pytestmark = pytest.mark.unit

logger = logging.getLogger("gatehouse.tests.human")
access = logging.getLogger("gatehouse.access")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (?P<service>\S+) +(?P<level>[A-Z]+) +(?P<rest>.*)$")


@pytest.fixture
def human(restore_logging: None, monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    monkeypatch.delenv("NO_COLOR", raising=False)
    return configure_into(monkeypatch, "gateway", level="debug", json=False)


def test_one_line_with_time_service_level_message_and_request_id(human: io.StringIO) -> None:
    token = request_id_var.set("req-9")
    try:
        logger.info("hello %s", "world", extra={"user": "ada"})
    finally:
        request_id_var.reset(token)
    [line] = human.getvalue().splitlines()
    match = LINE.match(line)
    assert match, line
    assert (match["service"], match["level"]) == ("gateway", "INFO")
    assert match["rest"] == "hello world  user=ada [req-9]"
    assert not ANSI.search(line)  # a StringIO is no terminal


def test_outside_a_request_there_is_no_request_id(human: io.StringIO) -> None:
    logger.warning("no request here")
    [line] = human.getvalue().splitlines()
    match = LINE.match(line)
    assert match and match["level"] == "WARNING"
    assert match["rest"] == "no request here"


def test_an_access_line_shows_only_what_its_message_does_not(human: io.StringIO) -> None:
    access.info(
        "%s %s %d",
        "GET",
        "/hello",
        200,
        extra={"method": "GET", "path": "/hello", "status": 200, "duration_ms": 1.5},
    )
    [line] = human.getvalue().splitlines()
    assert line.endswith("GET /hello 200  duration_ms=1.5")


def test_newlines_stay_on_the_line_and_a_traceback_follows_indented(human: io.StringIO) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed:\n%s", "details")
    first, *trace = human.getvalue().splitlines()
    assert first.endswith("failed: \u23ce details")
    assert trace and all(part.startswith("    ") for part in trace)
    assert trace[-1].strip() == "RuntimeError: boom"


def test_colours_only_when_asked(restore_logging: None) -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "bad", None, None)
    record.service = "auth"
    plain = HumanFormatter(colour=False).format(record)
    coloured = HumanFormatter(colour=True).format(record)
    assert not ANSI.search(plain)
    assert "\x1b[31mERROR" in coloured  # the level in red
    assert ANSI.sub("", coloured) == plain


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_follows_the_terminal_and_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert wants_colour(_Terminal())
    assert not wants_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wants_colour(_Terminal())


def test_a_terminal_gets_coloured_lines(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal = _Terminal()
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stderr", terminal)
        configure_logging("auth", json=False)
    logger.info("ready")
    assert ANSI.search(terminal.getvalue())


def test_answered_health_checks_can_be_left_out(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = configure_into(monkeypatch, "fake-backend", json=False, health_checks=False)
    for path, status in [("/healthz", 200), ("/-/readyz", 200), ("/readyz", 503), ("/x", 200)]:
        access.info("GET %s %d", path, status, extra={"path": path, "status": status})
    lines = stream.getvalue().splitlines()
    rests = [match["rest"] for line in lines if (match := LINE.match(line))]
    assert rests == ["GET /readyz 503", "GET /x 200"]
    # By default (the containers) every access line is kept.
    stream = configure_into(monkeypatch, "fake-backend", json=False)
    access.info("GET /healthz 200", extra={"path": "/healthz", "status": 200})
    assert len(stream.getvalue().splitlines()) == 1


def test_services_choose_the_format_through_their_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Settings(ServiceSettings):
        model_config = ServiceSettings.model_config | {"env_prefix": "GATEHOUSE_HUMANTEST_"}

    assert (Settings().log_json, Settings().log_health_checks) == (True, True)
    monkeypatch.setenv("GATEHOUSE_HUMANTEST_LOG_JSON", "false")
    monkeypatch.setenv("GATEHOUSE_HUMANTEST_LOG_HEALTH_CHECKS", "false")
    assert (Settings().log_json, Settings().log_health_checks) == (False, False)
