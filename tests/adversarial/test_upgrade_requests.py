"""An ``Upgrade`` request the gateway does not take must still be one whole HTTP request.

Found by the request fuzzer: ``PUT`` with ``Upgrade: websocket`` and a body went
to uvicorn's WebSocket handshake path, so the gateway forwarded the head
without its body and the backend, waiting for it, was blamed with a 504; an
HTTP/0.9 upgrade got no answer at all. A service that does not take WebSocket
(the gateway with ``ws_enabled`` off, as auth and the accounts page always are)
reads an upgrade request as plain HTTP, answers it, and closes the connection
(the parser stops after it). The gateway taking WebSocket answers an upgrade
that is no valid handshake (no key) with 400 from the handshake itself, never
a backend's blame. Either way one with a body is refused with 400, since the
parser skips an upgrade request's body and it would never arrive.
"""

from __future__ import annotations

from typing import Any

import pytest
from adversarial.raw import exchange
from adversarial.support import route
from support.gateway import HOST, GatewayProcess, Launcher


@pytest.fixture(scope="module", params=["ws-off", "ws-on"])
def gateway(module_launcher: Launcher, request: pytest.FixtureRequest) -> GatewayProcess:
    backend = module_launcher.backends(1, prefix=f"upgrade-{request.param}")[0]
    env = {"GATEHOUSE_GATEWAY_WS_ENABLED": str(request.param == "ws-on").lower()}
    return module_launcher.gateway({"routes": [route("app", [backend], [HOST])]}, env=env)


def test_an_upgrade_request_is_answered_without_blaming_the_backend(
    gateway: GatewayProcess,
) -> None:
    plain = (
        f"GET /get HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    ).encode()
    response = exchange(gateway.url, plain)
    if gateway.env.get("GATEHOUSE_GATEWAY_WS_ENABLED") == "true":
        # not a handshake (no Sec-WebSocket-Key): refused by the handshake, not forwarded
        assert response.status == 400, response.describe()
    else:
        echo: Any = response.echo
        assert response.status == 200 and echo is not None, response.describe()
    with_body = (
        f"PUT /put HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Content-Length: 5\r\n\r\nhello"
    ).encode()
    refused = exchange(gateway.url, with_body)
    assert refused.status == 400, refused.describe()


def test_an_http09_upgrade_gets_an_answer(gateway: GatewayProcess) -> None:
    data = (
        f"PUT ftp://other.example/x HTTP/0.9\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nContent-Length: 5\r\n\r\nhello"
    ).encode()
    response = exchange(gateway.url, data)
    assert response.status is not None and 400 <= response.status < 600, response.describe()
    assert response.status != 500, response.describe()
