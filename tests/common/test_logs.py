"""JSON logs: one object per line with time, level, service, request id, message, extras."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest
from common.log_capture import configure_into

from gatehouse_common.request_id import request_id_var

pytestmark = pytest.mark.unit

logger = logging.getLogger("gatehouse.tests.logs")


def test_a_line_has_the_standard_fields_and_the_extras(json_logs) -> None:
    token = request_id_var.set("req-123")
    try:
        logger.info("hello %s", "world", extra={"user": "ada", "attempt": 2})
    finally:
        request_id_var.reset(token)
    [line] = json_logs()
    assert line["message"] == "hello world"
    assert line["level"] == "INFO"
    assert line["service"] == "svc"
    assert line["request_id"] == "req-123"
    assert line["logger"] == "gatehouse.tests.logs"
    assert (line["user"], line["attempt"]) == ("ada", 2)
    assert datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S%z").tzinfo is not None


def test_outside_a_request_the_request_id_is_null(json_logs) -> None:
    logger.warning("no request here")
    [line] = json_logs()
    assert line["request_id"] is None
    assert line["level"] == "WARNING"


def test_multiline_messages_and_tracebacks_stay_on_one_line(json_logs) -> None:
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        logger.exception("failed:\n%s", "details")
    [line] = json_logs()
    assert line["message"] == "failed:\ndetails"
    assert "RuntimeError: boom" in line["exc_info"]
    assert "Traceback" in line["exc_info"]


def test_non_ascii_is_kept_readable(json_logs) -> None:
    logger.info("caf\u00e9 \u2603")
    [line] = json_logs()
    assert line["message"] == "caf\u00e9 \u2603"


def test_uvicorn_colour_duplicate_is_dropped(json_logs) -> None:
    logging.getLogger("uvicorn.error").info("started", extra={"color_message": "\x1b[32mstarted"})
    [line] = json_logs()
    assert line["message"] == "started"
    assert "color_message" not in line


def test_uvicorn_logs_go_through_the_same_handler_and_access_is_off(json_logs) -> None:
    logging.getLogger("uvicorn.access").info("GET / 200")
    logging.getLogger("uvicorn.error").error("socket trouble")
    lines = json_logs()
    assert [x["message"] for x in lines] == ["socket trouble"]
    assert lines[0]["service"] == "svc"


def test_configuring_twice_does_not_duplicate_lines(
    restore_logging, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = configure_into(monkeypatch, "svc1")
    second = configure_into(monkeypatch, "svc2", level="info")
    logger.info("once")
    logger.debug("below the level")
    assert first.getvalue() == ""
    [line] = second.getvalue().splitlines()
    assert json.loads(line)["service"] == "svc2"
