"""The connection pool's caps: per backend and global, a bounded wait for a slot
that never counts against a backend, first come first served, and no request
for one backend woken by (or taking) another backend's connections."""

from __future__ import annotations

import asyncio

import pytest
from gateway.test_upstream_h1 import raw_server, read_head

from gatehouse_gateway.upstream.h1 import (
    UpstreamClient,
    UpstreamConnectError,
    UpstreamPoolTimeout,
    UpstreamResponse,
)

TIMEOUTS = {"connect_timeout": 5.0, "read_timeout": 10.0}


class KeepAliveBackend:
    """A raw keep-alive server answering every request with the number of its connection."""

    def __init__(self) -> None:
        self.accepted = 0
        self.server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> KeepAliveBackend:
        self.server, self.url = await raw_server(self._serve)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        body = b"conn-%d" % self.accepted
        for _ in range(1000):  # bounded: far more requests than any test sends
            await read_head(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
            await writer.drain()


async def get(
    client: UpstreamClient, url: str, path: bytes = b"/", **timeouts: float
) -> UpstreamResponse:
    return await client.request(url, "GET", path, [], None, **{**TIMEOUTS, **timeouts})


async def finish(response: UpstreamResponse) -> bytes:
    body = await response.read()
    response.release()
    return body


async def shut(client: UpstreamClient, *backends: KeepAliveBackend) -> None:
    await client.close()
    await asyncio.sleep(0.05)
    for backend in backends:
        if backend.server is not None:
            backend.server.close()
            await backend.server.wait_closed()


async def test_waiting_at_the_backend_cap_is_a_pool_timeout_not_a_backend_failure() -> None:
    backend = await KeepAliveBackend().start()
    client = UpstreamClient(backend_limit=1)
    try:
        held = await get(client, backend.url)
        with pytest.raises(UpstreamPoolTimeout) as caught:
            await get(client, backend.url, pool_timeout=0.3)
        assert not isinstance(caught.value, UpstreamConnectError | TimeoutError)
        assert client.connections == 1  # the one that gave up holds no place
        assert await finish(held) == b"conn-1"
        assert await finish(await get(client, backend.url)) == b"conn-1"
    finally:
        await shut(client, backend)


async def test_waiting_for_a_slot_does_not_spend_the_connect_timeout() -> None:
    """Only the TCP connect counts against connect_timeout: a request may wait
    longer than that for a slot and still be served."""
    backend = await KeepAliveBackend().start()
    client = UpstreamClient(backend_limit=1)
    try:
        held = await get(client, backend.url)
        queued = asyncio.ensure_future(
            get(client, backend.url, connect_timeout=0.2, pool_timeout=10)
        )
        await asyncio.sleep(0.5)
        assert not queued.done()
        await finish(held)
        assert await finish(await queued) == b"conn-1"  # handed the freed connection
    finally:
        await shut(client, backend)


async def test_a_backend_at_its_cap_does_not_hold_up_another() -> None:
    slow, other = await KeepAliveBackend().start(), await KeepAliveBackend().start()
    client = UpstreamClient(limit=10, backend_limit=1)
    try:
        held = await get(client, slow.url)
        assert await finish(await get(client, other.url, pool_timeout=0.5)) == b"conn-1"
        await finish(held)
    finally:
        await shut(client, slow, other)


async def test_a_request_queued_for_one_backend_leaves_another_backends_connections_alone() -> None:
    """A connection coming back idle to backend B neither wakes a request queued
    for backend A (at its cap) nor is closed by it: B's next request reuses it."""
    a, b = await KeepAliveBackend().start(), await KeepAliveBackend().start()
    client = UpstreamClient(limit=10, backend_limit=1)
    try:
        held_a = await get(client, a.url)
        held_b = await get(client, b.url)
        queued_a = asyncio.ensure_future(get(client, a.url, pool_timeout=10))
        await asyncio.sleep(0.1)
        assert await finish(held_b) == b"conn-1"  # B's connection is idle now
        await asyncio.sleep(0.1)
        assert not queued_a.done()
        assert await finish(await get(client, b.url, pool_timeout=0.5)) == b"conn-1"
        assert b.accepted == 1  # reused, not closed by the request waiting for A
        assert not queued_a.done()
        await finish(held_a)
        assert await finish(await queued_a) == b"conn-1"
        assert a.accepted == 1
        assert client.connections == 2
    finally:
        await shut(client, a, b)


async def test_requests_queued_for_a_backend_are_served_in_arrival_order() -> None:
    backend = await KeepAliveBackend().start()
    client = UpstreamClient(backend_limit=1)
    served: list[int] = []

    async def queued(index: int) -> None:
        response = await get(client, backend.url, pool_timeout=10)
        served.append(index)
        await asyncio.sleep(0.01)  # a newcomer arriving now must not jump the queue
        await finish(response)

    try:
        held = await get(client, backend.url)
        tasks = []
        for index in range(5):
            tasks.append(asyncio.ensure_future(queued(index)))
            await asyncio.sleep(0.02)
        late = asyncio.ensure_future(queued(5))  # arrives while the others are queued
        await finish(held)
        await asyncio.wait_for(asyncio.gather(*tasks, late), 10)
        assert served == [0, 1, 2, 3, 4, 5]
        assert backend.accepted == 1
    finally:
        await shut(client, backend)


async def test_a_request_that_gives_up_after_its_turn_passes_the_connection_on() -> None:
    backend = await KeepAliveBackend().start()
    client = UpstreamClient(backend_limit=1)
    try:
        held = await get(client, backend.url)
        first = asyncio.ensure_future(get(client, backend.url, pool_timeout=10))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(get(client, backend.url, pool_timeout=10))
        await asyncio.sleep(0.05)
        assert await held.read() == b"conn-1"
        held.release()  # handed to ``first`` ...
        first.cancel()  # ... which is cancelled before it runs
        assert await finish(await asyncio.wait_for(second, 5)) == b"conn-1"
        assert first.cancelled()
        assert client.connections == 1
    finally:
        await shut(client, backend)


async def test_a_closed_connection_frees_a_place_for_the_next_request() -> None:
    """A response not read whole closes its connection: the queued request gets
    the place under the cap and connects anew."""
    backend = await KeepAliveBackend().start()
    client = UpstreamClient(backend_limit=1)
    try:
        held = await get(client, backend.url)
        queued = asyncio.ensure_future(get(client, backend.url, pool_timeout=10))
        await asyncio.sleep(0.05)
        held.release()  # body unread: the connection closes
        assert await finish(await asyncio.wait_for(queued, 5)) == b"conn-2"
        assert client.connections == 1
    finally:
        await shut(client, backend)


async def test_at_the_global_cap_an_idle_connection_elsewhere_makes_room() -> None:
    """Today's wake-on-idle: a request queued at the global cap closes an idle
    connection to another backend as soon as one comes back."""
    a, b = await KeepAliveBackend().start(), await KeepAliveBackend().start()
    client = UpstreamClient(limit=2, backend_limit=2)
    try:
        held = [await get(client, a.url), await get(client, a.url)]
        queued_b = asyncio.ensure_future(get(client, b.url, pool_timeout=10))
        await asyncio.sleep(0.1)
        assert not queued_b.done()
        await finish(held[0])  # idle: closed at once to make room for B
        assert await finish(await asyncio.wait_for(queued_b, 5)) == b"conn-1"
        assert client.connections == 2
        await finish(held[1])
    finally:
        await shut(client, a, b)


async def test_a_timed_out_wait_leaves_the_counts_whole() -> None:
    a, b = await KeepAliveBackend().start(), await KeepAliveBackend().start()
    client = UpstreamClient(limit=1, backend_limit=1)
    try:
        held = await get(client, a.url)
        for url in (a.url, b.url):  # one at the backend cap, one at the global cap
            with pytest.raises(UpstreamPoolTimeout):
                await get(client, url, pool_timeout=0.1)
        assert client.connections == 1
        assert client.pool(a.url).connections == 1
        assert client.pool(b.url).connections == 0
        assert not client.pool(a.url).waiters and not client.pool(b.url).waiters
        await finish(held)
        assert await finish(await get(client, b.url, pool_timeout=1)) == b"conn-1"
    finally:
        await shut(client, a, b)
