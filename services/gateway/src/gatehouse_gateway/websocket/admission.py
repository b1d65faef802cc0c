"""Whether a handshake is let through before the upgrade, and how a refused one is answered.

A handshake is a request of its route: :func:`admit` counts it against the
route's rate limits, then its quotas, from the same buckets and counts as the
HTTP path (so a handshake refused for its rate spends no quota, and a socket
opened and an HTTP request made spend one budget). Every refusal on the way
to the backend is a :class:`Refused`, answered by :func:`refuse` with an HTTP
status and the HTTP path's JSON body and headers, never an upgrade.
"""

from __future__ import annotations

from starlette.types import Scope, Send

from gatehouse_common.jwt import VerifiedToken
from gatehouse_gateway.edge.head import RequestHead
from gatehouse_gateway.routing import Route

Header = tuple[bytes, bytes]
_JSON = (b"content-type", b"application/json")


class Refused(Exception):
    """A handshake answered ``status`` with ``body`` and ``headers``; ``reason`` is the
    ``gateway_websocket_refusals_total`` label."""

    def __init__(self, status: int, body: bytes, reason: str, *headers: Header):
        super().__init__(reason)
        self.status = status
        self.body = body
        self.reason = reason
        self.headers = headers
        # the request's id once its head was read (the one the rules' values name)
        self.request_id: bytes | None = None

    def adding(self, headers: list[Header], request_id: bytes) -> Refused:
        """This refusal with ``headers`` after its own: what every answer of the route
        carries (its response header rules, CORS), as an HTTP refusal has them."""
        self.headers = (*self.headers, *headers)
        self.request_id = request_id
        return self


def admit(
    route: Route,
    identity: VerifiedToken | None,
    head: RequestHead,
    client: bytes,
    added: list[Header],
) -> None:
    """Count the handshake as one request of ``route``: rate limits, then quotas.

    Appends to ``added`` the headers they put on the 101 (``RateLimit-Policy``,
    ``RateLimit``, as on an allowed HTTP answer); raises :class:`Refused` (429,
    or 503 where a rate limit fails closed) with the HTTP refusal's body and headers.
    """
    rate_limits = route.rate_limits
    if rate_limits is not None:
        refused = rate_limits.check(identity, head, client, added)
        if refused is not None:
            reason = "rate_limited" if refused.status == 429 else "rate_limit_unavailable"
            raise Refused(refused.status, refused.body, reason, *refused.headers)
    quotas = route.quotas
    if quotas is not None:
        spent = quotas.admit(identity, head, client, added)
        if spent is not None:
            raise Refused(429, spent.body, "quota_exceeded", *spent.headers)


async def refuse(scope: Scope, send: Send, refusal: Refused, rid: bytes) -> None:
    """Answer the handshake with an HTTP status, before any upgrade."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    headers = [_JSON, (b"x-request-id", refusal.request_id or rid), *refusal.headers]
    if any(name == b"content-type" for name, _ in refusal.headers):
        headers.remove(_JSON)
    await send(
        {"type": "websocket.http.response.start", "status": refusal.status, "headers": headers}
    )
    await send({"type": "websocket.http.response.body", "body": refusal.body})
