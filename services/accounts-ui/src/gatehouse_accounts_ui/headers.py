"""Security headers on every response, and whether the request came over TLS.

Pure ASGI, like the shared request-id middleware, so error pages, static files
and redirects get the same headers as the page without each route remembering.
The CSP allows nothing but this service's own files: the page has no inline
script or style, so a strict policy costs it nothing. The referrer policy is
``same-origin`` rather than ``no-referrer``: under ``no-referrer`` browsers send
``Origin: null`` on the page's own form posts, which the CSRF check refuses.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_COMMON: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
)
_HSTS = (b"strict-transport-security", b"max-age=31536000")
# Pages show account data: never stored by the browser or a cache. Static
# files may be kept, but revalidated (they have ETags) so a deploy shows at once.
_NO_STORE = (b"cache-control", b"no-store")
_REVALIDATE = (b"cache-control", b"no-cache")


def scope_over_tls(scope: Scope) -> bool:
    """TLS to us, or to the proxy in front of us (``X-Forwarded-Proto: https``)."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-proto":
            return bool(value.split(b",")[0].strip().lower() == b"https")
    return False


class SecurityHeadersMiddleware:
    """Adds the security headers (and Cache-Control) a response has not set itself."""

    def __init__(self, app: ASGIApp, *, static_prefix: str) -> None:
        self.app = app
        self.static_prefix = static_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(_COMMON)
        extra.append(_REVALIDATE if scope["path"].startswith(self.static_prefix) else _NO_STORE)
        if scope_over_tls(scope):
            extra.append(_HSTS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in extra if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
