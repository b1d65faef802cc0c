"""The JWKS fetched over the gateway's own upstream client (gatehouse_gateway.jwks_fetch).

What the httpx client did before must still hold: the document and its status
come back as sent, a redirect is not followed, an endless answer is cut at the
size bound, and silence or a refused connection is a fetch error (the JWKS
client then keeps its last good keys), never an exception of another kind.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from gateway.test_upstream_h1 import Handler, raw_server, read_head, stop
from gateway.test_upstream_hostile import answering
from gateway.tls_support import TestCA, server_context
from support.processes import free_port

from gatehouse_common.jwt.jwks import MAX_JWKS_BYTES, JWKSClient, JWKSFetchError
from gatehouse_gateway.jwks_fetch import upstream_fetch
from gatehouse_gateway.upstream.h1 import UpstreamClient

DOCUMENT = {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": "A" * 43}]}


def _answer(status: bytes, body: bytes, extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\ncontent-length: " + str(len(body)).encode()
    return head + b"\r\n" + extra + b"\r\n" + body


async def fetch_from(handler: Handler, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """``upstream_fetch`` of ``path`` from a raw server running ``handler``."""
    server, url = await raw_server(handler)
    client = UpstreamClient()
    try:
        return await upstream_fetch(lambda: client)(url + path, timeout)
    finally:
        await stop(client, server)


async def test_the_document_and_status_come_back_and_the_request_asks_for_json() -> None:
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await read_head(reader))
        writer.write(_answer(b"200 OK", json.dumps(DOCUMENT).encode()))
        await writer.drain()
        await reader.read()

    status, body = await fetch_from(serve, "/jwks.json?v=1")
    assert (status, json.loads(body)) == (200, DOCUMENT)
    assert heads[0].startswith(b"GET /jwks.json?v=1 HTTP/1.1\r\n")
    assert b"\r\naccept: application/json\r\n" in heads[0]


async def test_a_redirect_is_not_followed() -> None:
    redirect = _answer(b"302 Found", b"", b"location: http://127.0.0.1:1/evil\r\n")
    status, _ = await fetch_from(answering(redirect), "/jwks.json")
    assert status == 302


async def test_an_endless_document_is_cut_past_the_size_bound() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        while True:
            writer.write(b"10000\r\n" + chunk + b"\r\n")
            await writer.drain()

    status, body = await fetch_from(endless, "/", 5.0)
    assert status == 200 and MAX_JWKS_BYTES < len(body) <= MAX_JWKS_BYTES + 65536


@pytest.mark.parametrize("case", ["silent", "refused", "not http"])
async def test_silence_or_no_server_is_a_fetch_error(case: str) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    handler: Handler = silent
    server, url = await raw_server(handler)
    if case == "refused":
        url = f"http://127.0.0.1:{free_port()}"
    elif case == "not http":
        url = "ftp://127.0.0.1"
    client = UpstreamClient()
    try:
        with pytest.raises(JWKSFetchError):
            await upstream_fetch(lambda: client)(url + "/jwks.json", 0.3)
    finally:
        await stop(client, server)


async def test_the_jwks_client_keeps_its_keys_through_the_upstream_fetch() -> None:
    """Wired as the gateway wires it: a refresh that fails records the error."""
    client = UpstreamClient()
    url = f"http://127.0.0.1:{free_port()}/jwks.json"
    jwks = JWKSClient(url, fetch=upstream_fetch(lambda: client))
    try:
        assert await jwks.refresh() is False
        assert jwks.snapshot().last_error is not None
    finally:
        await jwks.aclose()
        await client.close()


async def test_an_https_issuer_the_system_does_not_trust_is_refused(tmp_path: Path) -> None:
    """Like httpx's default client: an ``https://`` JWKS is verified against the
    system's trust store, so a key set from an unknown CA is never read."""
    ca = TestCA(tmp_path, "jwks")
    context = server_context(ca.issue("localhost", ips=("127.0.0.1",)), None)
    served: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append(await read_head(reader))
        writer.write(_answer(b"200 OK", json.dumps(DOCUMENT).encode()))
        await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    client = UpstreamClient()
    try:
        with pytest.raises(JWKSFetchError, match="certificate"):
            await upstream_fetch(lambda: client)(f"https://127.0.0.1:{port}/jwks.json", 2.0)
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    assert served == []
