"""CORS at the gateway: preflights answered here, actual answers marked for the browser.

A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``)
is answered before auth, since browsers never send credentials with one: 204
with the route's allowances when the origin, the method and every requested
header are allowed, else 403 JSON and no CORS header at all (the browser then
stops, and a script learns nothing). An actual request from an allowed origin
gets ``Access-Control-Allow-Origin`` (its origin echoed; ``*`` only for a
route open to any origin without credentials), ``Access-Control-Allow-Credentials``
and ``Access-Control-Expose-Headers`` as configured; from any other origin it
gets none of them. ``Vary: Origin`` goes on every answer of the route, so a
cache never hands one origin's answer to another.

Origins match byte for byte against the configured ones, which are in the form
browsers send (:mod:`gatehouse_gateway.config.cors`): no suffix, prefix or case
folding, so ``https://evil-example.com``, ``https://example.com.evil.net``,
``https://EXAMPLE.com``, ``https://example.com/path`` and ``null`` never pass
for ``https://example.com``. Any ``Access-Control-*`` header a backend sends on
such a route is dropped: the gateway's answer is the only one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gatehouse_common.error_shape import error_body
from gatehouse_gateway.config.cors import CorsConfig

# Every CORS response header (Fetch standard, section 3.2.3): a backend's own
# are dropped on a route whose CORS the gateway answers.
RESPONSE_HEADERS = frozenset(
    {
        b"access-control-allow-origin",
        b"access-control-allow-credentials",
        b"access-control-allow-methods",
        b"access-control-allow-headers",
        b"access-control-expose-headers",
        b"access-control-max-age",
        b"access-control-allow-private-network",
    }
)
# A preflight naming more than this is refused unread: no browser needs it,
# and echoing it back would amplify whatever a client sends.
MAX_REQUEST_HEADERS_BYTES = 4096
MAX_REQUEST_HEADERS = 64
_TOKEN = re.compile(rb"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
_VARY = (b"vary", b"Origin")
_PREFLIGHT_VARY = (
    b"vary",
    b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
)

ORIGIN_REFUSED = error_body(
    "cors_origin_not_allowed", "this origin may not call this route from a browser"
)
METHOD_REFUSED = error_body(
    "cors_method_not_allowed", "this method may not be used from a browser on this route"
)
HEADERS_REFUSED = error_body(
    "cors_headers_not_allowed", "a requested header may not be sent from a browser on this route"
)


PREFLIGHT_OUTCOMES = ("allowed", "origin_not_allowed", "method_not_allowed", "headers_not_allowed")


class Preflight:
    """A preflight's answer: ``status`` 204 with ``headers``, or 403 with a JSON ``body``.

    ``outcome`` is one of :data:`PREFLIGHT_OUTCOMES`, for the metric.
    """

    __slots__ = ("body", "headers", "outcome", "status")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes = b"",
        outcome: str = "allowed",
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.outcome = outcome


class CorsPolicy:
    """One route's ``cors:`` compiled: sets to look origins up in, header values built once."""

    __slots__ = (
        "_allowed_tail",
        "_any_header",
        "_any_origin",
        "_headers",
        "_methods",
        "_origins",
        "_preflight_tail",
    )

    def __init__(self, config: CorsConfig) -> None:
        self._any_origin = config.allow_origins == ["*"]
        self._origins = frozenset(origin.encode("ascii") for origin in config.allow_origins)
        self._methods = frozenset(method.encode("ascii") for method in config.allow_methods)
        self._any_header = config.allow_headers == ["*"]
        self._headers = frozenset(name.encode("ascii") for name in config.allow_headers)
        tail: list[tuple[bytes, bytes]] = []
        if config.allow_credentials:
            tail.append((b"access-control-allow-credentials", b"true"))
        if config.expose_headers:
            tail.append(
                (b"access-control-expose-headers", ", ".join(config.expose_headers).encode())
            )
        self._allowed_tail = tuple(tail)
        preflight = [
            (b"access-control-allow-methods", ", ".join(config.allow_methods).encode()),
        ]
        if config.allow_credentials:
            preflight.append((b"access-control-allow-credentials", b"true"))
        if config.max_age is not None:
            preflight.append((b"access-control-max-age", str(config.max_age).encode()))
        self._preflight_tail = tuple(preflight)

    def allow_origin(self, origin: bytes | None) -> bytes | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, or None: not allowed."""
        if origin is None:
            return None
        if self._any_origin:
            return b"*"
        return origin if origin in self._origins else None

    def allows_handshake(self, origin: bytes | None) -> bool:
        """Whether a WebSocket handshake sent with ``origin`` may open a socket.

        Browsers apply no CORS to WebSocket: any page may open a socket to any
        host, with the user's cookies, and read what comes back. The handshake's
        ``Origin`` (which browsers always send, and pages cannot forge) is the
        one guard against cross-site WebSocket hijacking, so a route's origin
        list is held against it here. No ``Origin`` at all is a client that is
        no browser (which could send any value it liked anyway): it passes.
        """
        return origin is None or self.allow_origin(origin) is not None

    def answer_headers(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        """What an actual (not preflight) answer of the route carries for ``origin``."""
        allowed = self.allow_origin(origin)
        if allowed is None:
            return [_VARY]
        return [(b"access-control-allow-origin", allowed), *self._allowed_tail, _VARY]

    def preflight(self, origin: bytes | None, method: bytes, requested: bytes | None) -> Preflight:
        """The answer to a preflight from ``origin`` asking for ``method`` and ``requested``."""
        allowed = self.allow_origin(origin)
        if allowed is None:
            return Preflight(403, [_PREFLIGHT_VARY], ORIGIN_REFUSED, "origin_not_allowed")
        if method not in self._methods:
            return Preflight(403, [_PREFLIGHT_VARY], METHOD_REFUSED, "method_not_allowed")
        names = self._requested(requested)
        if names is None:
            return Preflight(403, [_PREFLIGHT_VARY], HEADERS_REFUSED, "headers_not_allowed")
        headers = [(b"access-control-allow-origin", allowed), *self._preflight_tail]
        if names:
            headers.append((b"access-control-allow-headers", b", ".join(names)))
        headers.append(_PREFLIGHT_VARY)
        return Preflight(204, headers)

    def _requested(self, value: bytes | None) -> Sequence[bytes] | None:
        """The requested header names, lower case, if every one is allowed; else None."""
        if not value:
            return ()
        if len(value) > MAX_REQUEST_HEADERS_BYTES:
            return None
        names = [name.strip().lower() for name in value.split(b",")]
        names = [name for name in names if name]
        if len(names) > MAX_REQUEST_HEADERS:
            return None
        for name in names:
            if not _TOKEN.match(name):
                return None
            if not self._any_header and name not in self._headers:
                return None
        return names
