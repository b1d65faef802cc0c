"""A route's edge rules together: CORS, header rules and path rewrite, compiled at load.

:meth:`RouteRules.compile` returns None for a route with none of them, so the
proxy's whole cost on such a route is one ``is None`` check; everything else
(sets, header values, prefixes) is built here once per config. The proxy calls,
in order (the WebSocket handshake :meth:`RouteRules.handshake_headers` for
every answer, :meth:`RouteRules.refuses_handshake`, then the last two):

1. :meth:`RouteRules.answer_headers`: what every answer of the request carries
   (CORS, response rules that need no token), refusals made here included;
2. :meth:`RouteRules.preflight`, after the route's header size limit and before
   auth: a CORS preflight is answered here;
3. :meth:`RouteRules.after_auth`: request rules on the backend's headers, and
   the response rules that read the verified token;
4. :meth:`RouteRules.target`: the path the backend sees.

The backend's answer then goes through ``response_drop`` (the proxy's own
drops plus the rules' removals and, on a CORS route, every backend
``Access-Control-*`` header) and ``rewrite`` maps ``Location`` back.
"""

from __future__ import annotations

from prometheus_client import Counter
from starlette.types import Send

from gatehouse_common.jwt import VerifiedToken
from gatehouse_gateway.config.schema import RouteConfig
from gatehouse_gateway.edge.head import RESPONSE_DROP, RequestHead
from gatehouse_gateway.policy import cors as cors_policy
from gatehouse_gateway.policy.cors import CorsPolicy
from gatehouse_gateway.policy.header_rules import Header, HeaderEdits, render
from gatehouse_gateway.policy.path_rewrite import PathRewrite

_JSON = (b"content-type", b"application/json")

PREFLIGHTS = Counter(
    "gateway_cors_preflights_total",
    "CORS preflights answered at the gateway, by route and outcome (allowed, "
    "origin_not_allowed, method_not_allowed, headers_not_allowed).",
    ["route", "outcome"],
)


def _preflight_parts(
    headers: list[Header],
) -> tuple[bytes | None, bytes | None, bytes | None]:
    """Origin, Access-Control-Request-Method and -Headers of a request (one pass).

    A repeated Origin or method is ambiguous: it reads as the empty value, which
    no rule allows. Repeated requested-headers lines are joined, as HTTP lists are.
    """
    origin = method = requested = None
    for name, value in headers:
        if name == b"origin":
            origin = b"" if origin is not None else value
        elif name == b"access-control-request-method":
            method = b"" if method is not None else value
        elif name == b"access-control-request-headers":
            requested = value if requested is None else requested + b"," + value
    return origin, method, requested


def _origin(headers: list[Header]) -> bytes | None:
    origin = None
    for name, value in headers:
        if name == b"origin":
            origin = b"" if origin is not None else value
    return origin


class RouteRules:
    """Everything a route's ``cors``, ``headers`` and ``path_rewrite`` do per request."""

    __slots__ = (
        "_claimed",
        "_plain",
        "_preflights",
        "cors",
        "request",
        "response_drop",
        "rewrite",
    )

    def __init__(self, config: RouteConfig) -> None:
        name = config.name
        self.cors = CorsPolicy(config.cors) if config.cors is not None else None
        self._preflights = (
            {o: PREFLIGHTS.labels(route=name, outcome=o) for o in cors_policy.PREFLIGHT_OUTCOMES}
            if self.cors is not None
            else {}
        )
        rules = config.headers
        request = HeaderEdits(rules.request, name) if rules is not None else None
        self.request = request if request else None
        response = HeaderEdits(rules.response, name) if rules is not None else None
        self._plain = response.without_identity if response is not None else ()
        self._claimed = response.with_identity if response is not None else ()
        dropped = set(response.removed) if response is not None else set()
        if self.cors is not None:
            dropped |= cors_policy.RESPONSE_HEADERS
        self.response_drop = RESPONSE_DROP | dropped
        rewrite = config.path_rewrite
        self.rewrite = PathRewrite(rewrite) if rewrite is not None else None

    @classmethod
    def compile(cls, config: RouteConfig) -> RouteRules | None:
        """The route's rules, or None when it has none (the common case)."""
        if config.cors is None and config.headers is None and config.path_rewrite is None:
            return None
        return cls(config)

    async def preflight(
        self, send: Send, method: str, head: RequestHead, request_id: bytes, client: bytes
    ) -> int | None:
        """Answer a CORS preflight and return its status; None: not a preflight here."""
        cors = self.cors
        if cors is None or method != "OPTIONS":
            return None
        origin, wanted, requested = _preflight_parts(head.headers)
        if origin is None or wanted is None:
            return None  # a plain OPTIONS request: the backend's to answer
        answer = cors.preflight(origin, wanted, requested)
        self._preflights[answer.outcome].inc()
        extra = render(self._plain, None, request_id, client)
        if answer.status == 204:
            headers = [(b"x-request-id", request_id), *answer.headers, *extra]
        else:
            headers = [
                _JSON,
                (b"content-length", str(len(answer.body)).encode()),
                (b"x-request-id", request_id),
                *answer.headers,
                *extra,
            ]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})
        return answer.status

    def refuses_handshake(self, head: RequestHead) -> bool:
        """Whether a CORS route refuses a WebSocket handshake for its ``Origin``
        (:meth:`CorsPolicy.allows_handshake`); two ``Origin`` headers match none."""
        cors = self.cors
        return cors is not None and not cors.allows_handshake(_origin(head.headers))

    def answer_headers(self, head: RequestHead, request_id: bytes, client: bytes) -> list[Header]:
        """Headers every answer to this request carries, whatever its outcome."""
        out = self.cors.answer_headers(_origin(head.headers)) if self.cors is not None else []
        out.extend(self.handshake_headers(request_id, client))
        return out

    def handshake_headers(self, request_id: bytes, client: bytes) -> list[Header]:
        """Headers every answer to a WebSocket handshake carries (its 101 and its
        refusals): the response rules that need no token, and no CORS headers, as
        browsers expose no part of a handshake's answer to the page."""
        return render(self._plain, None, request_id, client) if self._plain else []

    def after_auth(
        self,
        headers: list[Header],
        identity: VerifiedToken | None,
        request_id: bytes,
        client: bytes,
        answer: list[Header],
    ) -> list[Header]:
        """The backend's headers with the request rules applied; token-based answer headers
        are appended to ``answer``."""
        if self._claimed and identity is not None:
            answer.extend(render(self._claimed, identity, request_id, client))
        if self.request is not None:
            return self.request.apply(headers, identity, request_id, client)
        return headers

    def target(self, path: bytes) -> bytes:
        """The path the backend sees for the client's normalised ``path``."""
        return self.rewrite.backend_path(path) if self.rewrite is not None else path
