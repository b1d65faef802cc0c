"""JSON logging: one object per line with time, level, service, request id and message.

Configured once per process by :func:`configure_logging`; modules log through
``logging.getLogger(__name__)`` and pass structured fields with ``extra=``,
which land as top-level keys of the JSON object.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from gatehouse_common.request_id import current_request_id

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"


class _ContextFilter(logging.Filter):
    """Stamps every record with the service name and the current request id."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = current_request_id()
        # uvicorn adds an ANSI-coloured duplicate of the message; JSON wants one.
        record.__dict__.pop("color_message", None)
        return True


def _json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(service)s %(request_id)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        json_ensure_ascii=False,
    )


def configure_logging(service: str, *, level: str = "info", json: bool = True) -> None:
    """Route every logger (uvicorn's included) to one stderr handler.

    Safe to call more than once: the root handler is replaced, not added to,
    which matters because uvicorn workers re-run the app factory.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter(service))
    handler.setFormatter(_json_formatter() if json else logging.Formatter(_TEXT_FORMAT))
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
