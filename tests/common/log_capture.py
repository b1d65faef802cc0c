"""Reading what configure_logging writes, without touching the real stderr."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest

from gatehouse_common.logs import configure_logging


def configure_into(monkeypatch: pytest.MonkeyPatch, service: str, **options: Any) -> io.StringIO:
    """configure_logging with a buffer standing in for stderr; returns the buffer.

    The handler keeps the stream it was given, so the buffer keeps receiving
    lines after sys.stderr is put back (pytest swaps it between test phases).
    """
    stream = io.StringIO()
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stderr", stream)
        configure_logging(service, **options)
    return stream


def take_json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """The lines written since the last call, each parsed as one JSON object."""
    text = stream.getvalue()
    stream.seek(0)
    stream.truncate()
    return [json.loads(line) for line in text.splitlines()]
