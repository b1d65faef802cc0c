"""The hot path: a raw ASGI callable that proxies one request to a backend.

A request's journey is three steps. One pass over the head builds a
:class:`ProxyRequest` (or answers a refusal: 400/401/404/413/431). One attempt
loop tries backends; each attempt ends as one :class:`~gatehouse_gateway.outcome.Outcome`,
which alone decides passive health, the upstream metric, a retry and the
answer, while one ``try``/``finally`` keeps the backend's in-flight count.
The backend's response is then relayed: its head as soon as it arrives, its
body chunk by chunk, as fast as the client takes it (the upstream client
stops reading from the backend while the client is behind).

Everything that can be done once is done at load time (route table,
timeouts, label children, fixed error bodies, header sets). The two header
seams are :func:`~gatehouse_gateway.edge.head.upstream_headers` (shared with
the WebSocket handshake) and :func:`client_headers`; a route's edge rules
(CORS, header rules, path rewrite: ``route.rules``, None on most routes) act
through both. Nothing here
logs at info level or touches pydantic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Receive, Scope, Send

from gatehouse_common.http_protocol import SMALL_BODY
from gatehouse_common.jwt import TokenError, VerifiedToken
from gatehouse_common.request_id import new_request_id
from gatehouse_gateway import answers
from gatehouse_gateway.auth import challenge
from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.balancing.base import LATER
from gatehouse_gateway.edge import rewrite
from gatehouse_gateway.edge.head import RESPONSE_DROP, Refusal, RequestHead, upstream_headers
from gatehouse_gateway.metrics import RouteMetrics
from gatehouse_gateway.outcome import Outcome, Retry, outcome_of
from gatehouse_gateway.policy.route_rules import RouteRules
from gatehouse_gateway.request_body import RequestBody
from gatehouse_gateway.routing import Route
from gatehouse_gateway.runtime import Gateway
from gatehouse_gateway.upstream.h1 import UpstreamError, UpstreamResponse
from gatehouse_gateway.upstream.retry import IDEMPOTENT_METHODS, RETRYABLE_STATUSES

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("gatehouse.access")

# Requests no route claims are counted too, under one bounded label.
UNMATCHED = RouteMetrics("none")

# A small body (Content-Length up to SMALL_BODY) not in yet when its head
# arrives is waited for this long: a backend that dies right after its head is
# then still one failed attempt, retried elsewhere, and head and body leave in
# one write. A body slower than this (a drip, a trickle) no longer holds its
# head back: the head leaves and the body streams.
SMALL_BODY_HOLD = 0.05

# a default that is never appended to
_NONE_ADDED: list[tuple[bytes, bytes]] = []

_FLUSH_HEAD = {"type": "http.response.body", "body": b"", "more_body": True}


@dataclass(slots=True)
class ProxyRequest:
    """One request on its way to a backend, as one pass over its head found it."""

    route: Route
    method: str
    # raw path and query, as the backend receives them
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: RequestBody | None
    request_id: bytes
    idempotent: bool
    # the client's side: its disconnect ends a streamed response
    receive: Receive
    # the Host the backend sees (a route with preserve_host), else None: the backend's own
    host: bytes | None
    # scheme://host as the client reached the gateway: backend URLs are rewritten to it
    origin: bytes
    # the client's head as the gateway read it, and its address as the gateway vouches for it
    head: RequestHead
    client: bytes
    # the verified token on a route with ``auth: required``; else None
    identity: VerifiedToken | None = None
    # headers the route's policies add to the client's answer, relayed or made here
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class Failure:
    """A try at one backend that got no response: why, and what was raised."""

    outcome: Outcome
    error: BaseException


# A try that got a response: it, and its whole body when that was small and in
# before the hold ran out. A plain tuple: the usual request's attempt makes no
# object of a class of its own (about 1,500 instructions).
Answered = tuple[UpstreamResponse, bytes | None]


def client_headers(
    raw_headers: list[tuple[bytes, bytes]],
    request_id: bytes,
    backend_url: str,
    origin: bytes,
    added: list[tuple[bytes, bytes]] | None = None,
    rules: RouteRules | None = None,
) -> list[tuple[bytes, bytes]]:
    """The backend's response headers as the client gets them: hop-by-hop dropped,
    URLs naming the backend rewritten to the client's origin (:mod:`.edge.rewrite`),
    then the headers the route's policies ``added``. A route's ``rules`` drop
    more (response rules' removals, a CORS route's backend ``Access-Control-*``)
    and map a ``Location`` back through its path rewrite."""
    headers = [(b"x-request-id", request_id)]
    drop = RESPONSE_DROP if rules is None else rules.response_drop
    for name, value in raw_headers:
        lower = name.lower()
        if lower not in drop:
            if lower in rewrite.URL_HEADERS:
                value = rewrite.url_header(lower, value, backend_url, origin)
                if rules is not None and rules.rewrite is not None:
                    value = rules.rewrite.client_url(lower, value, origin)
            headers.append((lower, value))
    if added:
        headers.extend(added)
    return headers


async def _held_body(response: UpstreamResponse) -> bytes | None:
    """A small body not in with its head: read whole if in within the hold, else None.

    Raises what broke the body, so the attempt fails (and may be retried)
    while nothing has reached the client yet; None: it streams after its head.
    """
    hold = asyncio.timeout(SMALL_BODY_HOLD)
    try:
        async with hold:
            await response.wait_complete()
    except TimeoutError:
        if not hold.expired():
            raise  # the backend's own read timeout, not the hold
        return None
    return await response.read()


class _ClientGone(Exception):
    """The client left while its response streamed."""


async def _watch_disconnect(receive: Receive, response: UpstreamResponse) -> None:
    """Abort ``response`` (closing its backend connection) once the client disconnects."""
    while (await receive())["type"] != "http.disconnect":
        pass  # the rest of an upload the backend answered without reading
    response.abort(_ClientGone())


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
            rid = new_request_id().encode()
            await answers.send_json(send, refusal.status, refusal.body, rid, *refusal.headers)
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
                await answers.send_json(send, 404, answers.NO_ROUTE, rid)
                UNMATCHED.observe(scope["method"], 404, time.perf_counter() - started)
            return
        method: str = scope["method"]
        prepared = await self._prepare(route, scope, receive, send, head, rid)
        status = prepared if isinstance(prepared, int) else await self._forward(prepared, send)
        elapsed = time.perf_counter() - started
        route.metrics.observe(method, status, elapsed)
        if self.access_log:
            access_logger.info(
                "%s %s %d", method, path, status,
                extra={"route": route.name, "status": status, "request_id": request_id,
                       "duration_ms": round(elapsed * 1000, 3)},
            )  # fmt: skip

    async def _prepare(
        self,
        route: Route,
        scope: Scope,
        receive: Receive,
        send: Send,
        head: RequestHead,
        rid: bytes,
    ) -> ProxyRequest | int:
        """The request for ``route``, or the status of the refusal already answered."""
        client = self.gateway.edge.client_address(head)
        added: list[tuple[bytes, bytes]] = []
        rules = route.rules
        if rules is not None:  # CORS, header rules, path rewrite (policy/route_rules.py)
            added = rules.answer_headers(head, rid, client)
        if head.header_bytes > route.max_header_bytes:
            return await answers.send_json(send, 431, answers.HEADERS_TOO_LARGE, rid, *added)
        if rules is not None:
            preflight = await rules.preflight(send, scope["method"], head, rid, client)
            if preflight is not None:
                return preflight
        limit = route.max_body_bytes
        declared: int | None = None
        has_body = head.chunked
        if head.length is not None and not head.chunked:
            try:
                declared = int(head.length)
            except ValueError:
                return await answers.send_json(send, 400, answers.BAD_LENGTH, rid, *added)
            if limit is not None and declared > limit:
                return await answers.send_json(send, 413, answers.BODY_TOO_LARGE, rid, *added)
            has_body = declared > 0
        headers = upstream_headers(head)
        identity: VerifiedToken | None = None
        if route.auth_required:
            authenticator = self.gateway.authenticator
            try:
                if authenticator is None:
                    raise TokenError("jwks_unavailable")
                identity, identified = await authenticator.identify(head.authorization)
                headers.extend(identified)
            except TokenError as exc:
                refusal = (
                    authenticator.refusal(exc)
                    if authenticator is not None
                    else answers.unauthorized(exc)
                )
                return await answers.send_json(
                    send, 401, refusal, rid, (b"www-authenticate", challenge(exc.reason)), *added
                )
        # rate limits, then quotas: a request refused for its rate spends no quota
        rate_limits = route.rate_limits
        if rate_limits is not None:
            refused = rate_limits.check(identity, head, client, added)
            if refused is not None:
                return await answers.send_json(
                    send, refused.status, refused.body, rid, *refused.headers, *added
                )
        # quotas
        quotas = route.quotas
        if quotas is not None:
            spent = quotas.admit(identity, head, client, added)
            if spent is not None:
                return await answers.send_json(send, 429, spent.body, rid, *spent.headers, *added)
        target = head.path
        if rules is not None:
            headers = rules.after_auth(headers, identity, rid, client, added)
            target = rules.target(target)
        headers.extend(self.gateway.edge.forwarding_headers(head, scope, rid))
        query: bytes = scope.get("query_string", b"")
        if query:
            target = target + b"?" + query
        body: RequestBody | None = None
        if has_body:
            body = RequestBody(receive, limit)
            if declared is not None and declared <= route.buffer_body_bytes:
                # Read a small body whole before a backend is picked, as nginx does:
                # a client trickling it in then holds no backend connection.
                problem = await body.buffer()
                if problem is not None:
                    return await self._answer_failure(send, route, problem, None, rid, added)
        method: str = scope["method"]
        return ProxyRequest(
            route,
            method,
            target,
            headers,
            body,
            rid,
            method in IDEMPOTENT_METHODS,
            receive,
            head.host if route.preserve_host and head.host else None,
            rewrite.client_origin(scope, head.host),
            head,
            client,
            identity,
            added,
        )

    async def _forward(self, request: ProxyRequest, send: Send) -> int:
        """Try backends until one answers or no retry is left; the status the client got."""
        route = request.route
        if route.mirror is not None:  # a copy in the background, never waited for
            route.mirror.offer(self.gateway.upstream, request)
        route.budget.deposit()
        split = route.split
        if split is None:
            balancer = route.balancer
            picked = balancer.pick_at_once()
            if picked is LATER:
                picked = await balancer.pick()
            backend = picked or balancer.panic_pick()
        else:  # canary and header routing: a group, then its balancer (canary/split.py)
            balancer, backend = await split.pick(request)
        if backend is None:
            return await answers.send_json(
                send, 503, route.no_backend_body, request.request_id, *request.response_headers
            )
        tried: list[BackendState] = []
        attempt = 1
        while True:
            current = backend
            current.in_flight += 1
            try:
                result = await self._attempt(request, current)
                response: UpstreamResponse | None = None
                payload: bytes | None = None
                error: BaseException | None = None
                if isinstance(result, Failure):
                    outcome, error = result.outcome, result.error
                else:
                    response, payload = result
                    if response.status not in RETRYABLE_STATUSES:
                        return await self._relay(send, request, current, response, payload)
                    outcome = Outcome.OK
                if self._may_retry(request, outcome, attempt):
                    following = balancer.pick_other([*tried, current])
                    if following is not None and route.budget.withdraw():
                        if response is not None:
                            response.release()
                        tried.append(current)
                        route.metrics.retries.inc()
                        backend = following
                        attempt += 1
                        continue
                if response is not None:  # a 502/503 with no retry left: the client gets it
                    return await self._relay(send, request, current, response, payload)
                return await self._answer_failure(
                    send, route, outcome, error, request.request_id,
                    request.response_headers,
                )  # fmt: skip
            finally:
                current.in_flight -= 1

    async def _attempt(self, request: ProxyRequest, backend: BackendState) -> Answered | Failure:
        """One try at ``backend``, its outcome recorded in the backend's health and metrics."""
        route = request.route
        body = request.body
        sent = time.perf_counter()
        try:
            response = await self.gateway.upstream.request(
                backend.base_url,
                request.method,
                request.target,
                request.headers,
                body.chunks() if body is not None else None,
                connect_timeout=route.connect_timeout,
                read_timeout=route.read_timeout,
                pool_timeout=route.pool_timeout,
                tls=backend.tls,
                host=request.host,
            )
            payload = None
            length = response.content_length
            try:
                if length is not None and length <= SMALL_BODY:
                    # in with its head (the common case), or held for a moment
                    if response.complete:
                        payload = await response.read()
                    else:
                        payload = await _held_body(response)
            except BaseException:
                response.release()
                raise
        except (UpstreamError, TimeoutError) as exc:
            problem = body.problem if body is not None else None
            if problem is not None:  # the client's side failed, not the backend
                return Failure(problem, exc)
            outcome = outcome_of(exc)
            backend.metrics.count(outcome.label)
            if outcome.backend_failure:
                backend.record_failure(outcome.label)
            return Failure(outcome, exc)
        status = response.status
        backend.metrics.duration.observe(time.perf_counter() - sent)
        backend.metrics.count(status)
        if status in RETRYABLE_STATUSES or status == 504:
            backend.record_failure(f"status {status}")
        else:
            backend.record_success()
        return response, payload

    @staticmethod
    def _may_retry(request: ProxyRequest, outcome: Outcome, attempt: int) -> bool:
        """Whether ``outcome`` lets the request go to another backend (if one and budget remain)."""
        if attempt >= request.route.max_attempts or outcome.retry is Retry.NEVER:
            return False
        body = request.body
        if body is not None and body.started:  # its bytes are gone: it cannot be sent again
            return False
        return outcome.retry is Retry.UNSENT or request.idempotent

    async def _answer_failure(
        self,
        send: Send,
        route: Route,
        outcome: Outcome,
        error: BaseException | None,
        rid: bytes,
        added: list[tuple[bytes, bytes]] = _NONE_ADDED,
    ) -> int:
        if outcome is Outcome.CLIENT_GONE:
            return outcome.status  # nobody to answer
        body = answers.failure_body(outcome, route, error)
        return await answers.send_json(send, outcome.status, body, rid, *added)

    async def _relay(
        self,
        send: Send,
        request: ProxyRequest,
        backend: BackendState,
        response: UpstreamResponse,
        payload: bytes | None,
    ) -> int:
        """Send the backend's response: head now, then the body, as fast as the client takes it.

        ``payload`` is the whole body when the attempt read it (small, and in
        already); otherwise the body streams chunk by chunk. Each ``send``
        waits while the client is behind, and the upstream response stops
        reading from the backend while its buffer is full, so a slow client
        holds back the backend instead of growing memory.
        """
        status = response.status
        headers = client_headers(
            response.raw_headers,
            request.request_id,
            backend.base_url,
            request.origin,
            request.response_headers,
            request.route.rules,
        )
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            if payload is not None:
                await send({"type": "http.response.body", "body": payload})
                return status
            length = response.content_length
            if length is not None and length <= SMALL_BODY:
                # the server holds a small response's head for its first body
                # message; this one lets it go now, not when the backend's bytes do
                await send(_FLUSH_HEAD)
            # An ASGI server drops what is sent after the client left, so a stream
            # to a gone client (an endless SSE one) would hold its backend forever.
            watcher = asyncio.ensure_future(_watch_disconnect(request.receive, response))
            try:
                async for chunk in response.aiter_bytes():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except _ClientGone:
                return status
            finally:
                watcher.cancel()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return status
        except (UpstreamError, TimeoutError) as exc:
            backend.record_failure("body_error")
            # Headers are out: the only honest signal left is a cut connection.
            logger.warning("backend response broke off mid-body: %s", type(exc).__name__)
            raise
        finally:
            response.release()
