"""Connection pools per backend, and the one call the proxy makes per attempt.

Two caps bound the connections: ``backend_limit`` per backend and ``limit``
for all backends together. A request that finds no idle connection and no
room under both caps queues, first come first served, for at most its pool
timeout; that wait is the gateway being busy, never the backend failing, so
it ends as :class:`UpstreamPoolTimeout` and not as a connect error.

What frees up is handed over directly, so a request arriving later cannot
take it from one that waits:

- a connection coming back idle goes to the oldest request queued for *its*
  backend (a reuse); with none queued it stays idle, unless a request for
  another backend waits for room under the global cap: then it is closed
  to make that room (as before the per-backend cap);
- a connection closing frees a place under its backend's cap and the global
  one: the oldest queued request that can use it gets it, reserved for it.

A request queued for a backend at its cap is never woken by another
backend's connections, and never closes them.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import ssl
from collections.abc import AsyncIterable, Sequence
from urllib.parse import urlsplit

from gatehouse_gateway.upstream.h1.connection import H1Connection, tls_error
from gatehouse_gateway.upstream.h1.errors import (
    UpstreamBroken,
    UpstreamConnectError,
    UpstreamPoolTimeout,
)
from gatehouse_gateway.upstream.h1.response import UpstreamResponse
from gatehouse_gateway.upstream.tls import UpstreamTLS

# a queued request: (arrival number, the future that receives an idle connection,
# or None for a place reserved under both caps)
_Waiter = tuple[int, "asyncio.Future[H1Connection | None]"]

# A pooled connection the backend dropped while idle fails before any byte of an
# answer; a request without a body then goes again, at most this many times.
_STALE_RETRIES = 2


class BackendPool:
    """Idle keep-alive connections to one backend, most recently used first."""

    def __init__(self, client: UpstreamClient, url: str, tls: UpstreamTLS | None = None) -> None:
        parts = urlsplit(url)
        self.client = client
        self.loop = client.loop
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = None
        self.server_hostname: str | None = None
        if parts.scheme == "https":
            self.ssl = tls.context if tls is not None else client.ssl_context
            self.server_hostname = tls.server_name if tls is not None else None
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        self.host_header = (self.host if default_port else f"{self.host}:{self.port}").encode()
        self.idle: collections.deque[H1Connection] = collections.deque()
        self.open: set[H1Connection] = set()
        # open and connecting, against the client's backend_limit
        self.connections = 0
        self.waiters: collections.deque[_Waiter] = collections.deque()

    async def acquire(self, connect_timeout: float, pool_timeout: float) -> H1Connection:
        """An idle connection, or a new one under both caps, waiting up to ``pool_timeout``.

        Only the TCP connect (and TLS handshake) counts against ``connect_timeout``.
        """
        client = self.client
        while not self.waiters:  # nobody for this backend is queued ahead
            conn = self.take_idle()
            if conn is not None:
                return conn
            if self.connections >= client.backend_limit:
                break
            if client.connections < client.limit:
                self._reserve()
                return await self._connect(connect_timeout)
            if not client._close_one_idle():  # at the global cap: make room if one is idle
                break
        handed = await self._wait(pool_timeout)
        if handed is not None:
            return handed
        return await self._connect(connect_timeout)  # a place was reserved for this request

    async def _wait(self, timeout: float) -> H1Connection | None:
        client = self.client
        future: asyncio.Future[H1Connection | None] = self.loop.create_future()
        entry: _Waiter = (next(client._arrivals), future)
        self.waiters.append(entry)
        client._queued += 1
        try:
            async with asyncio.timeout(timeout):
                return await future
        except BaseException as exc:
            if future.done() and not future.cancelled():
                # it was handed something just as it gave up: pass it on
                self._give_back(future.result())
            else:
                try:
                    self.waiters.remove(entry)
                    client._queued -= 1
                except ValueError:
                    pass  # already dropped by a hand-over
            if isinstance(exc, TimeoutError):
                raise UpstreamPoolTimeout(
                    f"no connection to {self.host}:{self.port} free within {timeout:g}s"
                ) from None
            raise

    def _give_back(self, handed: H1Connection | None) -> None:
        if handed is None:
            self._unreserve()
        elif handed.closed:
            pass  # forgotten already
        else:
            self.put_back(handed)

    def _hand(self, handed: H1Connection | None) -> bool:
        """Give ``handed`` to the oldest live request queued here; False if none is."""
        waiters = self.waiters
        while waiters:
            _, future = waiters.popleft()
            self.client._queued -= 1
            if not future.done():
                future.set_result(handed)
                return True
        return False

    def _reserve(self) -> None:
        self.connections += 1
        self.client.connections += 1

    def _unreserve(self) -> None:
        self.connections -= 1
        client = self.client
        client.connections -= 1
        if client._queued:
            client._dispatch()

    async def _connect(self, timeout: float) -> H1Connection:
        """A new connection in a place already reserved for it."""
        try:
            async with asyncio.timeout(timeout):
                _, conn = await self.loop.create_connection(
                    lambda: H1Connection(self),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.server_hostname,
                )
        except BaseException as exc:
            self._unreserve()
            if isinstance(exc, ssl.SSLError):  # an OSError too: the more precise first
                raise tls_error(exc) from exc
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
        conn.reused = True
        if self.waiters and self._hand(conn):
            return
        self.idle.append(conn)
        # A request waiting at the global cap can close this one to make room;
        # keep-alive connections to a healthy backend may never close by themselves.
        if self.client._queued:
            self.client._dispatch()

    def forget(self, conn: H1Connection) -> None:
        if conn in self.open:
            self.open.discard(conn)
            self._unreserve()

    def _serve_first(self) -> bool:
        """Hand what this backend's oldest queued request can use now; False if nothing."""
        waiters = self.waiters
        while waiters and waiters[0][1].done():  # gave up, not yet out of the queue
            waiters.popleft()
            self.client._queued -= 1
        if not waiters:
            return False
        conn = self.take_idle()
        if conn is not None:
            return self._hand(conn)
        client = self.client
        if self.connections >= client.backend_limit:
            return False
        if client.connections >= client.limit and not client._close_one_idle():
            return False
        self._reserve()
        if not self._hand(None):  # pragma: no cover - the front was live just above
            self._unreserve()
            return False
        return True

    def close(self) -> None:
        for conn in list(self.open):
            conn.close()
        self.idle.clear()


class UpstreamClient:
    """Pools per backend URL; ``request`` is the one call the proxy makes per attempt.

    ``limit`` bounds the open connections to all backends together (as
    aiohttp's connector did) and ``backend_limit`` those to each backend, so
    one slow backend cannot take every place; a request over either waits
    for one to close or come back idle. ``keepalive`` is how long an idle
    connection may be reused. A response head is refused past
    ``max_response_head_bytes`` or ``max_response_headers`` lines.
    """

    def __init__(
        self,
        *,
        limit: int = 1000,
        backend_limit: int = 256,
        keepalive: float = 60.0,
        max_response_head_bytes: int = 64 * 1024,
        max_response_headers: int = 100,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.limit = limit
        self.backend_limit = backend_limit
        self.keepalive = keepalive
        self.max_response_head_bytes = max_response_head_bytes
        self.max_response_headers = max_response_headers
        self._ssl_context: ssl.SSLContext | None = None
        self.pools: dict[str | tuple[str, UpstreamTLS], BackendPool] = {}
        self.connections = 0
        self._queued = 0  # requests queued in all pools
        self._arrivals = itertools.count()
        self._dispatching = False

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The context of ``https`` backends without TLS settings of their own: the
        system's trust store, loaded on first use (a parsed CA bundle is ~2.5 MB a
        worker, which a gateway with ``http`` backends only need not hold)."""
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def pool(self, base_url: str, tls: UpstreamTLS | None = None) -> BackendPool:
        """The pool for ``base_url`` reached with ``tls`` (one per distinct pair)."""
        key: str | tuple[str, UpstreamTLS] = base_url if tls is None else (base_url, tls)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = BackendPool(self, base_url, tls)
        return pool

    def _dispatch(self) -> None:
        """Serve queued requests, oldest first, while anything they can use is free.

        Called when a connection closes or comes back idle with requests
        queued. A request for a backend at its cap is skipped (only its own
        backend's connections can serve it), so it neither wakes nor takes
        from another backend.
        """
        if self._dispatching:  # closing an idle connection below lands here again
            return
        self._dispatching = True
        try:
            while self._queued:
                queued = [pool for pool in self.pools.values() if pool.waiters]
                queued.sort(key=lambda pool: pool.waiters[0][0])
                if not any(pool._serve_first() for pool in queued):
                    return
        finally:
            self._dispatching = False

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
        pool_timeout: float | None = None,
        upgrade: bool = False,
        tls: UpstreamTLS | None = None,
        host: bytes | None = None,
    ) -> UpstreamResponse:
        """Send one request; the response once its head is in (the body streams after).

        ``target`` is the raw path and query; ``headers`` are sent as given
        (bytes, as they go on the wire), plus ``Host`` (the backend's) and, for
        a body of unknown length, ``Transfer-Encoding: chunked``. A pooled
        connection the backend closed while it sat idle fails before any byte
        of an answer; a request without a body then goes again.

        ``pool_timeout`` (default: ``connect_timeout``) bounds the wait for a
        free connection (:class:`UpstreamPoolTimeout`); ``connect_timeout`` the
        TCP connect and TLS handshake; ``read_timeout`` the response head, from
        when the request is sent, and then each silence in the body. Only with
        ``upgrade`` may the backend answer 101 and switch protocols. ``tls`` is how
        an ``https://`` backend is reached (default: verified against the system
        trust store); a failed handshake is :class:`UpstreamTLSError`. ``host`` is
        the ``Host`` header to send instead of the backend's own (a route that
        preserves the client's).
        """
        pool = self.pool(base_url, tls)
        has_length = False
        host_header = pool.host_header if host is None else host
        parts = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\nhost: ", host_header]
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
        if pool_timeout is None:
            pool_timeout = connect_timeout
        stale = 0
        while True:
            # an idle connection nobody queues for (the usual case) without a coroutine
            conn = None if pool.waiters else pool.take_idle()
            if conn is None:
                conn = await pool.acquire(connect_timeout, pool_timeout)
            try:
                return await conn.exchange(head, body, chunked, read_timeout, head_only, upgrade)
            except UpstreamBroken:
                if not conn.reused or conn.received_any or body is not None:
                    raise
                stale += 1
                if stale > _STALE_RETRIES:
                    raise

    async def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()
