"""uvicorn's access line is left out when its logger is disabled, as our logging does.

uvicorn builds the line's arguments (the client address, the path quoted
again) for every response whenever any handler is reachable from
``uvicorn.access``; gatehouse_common.logs disables that logger (the services
write their own access line), so the edge protocol does not build them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from uvicorn.server import ServerState

from gatehouse_common.edge_limits import EdgeLimits
from gatehouse_common.edge_protocol import EdgeHttpToolsProtocol
from gatehouse_common.server import EdgeConfig


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise AssertionError("never called")


@pytest.fixture
def root_handler() -> Iterator[None]:
    handler = logging.NullHandler()
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)


def _protocol() -> EdgeHttpToolsProtocol:
    config = EdgeConfig(_app, edge_limits=EdgeLimits(), lifespan="off", log_config=None)
    config.load()
    loop = asyncio.new_event_loop()
    try:
        return EdgeHttpToolsProtocol(config, ServerState(), {}, loop)
    finally:
        loop.close()


@pytest.mark.usefixtures("root_handler")
def test_no_access_line_is_built_for_a_disabled_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging.getLogger("uvicorn.access"), "disabled", True)
    assert _protocol().access_log is False


@pytest.mark.usefixtures("root_handler")
def test_an_enabled_access_logger_keeps_uvicorns_line(monkeypatch: pytest.MonkeyPatch) -> None:
    access = logging.getLogger("uvicorn.access")
    monkeypatch.setattr(access, "disabled", False)
    monkeypatch.setattr(access, "propagate", True)
    assert _protocol().access_log is True
