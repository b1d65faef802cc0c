"""wss:// through the gateway's TLS listener: an HTTP/1.1 upgrade on the TLS transport."""

from __future__ import annotations

import ssl
from pathlib import Path

from common.tls_servers import make_certs
from support.gateway import HOST, Launcher, gateway_route
from support.processes import free_port
from support.websocket import greeting, header_map, recv, ws_connect


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
