"""The ASGI ``websocket`` scope: route, authorise, open the backend, then relay.

Once both handshakes are done the two sockets are spliced (:mod:`.splice`:
frames copied as bytes, nothing per socket but two transports and a timer) when
both can be handed over, else relayed message by message (:mod:`.bridge`).

Everything before the upgrade is the HTTP path's own rules: the head goes
through the same :class:`~gatehouse_gateway.edge.head.HeadRules` (one Host,
one Authorization, identity and forwarding headers never from the client,
the normalised path), the route is matched on Host and that path, and the
backend gets the same identity and forwarding headers, and the route's
request header rules (``Origin`` included) and path rewrite
(:mod:`gatehouse_gateway.policy.route_rules`). A handshake the
gateway will not take is answered with an HTTP status before any upgrade,
through the ASGI ``websocket.http.response`` extension (which uvicorn's
protocol offers): 400/431 for a bad head, 404 for no route, 403 for a route
with ``websocket: false``, 403 for an ``Origin`` a CORS route does not list
(browsers apply no CORS to sockets, so this is what stops cross-site
WebSocket hijacking; :meth:`~gatehouse_gateway.policy.cors.CorsPolicy.allows_handshake`),
401 (``WWW-Authenticate: Bearer``) for a missing or bad token, 429 from a
rate limit or quota of the route (the handshake counts as one request, with
the HTTP answer's headers), 502/503/504 when no backend takes it, or the
backend's own refusal.
A server without the extension gets a close with 1008 (policy violation)
instead, which it turns into a 403.

Every answer once the route is known, each refusal and the 101, carries the
route's response header rules as an HTTP answer does (the backend's 101 and
refusal headers lose what the rules remove; values from the token once one is
verified), but no CORS headers: browsers expose no part of a handshake's
answer. The handshake's own headers (``Sec-WebSocket-*``, ``Upgrade``,
``Connection``) are the server's: no rule may name them
(:mod:`gatehouse_gateway.config.header_rules`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import ClientConnection

from gatehouse_common.jwt import TokenError, VerifiedToken
from gatehouse_common.request_id import new_request_id
from gatehouse_common.websocket_protocol import DETACH_EXTENSION, Detached
from gatehouse_gateway import answers
from gatehouse_gateway.auth import challenge
from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.edge.head import Refusal, RequestHead, upstream_headers
from gatehouse_gateway.policy import cors
from gatehouse_gateway.routing import Route
from gatehouse_gateway.websocket import metrics
from gatehouse_gateway.websocket.admission import Refused, admit, refuse
from gatehouse_gateway.websocket.bridge import Bridge
from gatehouse_gateway.websocket.metrics import RouteSocketMetrics
from gatehouse_gateway.websocket.sessions import Session, Sessions
from gatehouse_gateway.websocket.splice import Splice
from gatehouse_gateway.websocket.tokens import find_token, split_query
from gatehouse_gateway.websocket.upstream import (
    BadTarget,
    Rejected,
    Unreachable,
    can_detach,
    detach,
    open_backend,
)

if TYPE_CHECKING:  # the gateway's runtime owns the sessions registry this package defines
    from gatehouse_gateway.runtime import Gateway

logger = logging.getLogger(__name__)

# Handshake headers the backend connection writes itself, or that end at the gateway.
_OWN = frozenset(
    {
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"sec-websocket-accept",
        b"origin",
        b"content-length",
    }
)
# Backend 101 headers the client does not get (its own handshake is the server's).
_ANSWER_DROP = _OWN | {
    b"connection",
    b"upgrade",
    b"date",
    b"server",
    b"transfer-encoding",
    b"x-request-id",
}
_HTTP_SCHEMES = {"ws": "http", "wss": "https"}


@dataclass(frozen=True, slots=True)
class _Client:
    """Who opens the socket, as a route's split reads it (a ``ConsumerSource``)."""

    head: RequestHead
    client: bytes
    identity: VerifiedToken | None


@dataclass(frozen=True, slots=True)
class _Handshake:
    """The handshake the backend is sent: the route's rules applied, as on HTTP."""

    target: bytes
    headers: list[tuple[bytes, bytes]]
    subprotocols: list[str]
    # the Origin the route's header rules left; the backend connection writes it
    origin: bytes | None


class _Opened:
    """A backend socket opened for a client, and the accept message that answers it."""

    __slots__ = ("accept", "backend", "idle_timeout", "route", "upstream")

    def __init__(
        self,
        route: str,
        backend: BackendState,
        upstream: ClientConnection,
        accept: dict[str, Any],
        idle_timeout: float,
    ) -> None:
        self.route = route
        self.backend = backend
        self.upstream = upstream
        self.accept = accept
        self.idle_timeout = idle_timeout


class WebSocketProxy:
    """``await proxy(scope, receive, send)`` for every proxied ``websocket`` scope."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        max_message_bytes: int,
        ping_interval: float | None,
        ping_timeout: float | None,
        idle_timeout: float,
    ) -> None:
        self.gateway = gateway
        self.max_message_bytes = max_message_bytes
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.idle_timeout = idle_timeout
        self.sessions: Sessions = gateway.websockets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return  # gone before the handshake was read
        rid = new_request_id().encode()
        try:
            opened = await self._handshake(scope, rid)
        except Refused as refusal:
            metrics.refused(refusal.reason)
            await refuse(scope, send, refusal, rid)
            return
        # The handshake's head, headers and token are garbage now: an open socket
        # keeps only what relaying needs (memory per idle socket, loadtest/README.md).
        await self._relay(opened, scope, receive, send)

    async def _handshake(self, scope: Scope, rid: bytes) -> _Opened:
        """Route, authorise and open the backend socket; raises :class:`Refused`."""
        gateway = self.gateway
        rules = gateway.edge
        query: bytes = scope["query_string"]
        # the server logs the path with its query, refusals included: never a token
        scope["query_string"] = split_query(query)[1]
        # the head as the HTTP path reads it: X-Forwarded-Proto is http or https
        http_scope = {**scope, "method": "GET", "scheme": _HTTP_SCHEMES.get(scope["scheme"])}
        try:
            head = rules.read(http_scope)
        except Refusal as refusal:
            raise Refused(refusal.status, refusal.body, "bad_request", *refusal.headers) from None
        rid = rules.request_id(head).encode()
        route = gateway.table.match(head.host, head.path.decode("latin-1"))
        if route is None:
            raise Refused(404, answers.NO_ROUTE, "no_route")
        client_address = rules.client_address(head)
        edge_rules = route.rules  # CORS, header rules and path rewrite, as on HTTP
        # what every answer of the route carries, the 101 and each refusal: the
        # response rules (those reading the token join once one is verified)
        added = edge_rules.handshake_headers(rid, client_address) if edge_rules is not None else []
        try:
            return await self._admitted(
                route, scope, http_scope, head, rid, query, client_address, added
            )
        except Refused as refusal:
            raise refusal.adding(added, rid) from None

    async def _admitted(
        self,
        route: Route,
        scope: Scope,
        http_scope: Scope,
        head: RequestHead,
        rid: bytes,
        query: bytes,
        client_address: bytes,
        added: list[tuple[bytes, bytes]],
    ) -> _Opened:
        """The rest of :meth:`_handshake` once ``route`` is known: every answer from
        here on, refusal or 101, carries ``added`` as it stands then."""
        rules = self.gateway.edge
        edge_rules = route.rules
        if not route.config.websocket:
            raise Refused(403, answers.WEBSOCKET_DISABLED, "websocket_disabled")
        if head.header_bytes > route.max_header_bytes:
            raise Refused(431, answers.HEADERS_TOO_LARGE, "headers_too_large")
        if edge_rules is not None and edge_rules.refuses_handshake(head):
            # before auth, as a preflight: a page from another site learns nothing more
            raise Refused(403, cors.ORIGIN_REFUSED, "origin_not_allowed")
        sources = route.config.websocket_token_sources
        found = find_token(sources, head.authorization, list(scope.get("subprotocols", [])), query)
        identity: VerifiedToken | None = None
        identified: list[tuple[bytes, bytes]] = []
        if route.auth_required:
            identity, identified = await self._identity(found.token)
        admit(route, identity, head, client_address, added)
        base = upstream_headers(head)
        target = head.path
        if edge_rules is not None:
            base = edge_rules.after_auth(base, identity, rid, client_address, added)
            target = edge_rules.target(target)
        # the Origin the rules left (the backend connection writes it itself), then
        # hop-by-hop and Connection-named headers dropped as for HTTP, and the
        # handshake's own, which the backend connection writes too
        origin = next((v for k, v in base if k == b"origin"), None)
        headers = [(k, v) for k, v in base if k not in _OWN]
        headers.extend(identified)
        headers.extend(rules.forwarding_headers(head, http_scope, rid))
        if route.preserve_host and head.host:  # as on HTTP; else the backend's own host:port
            headers.append((b"host", head.host))
        if found.query:
            target += b"?" + found.query
        client = _Client(head, client_address, identity)
        backend, upstream = await self._open(
            route, client, _Handshake(target, headers, found.subprotocols, origin)
        )
        # the backend's 101 headers, minus the handshake's own and what the route's
        # response rules remove, then ``added``, as an HTTP answer's (proxy.client_headers)
        drop = edge_rules.response_drop if edge_rules is not None else _ANSWER_DROP
        answer = [(b"x-request-id", rid)]
        for raw_name, value in upstream.response.headers.raw_items() if upstream.response else ():
            name = raw_name.lower().encode("latin-1")
            if name not in _ANSWER_DROP and name not in drop:
                answer.append((name, value.encode("latin-1")))
        answer.extend(added)
        accept: dict[str, Any] = {"type": "websocket.accept", "headers": answer}
        if upstream.subprotocol:
            accept["subprotocol"] = upstream.subprotocol
        idle = route.config.websocket_idle_timeout or self.idle_timeout
        return _Opened(route.name, backend, upstream, accept, idle)

    async def _relay(self, opened: _Opened, scope: Scope, receive: Receive, send: Send) -> None:
        socket_metrics = metrics.route_metrics(opened.route)
        upstream = opened.upstream
        backend = opened.backend
        accept, opened.accept = opened.accept, {}
        backend.in_flight += 1
        socket_metrics.active.inc()
        spliced = False
        session: Session | None = None
        try:
            try:
                await send(accept)
            except OSError:  # the client left while the backend answered
                await upstream.close(1001, "client went away")
                return
            del accept
            spliced = self._splice(opened, scope, socket_metrics)
            if spliced:
                return  # the splice counts the socket out when it ends
            bridge = Bridge(receive, send, upstream, socket_metrics, opened.idle_timeout)
            session = Session(opened.route, backend, bridge)
            self.sessions.add(session)
            ending = await bridge.run()
            socket_metrics.closed(ending.by)
        finally:
            if not spliced:
                if session is not None:
                    self.sessions.discard(session)
                socket_metrics.active.dec()
                backend.in_flight -= 1

    def _splice(self, opened: _Opened, scope: Scope, socket_metrics: RouteSocketMetrics) -> bool:
        """Relay the socket as bytes (:mod:`.splice`) when both ends can be handed over.

        Neither end is touched unless both can be: otherwise (per-message-deflate
        with the client, bytes already half read) the :class:`Bridge` relays it.
        """
        offer = scope.get("extensions", {}).get(DETACH_EXTENSION)
        if offer is None or not can_detach(opened.upstream):
            return False
        client: Detached | None = offer["detach"]()
        if client is None:
            return False
        backend_transport, pending = detach(opened.upstream)
        session = Session(opened.route, opened.backend, _Unset())
        splice = Splice(
            client.transport,
            backend_transport,
            metrics=socket_metrics,
            max_message_bytes=self.max_message_bytes,
            idle_timeout=opened.idle_timeout,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            connections=client.connections,
            shutdown_grace=client.shutdown_grace,
            on_end=_SpliceEnd(self.sessions, session, socket_metrics),
        )
        session.bridge = splice
        self.sessions.add(session)
        splice.start(backend_bytes=pending)
        return True

    async def _identity(
        self, token: bytes | None
    ) -> tuple[VerifiedToken, list[tuple[bytes, bytes]]]:
        authenticator = self.gateway.authenticator
        try:
            if authenticator is None:
                raise TokenError("jwks_unavailable")
            return await authenticator.identify(token)
        except TokenError as exc:
            body = (
                authenticator.refusal(exc)
                if authenticator is not None
                else answers.unauthorized(exc)
            )
            raise Refused(
                401, body, "unauthorized", (b"www-authenticate", challenge(exc.reason))
            ) from None

    async def _open(
        self, route: Route, client: _Client, handshake: _Handshake
    ) -> tuple[BackendState, ClientConnection]:
        """Connect to a backend of ``route``: the next one after a connect failure."""
        timeouts = route.config.timeouts
        split = route.split
        if split is None:
            balancer = route.balancer
            backend = await balancer.pick() or balancer.panic_pick()
        else:  # a route with groups: the HTTP path's split (canary/split.py)
            balancer, backend = await split.pick(client)
        tried: list[BackendState] = []
        failed: Unreachable | None = None
        while backend is not None and len(tried) < route.max_attempts:
            try:
                upstream = await open_backend(
                    backend,
                    handshake.target,
                    headers=handshake.headers,
                    subprotocols=handshake.subprotocols,
                    origin=handshake.origin,
                    open_timeout=timeouts.connect + timeouts.read,
                    max_message_bytes=self.max_message_bytes,
                    ping_interval=self.ping_interval,
                    ping_timeout=self.ping_timeout,
                )
            except BadTarget:
                raise Refused(400, answers.BAD_TARGET, "bad_request") from None
            except Rejected as exc:
                backend.metrics.count(exc.status)
                rules = route.rules  # the response rules' removals, as on an HTTP answer
                kept = [h for h in exc.headers if rules is None or h[0] not in rules.response_drop]
                raise Refused(exc.status, exc.body, "backend_refused", *kept) from None
            except TimeoutError:
                backend.metrics.count("timeout")
                backend.record_failure("timeout")
                raise Refused(504, answers.handshake_timeout(route), "upstream_timeout") from None
            except Unreachable as exc:
                backend.metrics.count(exc.outcome.label)
                backend.record_failure(exc.outcome.label)
                failed = exc
                tried.append(backend)
                backend = balancer.pick_other(tried)
                continue
            backend.metrics.count(101)
            backend.record_success()
            return backend, upstream
        if failed is None:
            raise Refused(503, route.no_backend_body, "no_healthy_backend")
        # the HTTP path's answer for the same failure: 502 upstream_unreachable,
        # or upstream_tls_failed naming OpenSSL's reason (CERTIFICATE_VERIFY_FAILED)
        outcome = failed.outcome
        body = answers.failure_body(outcome, route, failed.error)
        raise Refused(outcome.status, body, outcome.code)


class _Unset:
    """A session's relay before its splice exists (a few lines later)."""

    def stop(self, reason: str, code: int = 1001) -> None:
        pass


class _SpliceEnd:
    """What a spliced socket's end does: counted out of the session, the metrics and
    its backend's in-flight count."""

    __slots__ = ("metrics", "session", "sessions")

    def __init__(self, sessions: Sessions, session: Session, socket_metrics: RouteSocketMetrics):
        self.sessions = sessions
        self.session = session
        self.metrics = socket_metrics

    def __call__(self, by: str) -> None:
        session = self.session
        self.sessions.discard(session)
        self.metrics.active.dec()
        self.metrics.closed(by)
        session.backend.in_flight -= 1
        session.bridge = _Unset()  # no cycle left: session -> splice -> this -> session
