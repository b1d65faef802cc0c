"""Attack 9: backends that answer in ways no client should pass on.

A status of 999, a ``101 Switching Protocols`` nobody asked for, a response
head of 100 MB, and a head that arrives one line every two seconds. The
contract (upstream client): each is ``UpstreamBroken`` (502) or, for the head
that never finishes within the route's read timeout (a line every 1.5 s with a
read timeout of 2 s), ``UpstreamTimeout``
(504), answered to the client as a complete JSON response, and the gateway's
memory stays bounded however much the backend sends.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from adversarial.backends import Script, ScriptedBackend
from adversarial.raw import NoResponse, RawResponse, get, rss_bytes
from adversarial.support import route
from support.gateway import GatewayProcess, Launcher

READ_TIMEOUT = 2.0
MARGIN = 20.0
MAX_RSS_GROWTH = 40 * 1024 * 1024


def _status_999(conn: socket.socket, _: bytes) -> None:
    conn.sendall(b"HTTP/1.1 999 Weird\r\nContent-Length: 2\r\n\r\nok")


def _unsolicited_101(conn: socket.socket, _: bytes) -> None:
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        b"\x81\x05hello"
    )
    time.sleep(5)


def _header_flood(conn: socket.socket, _: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    line = b"X-Flood: " + b"a" * 1000 + b"\r\n"
    block = line * 64
    deadline = time.monotonic() + 60
    sent = 0
    while sent < 100 * 1024 * 1024 and time.monotonic() < deadline:
        conn.sendall(block)  # raises once the gateway hangs up
        sent += len(block)


def _slow_head(conn: socket.socket, _: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    # Each line comes well within the read timeout, the whole head never does:
    # a timer that restarts on every byte would wait the full 40 s.
    for index in range(27):  # 40 s at most
        time.sleep(1.5)
        conn.sendall(b"X-Slow-%d: v\r\n" % index)
    conn.sendall(b"Content-Length: 2\r\n\r\nok")


SCRIPTS: dict[str, tuple[Script, int]] = {
    "status-999": (_status_999, 502),
    "unsolicited-101": (_unsolicited_101, 502),
    "100MB-head": (_header_flood, 502),
    "slow-head": (_slow_head, 504),
}


@pytest.fixture(scope="module")
def scripted() -> Iterator[dict[str, ScriptedBackend]]:
    started = {name: ScriptedBackend(script) for name, (script, _) in SCRIPTS.items()}
    yield started
    for backend in started.values():
        backend.close()


@pytest.fixture(scope="module")
def gateway(module_launcher: Launcher, scripted: dict[str, ScriptedBackend]) -> GatewayProcess:
    routes = [
        route(
            name,
            [backend.url],
            [f"{name.lower()}.bad.test"],
            timeouts={"connect": 2, "read": READ_TIMEOUT},
            retries={"attempts": 0},
            passive_health={"enabled": False},
        )
        for name, backend in scripted.items()
    ]
    return module_launcher.gateway({"routes": routes})


@pytest.mark.parametrize("case", sorted(SCRIPTS))
def test_bad_backend_answer_becomes_a_complete_json_error(
    gateway: GatewayProcess, case: str
) -> None:
    expected = SCRIPTS[case][1]
    before = rss_bytes(gateway.pid)
    started = time.monotonic()
    try:
        response: RawResponse = get(
            gateway.url, "/x", f"{case.lower()}.bad.test", timeout=READ_TIMEOUT + 2 + MARGIN
        )
    except NoResponse as exc:
        pytest.fail(f"{case}: no answer within {time.monotonic() - started:.1f}s: {exc}")
    elapsed = time.monotonic() - started
    growth = rss_bytes(gateway.pid) - before
    assert response.status == expected, (
        f"{case}: expected {expected}, got {response.describe()[:300]} after {elapsed:.1f}s"
    )
    assert response.complete, f"{case}: the {response.status} was cut short: {response.body!r}"
    assert response.json().get("error"), response.describe()
    assert growth < MAX_RSS_GROWTH, f"{case}: gateway RSS grew {growth / 2**20:.1f} MiB"
    assert gateway.process is not None and gateway.process.poll() is None, "the gateway died"
