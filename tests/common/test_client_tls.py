"""The TLS setting of a one-URL HTTP client: no CA bundle for http://, which fails closed.

A client for a plain-HTTP URL gets a context with an empty trust store instead
of httpx's parsed CA bundle (~1.2 MB a client); were it ever to handshake, it
would refuse the server. Tested against a real TLS server whose CA the test
made: the empty store refuses it, a store that trusts that CA accepts it.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import httpx
import pytest

from gatehouse_common.client_tls import verify_for
from gatehouse_common.devcerts import ensure_local_tls


@pytest.mark.parametrize("url", ["https://issuer.example/jwks.json", "HTTPS://x", "ftp://x"])
def test_anything_but_plain_http_keeps_httpx_verification(url: str) -> None:
    assert verify_for(url) is True


@pytest.mark.parametrize("url", ["http://127.0.0.1:8001/jwks", "HTTP://auth.internal/audit"])
def test_a_plain_http_url_gets_a_verifying_context_that_trusts_no_one(url: str) -> None:
    context = verify_for(url)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0


async def test_the_empty_store_refuses_a_real_tls_server(tmp_path: Path) -> None:
    tls = ensure_local_tls(tmp_path, ["localhost"])
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tls.cert_file, tls.key_file)

    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    url = f"https://localhost:{port}/"
    try:
        context = verify_for("http://localhost/")
        assert isinstance(context, ssl.SSLContext)
        async with httpx.AsyncClient(verify=context, timeout=10) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(url)
        trusting = ssl.create_default_context(cafile=str(tls.ca.cert_file))
        async with httpx.AsyncClient(verify=trusting, timeout=10) as client:
            assert (await client.get(url)).text == "ok"
    finally:
        server.close()
        await server.wait_closed()
