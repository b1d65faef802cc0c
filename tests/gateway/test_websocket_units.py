"""In-process checks of the WebSocket pieces: token sources, close codes, the drain sweep."""

from __future__ import annotations

from typing import Any

import pytest

from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.config.schema import PassiveHealthConfig
from gatehouse_gateway.websocket.bridge import sendable
from gatehouse_gateway.websocket.sessions import Session, Sessions
from gatehouse_gateway.websocket.tokens import find_token, split_query

pytestmark = pytest.mark.unit
ALL = ["header", "subprotocol", "query"]


def test_each_source_only_where_allowed_and_always_scrubbed() -> None:
    found = find_token(["header"], None, ["bearer.abc", "chat"], b"access_token=q&x=1")
    assert found.token is None
    assert found.subprotocols == ["bearer.abc", "chat"]  # not a token source here: untouched
    found = find_token(ALL, None, ["bearer.abc", "chat"], b"access_token=q&x=1")
    assert found.token == b"abc"
    assert found.subprotocols == ["chat"]
    assert found.query == b"x=1"
    found = find_token(["query", "header"], b"Bearer h", [], b"x=1&access_token=q%2Eb")
    assert found.token == b"q.b"  # the route's order decides
    assert found.query == b"x=1"


def test_every_access_token_leaves_the_query_whatever_its_spelling() -> None:
    token, rest = split_query(b"a=1&access_token=t1&%61ccess_token=t2&b=2&access_token")
    assert token == b"t1"
    assert rest == b"a=1&b=2"


def test_only_sendable_close_codes_go_on_the_wire() -> None:
    assert sendable(4000, vanished=1011) == 4000
    assert sendable(1005, vanished=1011) == 1000
    assert sendable(1006, vanished=1011) == 1011
    assert sendable(1015, vanished=1001) == 1001
    assert sendable(2000, vanished=1001) == 1001


class _Bridge:
    def __init__(self) -> None:
        self.stopped: str | None = None

    def stop(self, reason: str) -> None:
        self.stopped = reason


class _Route:
    def __init__(self, name: str, backends: list[BackendState]) -> None:
        self.name = name
        self.backends = backends
        self.config: Any = type("C", (), {"websocket": True})()


class _Table:
    def __init__(self, routes: list[_Route]) -> None:
        self.routes = routes


def test_a_drained_backend_s_sockets_get_the_grace_then_stop() -> None:
    backend = BackendState("app", "http://127.0.0.1:1", 1, PassiveHealthConfig())
    table: Any = _Table([_Route("app", [backend])])
    sessions = Sessions(lambda: table, drain_timeout=5)
    bridge: Any = _Bridge()
    session = Session("app", backend, bridge)
    sessions.open.add(session)
    sessions.sweep(100.0)
    assert bridge.stopped is None and session.leaving_at is None
    backend.drained = True
    sessions.sweep(101.0)
    assert bridge.stopped is None and session.leaving_at == 106.0
    sessions.sweep(105.9)
    assert bridge.stopped is None
    backend.drained = False  # restored within the grace: it stays
    sessions.sweep(106.0)
    assert bridge.stopped is None and session.leaving_at is None
    backend.drained = True
    sessions.sweep(107.0)
    sessions.sweep(112.0)
    assert bridge.stopped == "backend drained"
