"""Every JSON error answer the proxy sends: fixed bodies, and those an outcome makes.

The WebSocket handshake (:mod:`gatehouse_gateway.websocket.handler`) answers
from here too, so a refusal reads the same whatever the request upgrades to.

The shape is :func:`gatehouse_common.errors.error_body`'s (``error`` code and
``detail`` sentence, plus ``route`` where one was matched). Bodies that never
change are built once, here, at import; an outcome's body names the route
and the limit that ran out, so it is built when it is answered (a failure
path, never the hot one).
"""

from __future__ import annotations

from starlette.types import Send

from gatehouse_common.error_shape import error_body
from gatehouse_common.jwt import TokenError
from gatehouse_gateway.outcome import Outcome
from gatehouse_gateway.routing import Route
from gatehouse_gateway.upstream.h1 import UpstreamTLSError

_JSON = (b"content-type", b"application/json")

NO_ROUTE = error_body("no_route", "no route matches this host and path")
HEADERS_TOO_LARGE = error_body("headers_too_large", "the request headers are too large")
BODY_TOO_LARGE = error_body("body_too_large", "the request body is too large")
BAD_LENGTH = error_body("bad_request", "the Content-Length header is not a number")
BAD_TARGET = error_body("bad_request", "the request target cannot be forwarded")
WEBSOCKET_DISABLED = error_body("websocket_disabled", "this route does not proxy WebSocket")


async def send_json(
    send: Send, status: int, body: bytes, request_id: bytes, *extra: tuple[bytes, bytes]
) -> int:
    """Answer ``status`` with a JSON ``body``; returns ``status`` for the caller to count."""
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
    return status


def unauthorized(error: TokenError) -> bytes:
    """A 401 body when no authenticator could check the token (its keys never loaded)."""
    return error_body("unauthorized", error.detail, reason=error.reason)


def handshake_timeout(route: Route) -> bytes:
    """A 504 body when a backend did not finish a WebSocket handshake in time."""
    detail = "the backend did not answer the WebSocket handshake in time"
    return error_body(Outcome.TIMEOUT.code, detail, route=route.name)


def failure_body(outcome: Outcome, route: Route, error: BaseException | None) -> bytes:
    """The answer when the last attempt ended in ``outcome`` (anything but ``OK``)."""
    if outcome is Outcome.BODY_TOO_LARGE:
        return BODY_TOO_LARGE
    timeouts = route.config.timeouts
    cause = type(error).__name__ if error is not None else "unknown"
    if outcome is Outcome.POOL_BUSY:
        detail = f"no connection to a backend came free within {timeouts.pool_wait:g}s"
    elif outcome is Outcome.TIMEOUT:
        detail = f"the backend did not answer within {timeouts.read:g}s"
    elif outcome is Outcome.CONNECT_FAILED:
        detail = f"cannot connect to a backend: {cause}"
    elif outcome is Outcome.TLS_FAILED:
        # OpenSSL's short reason (CERTIFICATE_VERIFY_FAILED, ...): no address, no name
        reason = error.reason if isinstance(error, UpstreamTLSError) else cause
        detail = f"the TLS handshake with a backend failed: {reason}"
    else:
        detail = f"the backend connection failed: {cause}"
    return error_body(outcome.code, detail, route=route.name)
