"""wss:// on both sides of the gateway.

Client side: an HTTP/1.1 upgrade on the gateway's TLS listener. Backend side:
a route's ``tls`` block (CA bundle, client certificate, ``server_name``)
governs its ``wss`` backends as it does its ``https`` ones.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from common.tls_servers import make_certs
from gateway.tls_support import TLSBackends, TLSWebSocketBackend, tls_route
from support.gateway import HOST, GatewayProcess, Launcher, gateway_route
from support.processes import free_port
from support.websocket import greeting, header_map, recv, ws_connect
from websockets.exceptions import InvalidStatus


async def test_wss_echoes_through_the_tls_listener(launcher: Launcher, tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    backend = launcher.backends(1, prefix="wss")[0]
    tls_port = free_port()
    cert, key = certs.a
    listener = {
        "port": tls_port,
        "tls": {"certificates": [{"cert_file": str(cert), "key_file": str(key)}]},
    }
    launcher.gateway({"listeners": [listener], "routes": [gateway_route([backend])]})
    context = ssl.create_default_context(cafile=str(certs.ca.cert_file))
    async with ws_connect(
        f"https://127.0.0.1:{tls_port}", host=HOST, ssl=context, server_hostname="localhost"
    ) as socket:
        seen = header_map(await greeting(socket))
        assert seen["x-forwarded-proto"] == "https"
        await socket.send("over TLS")
        assert await recv(socket) == "over TLS"
        await socket.send(b"\x01\x02")
        assert await recv(socket) == b"\x01\x02"


Backends = TLSBackends[TLSWebSocketBackend]


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    made = Backends(tmp_path_factory.mktemp("wss"), TLSWebSocketBackend)
    yield made
    made.close()


@pytest.fixture(scope="module")
def gateway(module_launcher: Launcher, backends: Backends) -> GatewayProcess:
    ca = str(backends.ca.cert_file)
    client = backends.client_files()
    routes = [
        tls_route("trusted", backends.plain.url, ca_file=ca),
        tls_route("wrong-ca", backends.plain.url, ca_file=str(backends.other_ca.cert_file)),
        tls_route("mtls", backends.mtls.url, ca_file=ca, **client),
        tls_route("mtls-without-cert", backends.mtls.url, ca_file=ca),
        tls_route("named", backends.named.url, ca_file=ca, server_name="backend.internal"),
    ]
    return module_launcher.gateway({"routes": routes})


async def _echo(gateway: GatewayProcess, route: str) -> str | None:
    """Open a socket through ``route``, check one echo; the client CN the backend saw."""
    async with ws_connect(gateway.url, "/ws", host=f"{route}.test") as socket:
        hello = json.loads(await recv(socket))
        await socket.send("through wss")
        assert await recv(socket) == "through wss"
        client_cn: str | None = hello["client_cn"]
        return client_cn


async def _refusal(gateway: GatewayProcess, route: str) -> tuple[int, dict[str, Any]]:
    try:
        async with ws_connect(gateway.url, "/ws", host=f"{route}.test"):
            pass
    except InvalidStatus as exc:
        return exc.response.status_code, json.loads(exc.response.body or b"{}")
    raise AssertionError(f"route {route} opened a socket")


async def test_a_wss_backend_signed_by_the_routes_ca_echoes(gateway: GatewayProcess) -> None:
    # the CA is the route's own, in no trust store: the default context refused it
    assert await _echo(gateway, "trusted") is None


async def test_a_wss_backend_the_routes_ca_did_not_sign_is_a_502(gateway: GatewayProcess) -> None:
    status, body = await _refusal(gateway, "wrong-ca")
    assert status == 502
    assert body["error"] == "upstream_tls_failed"
    assert "CERTIFICATE_VERIFY_FAILED" in body["detail"]


async def test_the_routes_client_certificate_is_offered_to_a_wss_backend(
    gateway: GatewayProcess,
) -> None:
    assert await _echo(gateway, "mtls") == "gateway-1"


async def test_a_wss_backend_wanting_a_client_certificate_refuses_none(
    gateway: GatewayProcess,
) -> None:
    # with TLS 1.3 the refusal comes after the client's side of the handshake,
    # where the 101 should be: still named a TLS failure
    status, body = await _refusal(gateway, "mtls-without-cert")
    assert status == 502, body
    assert body["error"] == "upstream_tls_failed", body


async def test_server_name_is_the_name_a_wss_backend_is_checked_against(
    gateway: GatewayProcess,
) -> None:
    assert await _echo(gateway, "named") is None
