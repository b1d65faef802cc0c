"""Attack 4: uploads that trickle, and uploads that stop.

25 clients POST to route A, each declaring 1000 bytes and sending one byte a
second. A gateway that counts the whole upload against the backend's read
timeout calls the backend slow, and after a few such "failures" ejects it:
the clients take route A down without sending anything the backend could
refuse. The contract: the read timer starts when the request body has been
sent, a body idle for ``body_idle_timeout`` gets 408 from the gateway itself,
and neither is a backend failure. Meanwhile route B answers throughout.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

import httpx
import pytest
from adversarial.raw import Reader, connect, read_response
from adversarial.support import admin_get, admin_metric, route
from support.gateway import GatewayProcess, Launcher

HOST_A = "a.gatehouse.test"
HOST_B = "b.gatehouse.test"
IDLE_TIMEOUT = 2.0
CLIENTS = 25
TRICKLE_SECONDS = 8
DECLARED = 1000
HEAD = (
    f"POST /upload HTTP/1.1\r\nHost: {HOST_A}\r\nContent-Type: application/octet-stream\r\n"
    f"Content-Length: {DECLARED}\r\n\r\n"
).encode()


@pytest.fixture
def setup(launcher: Launcher) -> tuple[GatewayProcess, Any, Any]:
    backend_a, backend_b = launcher.backends(2, prefix="slow")
    document = {
        "routes": [
            # A read timeout well under the trickle: a gateway that starts the
            # backend's clock before the body is sent times the backend out.
            route("a", [backend_a], [HOST_A], timeouts={"connect": 2, "read": 3}),
            route("b", [backend_b], [HOST_B]),
        ]
    }
    env = {"GATEHOUSE_GATEWAY_BODY_IDLE_TIMEOUT": str(IDLE_TIMEOUT)}
    return launcher.gateway(document, env=env), backend_a, backend_b


def _close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()


def test_trickled_uploads_do_not_eject_the_backend_or_stall_others(
    setup: tuple[GatewayProcess, Any, Any],
) -> None:
    gateway, _, _ = setup
    socks = [connect(gateway.url, timeout=30) for _ in range(CLIENTS)]
    problems: list[str] = []
    try:
        for sock in socks:
            sock.sendall(HEAD)
        b_answers: list[int] = []
        a_answers: list[str] = []
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            for second in range(TRICKLE_SECONDS):
                for index, sock in enumerate(socks):
                    try:
                        sock.sendall(b"x")
                    except OSError as exc:
                        problems.append(f"upload {index} cut at second {second}: {exc!r}")
                started = time.monotonic()
                while time.monotonic() - started < 1.0:
                    try:
                        b_answers.append(client.get("/b", headers={"Host": HOST_B}).status_code)
                    except httpx.HTTPError as exc:
                        problems.append(f"route B at second {second}: {exc!r}")
                    time.sleep(0.2)
                # A quick GET on route A itself: its backend must stay in service.
                answer = client.get("/a", headers={"Host": HOST_A})
                if answer.status_code != 200:
                    a_answers.append(f"second {second}: {answer.status_code} {answer.text[:160]}")
        bad_b = [status for status in b_answers if status != 200]
        assert not bad_b, f"route B answered {bad_b} while A's uploads trickled"
        assert not a_answers, f"route A's backend was taken out by slow clients: {a_answers}"
        # The uploads now stop: each gets the gateway's 408 after the idle timeout.
        answers: list[int | str] = []
        for sock in socks:
            try:
                answers.append(read_response(Reader(sock, IDLE_TIMEOUT + 15)).status)
            except Exception as exc:
                answers.append(f"{type(exc).__name__}: {exc}"[:120])
    finally:
        _close_all(socks)
    a_now = httpx.get(gateway.url + "/after", headers={"Host": HOST_A}, timeout=30)
    assert a_now.status_code == 200, (
        f"route A after the trickle: {a_now.status_code} {a_now.text[:300]}; "
        f"uploads got {answers}; send problems {problems[:3]}"
    )
    assert all(a == 408 for a in answers), (
        f"stalled uploads got {answers}, expected 408 each "
        "(a 502/504 means the client's stall was blamed on the backend)"
    )
    state = admin_get(gateway, "/-/config").json()
    (backend,) = next(r for r in state["routes"] if r["name"] == "a")["backends"]
    assert backend["available"] and not backend["ejected"], f"backend A afterwards: {backend}"
    ejections = admin_metric(gateway, "gateway_ejections_total")
    assert ejections == 0, f"{ejections} ejection(s) counted for slow clients"


def test_stalled_upload_gets_408_after_the_idle_timeout(
    setup: tuple[GatewayProcess, Any, Any],
) -> None:
    gateway, _, _ = setup
    with connect(gateway.url, timeout=30) as sock:
        sock.sendall(HEAD + b"x" * 10)
        started = time.monotonic()
        try:
            response = read_response(Reader(sock, IDLE_TIMEOUT + 20))
        except Exception as exc:
            pytest.fail(
                f"a stalled upload got no answer in {time.monotonic() - started:.1f}s: {exc}"
            )
    waited = time.monotonic() - started
    assert response.status == 408, f"a stalled upload got {response.describe()} after {waited:.1f}s"
    assert response.json().get("error"), response.describe()
    assert waited >= IDLE_TIMEOUT * 0.5, f"408 after {waited:.1f}s, before the idle timeout"
