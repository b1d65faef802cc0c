"""Attack 3: a request head that never ends, or a request line too long to hold.

One connection streams a 50 MB header. A server that buffers a head until it
is complete holds all of it in memory (and parses it again on every read);
the contract caps the head (``max_header_bytes``, 64 KiB by default) and
answers 431, and the request line (``max_request_line_bytes``) with 414. While
the bomb streams, other connections are served, and the gateway's memory
stays put. The same holds on a host no route claims and on the admin listener.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from adversarial.raw import Sent, connect, exchange, request_bytes, rss_bytes, status_of
from adversarial.raw import stream_until_refused as stream
from adversarial.support import admin_url, route
from support.gateway import HOST, GatewayProcess, Launcher

BOMB_BYTES = 50 * 1024 * 1024
MAX_RSS_GROWTH = 40 * 1024 * 1024
FILLER = b"a" * 65536


@pytest.fixture(scope="module")
def backend(module_launcher: Launcher) -> Any:
    return module_launcher.backends(1, prefix="bomb")[0]


@pytest.fixture(scope="module")
def gateway(module_launcher: Launcher, backend: Any) -> GatewayProcess:
    return module_launcher.gateway({"routes": [route("app", [backend], [HOST])]})


@pytest.fixture
def fresh_gateway(launcher: Launcher, backend: Any) -> GatewayProcess:
    """A gateway of the test's own: memory a previous bomb left allocated would hide growth."""
    return launcher.gateway({"routes": [route("app", [backend], [HOST])]})


def _bombard(
    gateway: GatewayProcess, url: str, first: bytes, filler: bytes = FILLER
) -> tuple[Sent, list[str], int]:
    """Stream the bomb on one connection while plain requests go on others.

    Returns what the bomb got back, the failures of the plain requests, and
    the gateway's largest RSS growth seen meanwhile.
    """
    baseline = rss_bytes(gateway.pid)
    peak = baseline
    result: list[Sent] = []

    def bomb() -> None:
        with connect(url, timeout=30) as sock:
            result.append(stream(sock, first, filler, BOMB_BYTES, deadline=time.monotonic() + 60))

    thread = threading.Thread(target=bomb, daemon=True)
    thread.start()
    failures: list[str] = []
    with httpx.Client(base_url=gateway.url, headers={"Host": HOST}, timeout=30) as client:
        for _ in range(600):  # bounded: at most ~60 s of 0.1 s steps, plus the requests
            if not thread.is_alive():
                break
            try:
                response = client.get("/ordinary", headers={"Connection": "close"})
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
            peak = max(peak, rss_bytes(gateway.pid))
            time.sleep(0.1)
    thread.join(timeout=30)
    peak = max(peak, rss_bytes(gateway.pid))
    if not result:
        pytest.fail("the bomb's connection never finished")
    return result[0], failures, peak - baseline


def _check_bomb(what: str, sent: Sent, failures: list[str], growth: int) -> None:
    status = status_of(sent.received)
    assert status == 431, (
        f"{what}: after {sent.sent / 2**20:.1f} MiB of head the gateway answered "
        f"{sent.received[:300]!r} (error {sent.error}, closed {sent.closed}, RSS growth "
        f"{growth / 2**20:.1f} MiB, plain requests failed: {failures[:2]}); expected a 431"
    )
    assert not failures, f"{what}: plain requests failed meanwhile: {failures[:5]}"
    assert growth < MAX_RSS_GROWTH, (
        f"{what}: the gateway's RSS grew {growth / 2**20:.1f} MiB "
        f"while {sent.sent / 2**20:.1f} MiB of head came in"
    )


def test_one_endless_header_gets_431_and_others_are_served(fresh_gateway: GatewayProcess) -> None:
    gateway = fresh_gateway
    first = f"GET / HTTP/1.1\r\nHost: {HOST}\r\nX-Bomb: ".encode()
    _check_bomb("a 50 MB header value", *_bombard(gateway, gateway.url, first))


def test_endless_header_lines_get_431(fresh_gateway: GatewayProcess) -> None:
    gateway = fresh_gateway
    first = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n".encode()
    lines = b"".join(b"X-Line-%d: v\r\n" % i for i in range(4000))
    _check_bomb("50 MB of short header lines", *_bombard(gateway, gateway.url, first, lines))


def test_endless_header_on_an_unmatched_host_gets_431(fresh_gateway: GatewayProcess) -> None:
    gateway = fresh_gateway
    first = b"GET / HTTP/1.1\r\nHost: nobody.example\r\nX-Bomb: "
    _check_bomb("a 50 MB header, unmatched host", *_bombard(gateway, gateway.url, first))


def test_endless_header_on_the_admin_listener_gets_431(fresh_gateway: GatewayProcess) -> None:
    gateway = fresh_gateway
    first = b"GET /-/healthz HTTP/1.1\r\nHost: admin\r\nX-Bomb: "
    _check_bomb("a 50 MB header, admin listener", *_bombard(gateway, admin_url(gateway), first))


LONG_TARGET = "/" + "a" * (200 * 1024)

TARGETS: dict[str, Callable[[GatewayProcess], tuple[str, str]]] = {
    "routed host": lambda g: (g.url, HOST),
    "unmatched host": lambda g: (g.url, "nobody.example"),
    "admin listener": lambda g: (admin_url(g), "admin"),
}


@pytest.mark.parametrize("where", sorted(TARGETS))
def test_overlong_request_line_gets_414(gateway: GatewayProcess, where: str) -> None:
    url, host = TARGETS[where](gateway)
    before = rss_bytes(gateway.pid)
    data = request_bytes("GET", LONG_TARGET, [("Host", host), ("Connection", "close")])
    response = exchange(url, data, timeout=30)
    assert response.status == 414, (
        f"{where}: a {len(LONG_TARGET)}-byte target got {response.describe()[:300]}"
    )
    body: Any = response.json()
    assert body.get("error"), response.describe()
    assert rss_bytes(gateway.pid) - before < MAX_RSS_GROWTH
