"""An upstream connection keeps CPython's fast attribute access.

With more than 30 instance attributes (CPython 3.11's shared-key dict) every
``self.x`` in the response parser's callbacks costs about four times as much;
:class:`H1Connection` has 34, so they live in slots. A connection that served a
real request over a real socket is inspected here.
"""

from __future__ import annotations

import asyncio

from gateway.test_upstream_pool import KeepAliveBackend, finish, get, shut

from gatehouse_gateway.upstream.h1 import UpstreamClient


async def test_a_used_upstream_connection_has_no_instance_dict() -> None:
    backend = await KeepAliveBackend().start()
    client = UpstreamClient()
    try:
        assert await finish(await get(client, backend.url)) == b"conn-1"
        (pool,) = client.pools.values()
        (conn,) = pool.idle
        assert not hasattr(conn, "__dict__")
        assert conn.reused and conn.pool is pool
    finally:
        await shut(client, backend)
        await asyncio.sleep(0)
