"""What a listener adds around the app: the HTTPS redirect and the HSTS header.

They wrap the service's own ASGI app per listener (the protocol of a connection
knows which listener accepted it), so a plain listener that only redirects
never runs the app, and the app itself stays unaware of listeners.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gatehouse_common.error_shape import error_body
from gatehouse_common.listeners import ListenerSpec

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable

# A host name or an IPv4 or bracketed IPv6 literal, with an optional port: what
# may be copied into a Location header (anything else is answered 400).
_HOST = re.compile(rb"(?P<name>[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
_BAD_HOST = error_body("bad_request", "The request's Host cannot be redirected to HTTPS.")


def _host(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"host":
            match = _HOST.fullmatch(value)
            return match.group("name") if match else None
    return None


class HttpsRedirect:
    """Every request answered ``308`` to the same host, path and query on HTTPS.

    308, not 301: the method and body are kept, as a client re-sending a POST
    must. The request's body is not read (the server closes such a connection
    lingering, as after any early answer).
    """

    def __init__(self, https_port: int) -> None:
        self._port = b"" if https_port == 443 else b":%d" % https_port

    async def __call__(
        self, scope: dict[str, Any], receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008, "reason": "use https"})
            return
        host = _host(scope["headers"])
        if host is None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"%d" % len(_BAD_HOST)),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _BAD_HOST})
            return
        target: bytes = scope.get("raw_path") or scope["path"].encode()
        if not target.startswith(b"/"):
            target = b"/"  # asterisk-form or absolute-form: the host is already taken
        query: bytes = scope.get("query_string", b"")
        location = b"https://" + host + self._port + target + (b"?" + query if query else b"")
        await send(
            {
                "type": "http.response.start",
                "status": 308,
                "headers": [(b"location", location), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})


class StrictTransportSecurity:
    """The app, with ``Strict-Transport-Security`` added to every HTTP answer."""

    def __init__(self, app: ASGI3Application, value: bytes) -> None:
        self._app = app
        self._header = (b"strict-transport-security", value)

    async def __call__(
        self, scope: dict[str, Any], receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)  # type: ignore[arg-type]
            return
        header = self._header

        async def send_with_hsts(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await self._app(scope, receive, send_with_hsts)  # type: ignore[arg-type]


def listener_app(app: ASGI3Application, spec: ListenerSpec) -> ASGI3Application:
    """The app as ``spec``'s listener serves it."""
    if spec.redirect_to_https is not None:
        return HttpsRedirect(spec.redirect_to_https)  # type: ignore[return-value]
    if spec.tls is not None and spec.hsts is not None:
        return StrictTransportSecurity(app, spec.hsts.header_value())  # type: ignore[return-value]
    return app
