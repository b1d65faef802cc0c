"""Logging: one line per event, JSON by default, a readable form for people.

Configured once per process by :func:`configure_logging`; modules log through
``logging.getLogger(__name__)`` and pass structured fields with ``extra=``.
With ``json=True`` (the default, and what containers use) each line is one
JSON object with time, level, service, request id, logger and message, the
fields as top-level keys. With ``json=False`` (``GATEHOUSE_<SERVICE>_LOG_JSON=false``,
what ``make demo`` sets) :class:`HumanFormatter` writes
``time service level message key=value [request id]``, coloured when the
stream is a terminal.
"""

from __future__ import annotations

import logging
import os
import sys
import zlib
from datetime import datetime
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from gatehouse_common.request_id import current_request_id

# The liveness and readiness paths every service serves (the gateway's under /-/).
HEALTH_PATHS = frozenset({"/healthz", "/readyz", "/-/healthz", "/-/readyz"})
ACCESS_LOGGER = "gatehouse.access"

# Attributes every LogRecord has (plus the two the context filter adds); any
# other attribute came from ``extra=``.
_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "service",
    "request_id",
    "color_message",
    "taskName",
}

_RESET = "\x1b[0m"
_DIM = "\x1b[2m"
_LEVEL_COLOURS = {
    "DEBUG": "\x1b[2m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;31m",
}
_SERVICE_COLOURS = ("\x1b[36m", "\x1b[35m", "\x1b[34m", "\x1b[33m", "\x1b[32m", "\x1b[96m")


class _ContextFilter(logging.Filter):
    """Stamps every record with the service name and the current request id."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = current_request_id()
        # uvicorn adds an ANSI-coloured duplicate of the message; we want one.
        record.__dict__.pop("color_message", None)
        return True


class _QuietHealthChecks(logging.Filter):
    """Drops the access lines of answered health checks (a failing one still shows)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.name == ACCESS_LOGGER
            and getattr(record, "path", None) in HEALTH_PATHS
            and getattr(record, "status", 500) < 400
        )


class HumanFormatter(logging.Formatter):
    """One readable line per event: ``12:04:05.123 gateway  INFO  message key=value [id]``.

    The time is local, to the millisecond; fields passed with ``extra=`` follow
    the message as ``key=value`` unless the message already shows the value
    (an access line's method, path and status); the request id closes the line.
    Newlines in a message are shown as ``⏎`` so an event stays on one line; a
    traceback follows its line, indented. ``colour`` adds ANSI colours: the
    level, the service (one colour per name) and dim details.
    """

    def __init__(self, *, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour

    def _paint(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.colour and code else text

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().replace("\r\n", "\n").replace("\n", " \u23ce ")
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        service = str(getattr(record, "service", "") or record.name)
        service_colour = _SERVICE_COLOURS[zlib.crc32(service.encode()) % len(_SERVICE_COLOURS)]
        level = record.levelname
        extras = [
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _RECORD_FIELDS and not key.startswith("_") and str(value) not in message
        ]
        line = " ".join(
            [
                self._paint(_DIM, stamp),
                self._paint(service_colour, f"{service:<12}"),
                self._paint(_LEVEL_COLOURS.get(level, ""), f"{level:<7}"),
                message,
            ]
        )
        details = " ".join(extras)
        request_id = getattr(record, "request_id", None)
        if request_id:
            details = f"{details} [{request_id}]" if details else f"[{request_id}]"
        if details:
            line = f"{line}  {self._paint(_DIM, details)}"
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            line += "\n" + "\n".join("    " + part for part in trace.splitlines())
        return line


def _json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(service)s %(request_id)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        json_ensure_ascii=False,
    )


def wants_colour(stream: IO[Any]) -> bool:
    """Colour for a terminal, unless NO_COLOR is set (https://no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR")


def configure_logging(
    service: str, *, level: str = "info", json: bool = True, health_checks: bool = True
) -> None:
    """Route every logger (uvicorn's included) to one stderr handler.

    ``json`` picks the JSON lines (default) or :class:`HumanFormatter` (coloured
    when stderr is a terminal); ``health_checks=False`` drops the access lines
    of answered ``/healthz``-style requests (the demo, where the gateway checks
    every backend every few seconds). Safe to call more than once: the root
    handler is replaced, not added to, which matters because uvicorn workers
    re-run the app factory.
    """
    stream = sys.stderr
    handler = logging.StreamHandler(stream)
    handler.addFilter(_ContextFilter(service))
    if not health_checks:
        handler.addFilter(_QuietHealthChecks())
    handler.setFormatter(_json_formatter() if json else HumanFormatter(colour=wants_colour(stream)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # Our own middleware writes the access line (with the request id); uvicorn's
    # would be a second, id-less copy.
    logging.getLogger("uvicorn.access").disabled = True
