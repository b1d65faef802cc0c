"""The hot path: a raw ASGI callable that proxies one request to a backend.

Everything that can be done once is done at load time (route table, timeouts,
label children, error bodies, header sets); per request this module does one
pass over the headers, one route lookup, one pick, and streams the bodies
both ways through the pooled upstream client (upstream/h1/, measured at
half aiohttp's CPU per request: loadtest/README.md). Nothing here logs at info level
or touches pydantic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import Receive, Scope, Send

from gatehouse_common.errors import error_body
from gatehouse_common.http_protocol import SMALL_BODY
from gatehouse_common.jwt import TokenError
from gatehouse_common.request_id import new_request_id
from gatehouse_gateway.auth import challenge
from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.edge.head import HOP_BY_HOP, Refusal, RequestHead
from gatehouse_gateway.metrics import RouteMetrics
from gatehouse_gateway.routing import Route
from gatehouse_gateway.runtime import Gateway
from gatehouse_gateway.upstream.h1 import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamPoolTimeout,
    UpstreamResponse,
)
from gatehouse_gateway.upstream.retry import IDEMPOTENT_METHODS, RETRYABLE_STATUSES

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("gatehouse.access")

# uvicorn writes its own Date; the request id is the gateway's to set.
_RESPONSE_DROP = HOP_BY_HOP | {b"x-request-id", b"date"}
_JSON = (b"content-type", b"application/json")

# Requests no route claims are counted too, under one bounded label.
UNMATCHED = RouteMetrics("none")
NO_ROUTE = error_body("no_route", "no route matches this host and path")
HEADERS_TOO_LARGE = error_body("headers_too_large", "the request headers are too large")
BODY_TOO_LARGE = error_body("body_too_large", "the request body is too large")
BAD_LENGTH = error_body("bad_request", "the Content-Length header is not a number")


async def send_json(
    send: Send, status: int, body: bytes, request_id: bytes, *extra: tuple[bytes, bytes]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                _JSON,
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Body:
    """The request body for the upstream client: read whole first, or streamed from ``receive``.

    A buffered body can be sent again, so it never stops a retry; a streamed
    one has ``started`` once its first byte left the client.
    """

    __slots__ = ("buffered", "disconnected", "limit", "receive", "started", "too_large")

    def __init__(self, receive: Receive, limit: int | None) -> None:
        self.receive = receive
        self.limit = limit
        self.started = False
        self.too_large = False
        self.disconnected = False
        self.buffered: bytes | None = None

    async def buffer(self) -> int:
        """Read the whole body now; 0, or the status that ends the request (413, 499)."""
        parts: list[bytes] = []
        received = 0
        limit = self.limit
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                return 499  # gone, or the server's body idle timeout answered 408
            chunk = message.get("body", b"")
            if chunk:
                received += len(chunk)
                if limit is not None and received > limit:
                    self.too_large = True
                    return 413
                parts.append(chunk)
            if not message.get("more_body", False):
                self.buffered = b"".join(parts)
                return 0

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.buffered is not None:
            yield self.buffered
            return
        self.started = True
        received = 0
        limit = self.limit
        receive = self.receive
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                raise ConnectionAbortedError("the client went away mid-upload")
            chunk = message.get("body", b"")
            if chunk:
                received += len(chunk)
                if limit is not None and received > limit:
                    self.too_large = True
                    raise ValueError("request body over the route's limit")
                yield chunk
            if not message.get("more_body", False):
                return


class _Failure:
    """Why the last attempt failed, answered when no retry is left."""

    __slots__ = ("body", "status")

    def __init__(self, status: int, code: str, detail: str, route: str) -> None:
        self.status = status
        self.body = error_body(code, detail, route=route)


class Proxy:
    """``await proxy(scope, receive, send)`` for every HTTP request no gateway endpoint claims."""

    def __init__(self, gateway: Gateway, fallback: Any) -> None:
        self.gateway = gateway
        # ``/metrics`` on any host no route claims, where the config asks for it.
        self.fallback = fallback
        self.access_log = gateway.settings.access_log and access_logger.isEnabledFor(logging.INFO)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        gateway = self.gateway
        rules = gateway.edge
        try:
            head = rules.read(scope)
        except Refusal as refusal:
            await send_json(
                send, refusal.status, refusal.body, new_request_id().encode(), *refusal.headers
            )
            UNMATCHED.observe(scope["method"], refusal.status, time.perf_counter() - started)
            return
        request_id = rules.request_id(head)
        rid = request_id.encode()
        path = head.path.decode("latin-1")
        route = gateway.table.match(head.host, path)
        if route is None:
            if path == "/metrics" and gateway.loaded.config.public_metrics:
                await self.fallback(scope, receive, send)
            else:
                await send_json(send, 404, NO_ROUTE, rid)
                UNMATCHED.observe(scope["method"], 404, time.perf_counter() - started)
            return
        method: str = scope["method"]
        status = await self._proxy(route, scope, receive, send, method, head, rid)
        elapsed = time.perf_counter() - started
        route.metrics.observe(method, status, elapsed)
        if self.access_log:
            access_logger.info(
                "%s %s %d", method, path, status,
                extra={"route": route.name, "status": status, "request_id": request_id,
                       "duration_ms": round(elapsed * 1000, 3)},
            )  # fmt: skip

    async def _proxy(
        self,
        route: Route,
        scope: Scope,
        receive: Receive,
        send: Send,
        method: str,
        head: RequestHead,
        rid: bytes,
    ) -> int:
        """Proxy to a backend of ``route``; returns the status sent to the client."""
        if head.header_bytes > route.max_header_bytes:
            await send_json(send, 431, HEADERS_TOO_LARGE, rid)
            return 431
        limit = route.max_body_bytes
        declared: int | None = None
        has_body = head.chunked
        if head.length is not None and not head.chunked:
            try:
                declared = int(head.length)
            except ValueError:
                await send_json(send, 400, BAD_LENGTH, rid)
                return 400
            if limit is not None and declared > limit:
                await send_json(send, 413, BODY_TOO_LARGE, rid)
                return 413
            has_body = declared > 0
        out = head.headers
        if head.connection is not None:
            # Headers named in Connection are hop-by-hop too (RFC 9110 section 7.6.1).
            named = {t.strip().lower() for t in head.connection.split(b",")}
            out = [(k, v) for k, v in out if k.lower() not in named]
        if route.auth_required:
            authenticator = self.gateway.authenticator
            try:
                if authenticator is None:
                    raise TokenError("jwks_unavailable")
                out.extend(await authenticator.identity_headers(head.authorization))
            except TokenError as exc:
                refusal = (
                    authenticator.refusal(exc)
                    if authenticator is not None
                    else error_body("unauthorized", exc.detail, reason=exc.reason)
                )
                await send_json(
                    send, 401, refusal, rid, (b"www-authenticate", challenge(exc.reason))
                )
                return 401
        out.extend(self.gateway.edge.forwarding_headers(head, scope, rid))
        target = head.path
        query: bytes = scope.get("query_string", b"")
        if query:
            target = target + b"?" + query
        body: _Body | None = None
        if has_body:
            body = _Body(receive, limit)
            if declared is not None and declared <= route.buffer_body_bytes:
                # Read a small body whole before a backend is picked, as nginx does:
                # a client trickling it in then holds no backend connection.
                status = await body.buffer()
                if status:
                    if status == 413:
                        await send_json(send, 413, BODY_TOO_LARGE, rid)
                    return status
        return await self._attempts(route, method, send, out, target, body, rid)

    async def _attempts(
        self,
        route: Route,
        method: str,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        target: bytes,
        body: _Body | None,
        rid: bytes,
    ) -> int:
        upstream = self.gateway.upstream
        timeouts = route.config.timeouts
        route.budget.deposit()
        backend = await route.balancer.pick() or route.balancer.panic_pick()
        if backend is None:
            await send_json(send, 503, route.no_backend_body, rid)
            return 503
        idempotent = method in IDEMPOTENT_METHODS
        tried: list[BackendState] = []
        failure: _Failure | None = None
        attempt = 0
        while backend is not None:
            attempt += 1
            retry = False
            backend.in_flight += 1
            sent = time.perf_counter()
            try:
                response = await upstream.request(
                    backend.base_url,
                    method,
                    target,
                    headers,
                    body.chunks() if body is not None else None,
                    connect_timeout=timeouts.connect,
                    read_timeout=timeouts.read,
                    pool_timeout=timeouts.pool_wait,
                )
                # A small body is read inside the attempt: a backend that dies between
                # its head and its body is then one more failed attempt, retried like
                # a reset, instead of a 502 the client sees.
                payload = None
                length = response.content_length
                if length is not None and length <= SMALL_BODY:
                    try:
                        payload = await response.read()
                    except BaseException:
                        response.release()
                        raise
            except UpstreamPoolTimeout:
                # Every connection to the backend is busy: the gateway's limit, not the
                # backend's failure, so nothing counts against its health.
                backend.in_flight -= 1
                backend.metrics.count("pool_timeout")
                detail = f"no connection to a backend came free within {timeouts.pool_wait:g}s"
                await send_json(
                    send, 503, error_body("upstream_busy", detail, route=route.name), rid
                )
                return 503
            except UpstreamConnectError as exc:
                backend.in_flight -= 1
                if body is not None and (body.too_large or body.disconnected):
                    return await self._body_problem(send, body, rid)
                backend.metrics.count("connect_error")
                backend.record_failure("connect_error")
                failure = _Failure(
                    502,
                    "upstream_unreachable",
                    f"cannot connect to a backend: {type(exc).__name__}",
                    route.name,
                )
                retry = body is None or not body.started
            except TimeoutError:  # UpstreamTimeout: no answer within the read timeout
                backend.in_flight -= 1
                backend.metrics.count("timeout")
                backend.record_failure("timeout")
                detail = f"the backend did not answer within {route.config.timeouts.read:g}s"
                await send_json(
                    send, 504, error_body("upstream_timeout", detail, route=route.name), rid
                )
                return 504
            except UpstreamError as exc:
                backend.in_flight -= 1
                if body is not None and (body.too_large or body.disconnected):
                    return await self._body_problem(send, body, rid)
                backend.metrics.count("reset")
                backend.record_failure("reset")
                failure = _Failure(
                    502,
                    "upstream_failed",
                    f"the backend connection failed: {type(exc).__name__}",
                    route.name,
                )
                retry = idempotent and (body is None or not body.started)
            except BaseException:  # cancelled, or a bug: the count must not leak
                backend.in_flight -= 1
                raise
            else:
                status = response.status
                backend.metrics.duration.observe(time.perf_counter() - sent)
                backend.metrics.count(status)
                if status in RETRYABLE_STATUSES or status == 504:
                    backend.record_failure(f"status {status}")
                    if (
                        status in RETRYABLE_STATUSES
                        and idempotent
                        and (body is None or not body.started)
                        and attempt < route.max_attempts
                    ):
                        following = route.balancer.pick_other([*tried, backend])
                        if following is not None and route.budget.withdraw():
                            response.release()
                            backend.in_flight -= 1
                            tried.append(backend)
                            route.metrics.retries.inc()
                            backend = following
                            continue
                else:
                    backend.record_success()
                try:
                    return await self._stream(send, response, rid, backend, payload)
                finally:
                    backend.in_flight -= 1
            if not retry or attempt >= route.max_attempts:
                break
            tried.append(backend)
            backend = route.balancer.pick_other(tried)
            if backend is None or not route.budget.withdraw():
                break
            route.metrics.retries.inc()
        if failure is None:  # pragma: no cover - the loop runs at least once
            failure = _Failure(503, "no_healthy_backend", "no backend left", route.name)
        await send_json(send, failure.status, failure.body, rid)
        return failure.status

    async def _body_problem(self, send: Send, body: _Body, rid: bytes) -> int:
        if body.too_large:
            await send_json(send, 413, BODY_TOO_LARGE, rid)
            return 413
        return 499  # the client went away; nobody to answer

    async def _stream(
        self,
        send: Send,
        response: UpstreamResponse,
        rid: bytes,
        backend: BackendState | None,
        payload: bytes | None,
    ) -> int:
        """Send the backend's response to the client.

        ``payload`` is the whole body when ``_attempts`` has read it (a small one,
        read inside the attempt so that a break there can still be retried);
        otherwise the body is streamed chunk by chunk.
        """
        status = response.status
        headers = [(b"x-request-id", rid)]
        for name, value in response.raw_headers:
            lower = name.lower()
            if lower not in _RESPONSE_DROP:
                headers.append((lower, value))
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            if payload is not None:
                await send({"type": "http.response.body", "body": payload})
                return status
            async for chunk in response.aiter_bytes():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return status
        except (UpstreamError, TimeoutError) as exc:
            if backend is not None:
                backend.record_failure("body_error")
            # Headers are out: the only honest signal left is a cut connection.
            logger.warning("backend response broke off mid-body: %s", type(exc).__name__)
            raise
        finally:
            response.release()
