"""Attack 10: many connections that never finish a request head (slowloris).

Each costs the attacker one socket and a few bytes; a server that waits for
the head without a deadline holds a file descriptor and a protocol object per
connection until it runs out of both. The contract: a head must be whole
within ``header_timeout`` (408 then close), and past ``max_connections`` per
worker a new connection is closed at once and counted in
``gatehouse_connections_refused_total``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time

import httpx
import pytest
from adversarial.raw import connect, status_of
from adversarial.support import admin_metric, route
from support.gateway import HOST, GatewayProcess, Launcher

PARTIAL = f"GET / HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: ".encode()
HEADER_TIMEOUT = 1.0
MARGIN = 20.0


def _open(gateway: GatewayProcess, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = connect(gateway.url, timeout=10)
        sock.sendall(PARTIAL)
        socks.append(sock)
    return socks


def _wait_closed(socks: list[socket.socket], deadline: float) -> tuple[set[int], dict[int, bytes]]:
    """Indexes of the sockets the peer closed before ``deadline``, and what each got."""
    closed: set[int] = set()
    got: dict[int, bytes] = {}
    by_fd = {sock.fileno(): index for index, sock in enumerate(socks)}
    while len(closed) < len(socks) and time.monotonic() < deadline:
        waiting = [s for i, s in enumerate(socks) if i not in closed]
        ready, _, _ = select.select(waiting, [], [], min(1.0, deadline - time.monotonic()))
        for sock in ready:
            index = by_fd[sock.fileno()]
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if data:
                got[index] = got.get(index, b"") + data
            else:
                closed.add(index)
    return closed, got


def _close(socks: list[socket.socket]) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()


@pytest.fixture
def backend_url(launcher: Launcher) -> str:
    return launcher.backends(1, prefix="loris")[0].url


def test_partial_heads_are_closed_after_the_header_timeout(
    launcher: Launcher, backend_url: str
) -> None:
    env = {"GATEHOUSE_GATEWAY_HEADER_TIMEOUT": str(HEADER_TIMEOUT)}
    gateway = launcher.gateway({"routes": [route("app", [backend_url], [HOST])]}, env=env)
    socks = _open(gateway, 300)
    try:
        closed, got = _wait_closed(socks, time.monotonic() + HEADER_TIMEOUT + MARGIN)
        still_open = len(socks) - len(closed)
        answers = {status_of(data) for data in got.values()}
        assert still_open == 0, (
            f"{still_open} of {len(socks)} partial heads still open "
            f"{HEADER_TIMEOUT + MARGIN:.0f}s after a {HEADER_TIMEOUT}s header timeout; "
            f"answers seen: {answers}"
        )
        assert answers <= {408}, f"partial heads got statuses {answers}, expected 408 or none"
    finally:
        _close(socks)
    response = httpx.get(gateway.url + "/after", headers={"Host": HOST}, timeout=30)
    assert response.status_code == 200, response.text


def test_connections_over_the_cap_are_closed_at_once_and_counted(
    launcher: Launcher, backend_url: str
) -> None:
    env = {"GATEHOUSE_GATEWAY_MAX_CONNECTIONS": "50", "GATEHOUSE_GATEWAY_HEADER_TIMEOUT": "60"}
    gateway = launcher.gateway({"routes": [route("app", [backend_url], [HOST])]}, env=env)
    held = _open(gateway, 50)
    extra: list[socket.socket] = []
    try:
        time.sleep(1.0)  # let the gateway accept all 50
        extra = _open(gateway, 5)
        closed, _ = _wait_closed(extra, time.monotonic() + 5.0)
        assert len(closed) == len(extra), (
            f"with 50 connections held and max_connections=50, only {len(closed)} of "
            f"{len(extra)} more connections were closed within 5 s"
        )
        held_closed, _ = _wait_closed(held, time.monotonic() + 0.5)
        assert not held_closed, f"{len(held_closed)} of the 50 held connections were closed"
    finally:
        _close(held)
        _close(extra)
    refused = admin_metric(gateway, "gatehouse_connections_refused_total")
    assert refused >= len(extra), f"gatehouse_connections_refused_total is {refused}"
    response = httpx.get(gateway.url + "/after", headers={"Host": HOST}, timeout=30)
    assert response.status_code == 200, response.text
