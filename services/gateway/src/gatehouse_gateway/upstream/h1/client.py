"""Connection pools per backend, and the one call the proxy makes per attempt."""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import AsyncIterable, Sequence
from urllib.parse import urlsplit

from gatehouse_gateway.upstream.h1.connection import H1Connection
from gatehouse_gateway.upstream.h1.errors import UpstreamBroken, UpstreamConnectError
from gatehouse_gateway.upstream.h1.response import UpstreamResponse


class BackendPool:
    """Idle keep-alive connections to one backend, most recently used first."""

    def __init__(self, client: UpstreamClient, url: str) -> None:
        parts = urlsplit(url)
        self.client = client
        self.loop = client.loop
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = client.ssl_context if parts.scheme == "https" else None
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        self.host_header = (self.host if default_port else f"{self.host}:{self.port}").encode()
        self.idle: collections.deque[H1Connection] = collections.deque()
        self.open: set[H1Connection] = set()

    async def connect(self, timeout: float) -> H1Connection:
        """A new connection, counted against the client's limit.

        Waiting for room under the limit is part of connecting, bounded by the
        same timeout: a request never waits for a connection for ever.
        """
        reserved = False
        try:
            async with asyncio.timeout(timeout):
                await self.client.reserve()
                reserved = True
                _, conn = await self.loop.create_connection(
                    lambda: H1Connection(self), self.host, self.port, ssl=self.ssl
                )
        except BaseException as exc:
            if reserved:
                self.client.unreserve()
            if isinstance(exc, TimeoutError):
                raise UpstreamConnectError(f"connect timed out after {timeout:g}s") from exc
            if isinstance(exc, OSError):
                raise UpstreamConnectError(f"cannot connect: {exc}") from exc
            raise
        self.open.add(conn)
        return conn

    def take_idle(self) -> H1Connection | None:
        """The most recently used live connection, if one is idle and not too old."""
        idle = self.idle
        oldest = self.loop.time() - self.client.keepalive
        while idle:
            conn = idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                continue
            if conn.idle_since < oldest:
                conn.close()
                continue
            return conn
        return None

    def put_back(self, conn: H1Connection) -> None:
        conn.idle_since = self.loop.time()
        self.idle.append(conn)
        # A request waiting at the limit can now recycle this connection; keep-alive
        # connections to a healthy backend may never close by themselves.
        self.client.wake_one()

    def forget(self, conn: H1Connection) -> None:
        if conn in self.open:
            self.open.discard(conn)
            self.client.unreserve()

    def close(self) -> None:
        for conn in list(self.open):
            conn.close()
        self.idle.clear()


class UpstreamClient:
    """Pools per backend URL; ``request`` is the one call the proxy makes per attempt.

    ``limit`` bounds the open connections to all backends together (as
    aiohttp's connector did); a request over it waits for one to close or
    come back idle. ``keepalive`` is how long an idle connection may be reused.
    """

    def __init__(self, *, limit: int = 1000, keepalive: float = 60.0) -> None:
        self.loop = asyncio.get_running_loop()
        self.limit = limit
        self.keepalive = keepalive
        self.ssl_context = ssl.create_default_context()
        self.pools: dict[str, BackendPool] = {}
        self.connections = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def pool(self, base_url: str) -> BackendPool:
        pool = self.pools.get(base_url)
        if pool is None:
            pool = self.pools[base_url] = BackendPool(self, base_url)
        return pool

    async def reserve(self) -> None:
        """Count a new connection, waiting while ``limit`` are open.

        At the limit an idle connection (to any backend) is closed to make room;
        with none idle the request queues until one closes or comes back idle. A
        woken request that finds the room taken keeps its place at the front.
        """
        woken = False
        while self.connections >= self.limit:
            if self._close_one_idle():
                continue
            waiter = self.loop.create_future()
            if woken:
                self._waiters.appendleft(waiter)  # keep its place: no starving at the limit
            else:
                self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self.wake_one()  # it was this one's turn: pass it on
                raise
            woken = True
        self.connections += 1

    def unreserve(self) -> None:
        self.connections -= 1
        self.wake_one()

    def wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _close_one_idle(self) -> bool:
        """Close one idle connection; closing frees its place at once (``forget``)."""
        for pool in self.pools.values():
            conn = pool.take_idle()
            if conn is not None:
                conn.close()
                return True
        return False

    async def request(
        self,
        base_url: str,
        method: str,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: AsyncIterable[bytes] | None,
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> UpstreamResponse:
        """Send one request; the response once its head is in (the body streams after).

        ``target`` is the raw path and query; ``headers`` are sent as given
        (bytes, as they go on the wire), plus ``Host`` (the backend's) and, for
        a body of unknown length, ``Transfer-Encoding: chunked``. A pooled
        connection the backend closed while it sat idle fails before any byte
        of an answer; a request without a body then goes again, once, on a
        fresh connection.
        """
        pool = self.pool(base_url)
        has_length = False
        parts = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\nhost: ", pool.host_header]
        for name, value in headers:
            if len(name) == 14 and name.lower() == b"content-length":
                has_length = True
            parts += (b"\r\n", name, b": ", value)
        chunked = body is not None and not has_length
        if chunked:
            parts.append(b"\r\ntransfer-encoding: chunked")
        parts.append(b"\r\n\r\n")
        head = b"".join(parts)
        head_only = method == "HEAD"
        conn = pool.take_idle()
        if conn is not None:
            try:
                return await conn.exchange(head, body, chunked, read_timeout, head_only)
            except UpstreamBroken:
                if conn.received_any or body is not None:
                    raise
                # a stale keep-alive connection: once more on a new one
        conn = await pool.connect(connect_timeout)
        return await conn.exchange(head, body, chunked, read_timeout, head_only)

    async def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()
