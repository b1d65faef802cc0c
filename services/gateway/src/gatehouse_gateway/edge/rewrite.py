"""What the gateway changes in a backend's answer on purpose: URLs naming the backend.

A backend that builds an absolute URL from the address it was reached at
(``Location: http://127.0.0.1:9001/login``) hands its internal address to the
client, which then follows a redirect it cannot reach, or learns the network
behind the gateway. nginx's default ``proxy_redirect`` rewrites such a URL to
the address the client used; so does the gateway, in the same headers:

- ``Location`` (redirects, 201 Created);
- ``Refresh`` (its ``url=`` part), as nginx's ``proxy_redirect`` does;
- ``Content-Location`` too, where nginx leaves it: it is the same kind of
  URL, the same leak, and a client may fetch it (RFC 9110 section 8.7).

Only a URL whose scheme, host and port are those of the backend that
answered is rewritten (its default port written or not); a URL naming any
other host, a relative one, or one naming another backend is passed on as
sent. With ``preserve_host`` (a route's option, on by default) the backend
sees the client's ``Host`` and usually builds the right URL itself; this
covers backends that use their own bind address regardless.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

# Response headers that carry a URL the backend may have built from its own address.
URL_HEADERS = frozenset({b"location", b"content-location", b"refresh"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_URL_ENDS = (b"/", b"?", b"#")


def client_origin(scope: Any, host: bytes) -> bytes:
    """``scheme://host`` as the client reached the gateway (its ``Host``, else the listener)."""
    scheme: str = scope.get("scheme", "http")
    if not host:  # an HTTP/1.0 request may name no host: the address it connected to
        server = scope.get("server") or ("localhost", None)
        host = (
            server[0].encode() if server[1] is None else b"%s:%d" % (server[0].encode(), server[1])
        )
    return scheme.encode() + b"://" + host


@lru_cache(maxsize=1024)
def _spellings(backend_url: str) -> tuple[bytes, ...]:
    """The lowercase ``scheme://host[:port]`` forms that name ``backend_url``."""
    parts = urlsplit(backend_url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = _DEFAULT_PORTS.get(scheme)
    port = parts.port or default
    forms = [f"{scheme}://{host}:{port}"]
    if port == default:
        forms.append(f"{scheme}://{host}")
    return tuple(form.encode() for form in forms)


def _url(value: bytes, backend_url: str, origin: bytes) -> bytes:
    """``value`` with the backend's origin swapped for the client's, if it starts with it."""
    lower = value.lower()
    for prefix in _spellings(backend_url):
        if lower.startswith(prefix):
            rest = value[len(prefix) :]
            if not rest or rest.startswith(_URL_ENDS):
                return origin + rest
    return value


def url_header(name: bytes, value: bytes, backend_url: str, origin: bytes) -> bytes:
    """The value to send the client for ``name`` (one of :data:`URL_HEADERS`, lowercase)."""
    if name != b"refresh":
        return _url(value, backend_url, origin)
    # Refresh: "5; url=http://backend/x" (the URL may be quoted)
    index = value.lower().find(b"url=")
    if index < 0:
        return value
    start = index + 4
    if value[start : start + 1] in (b"'", b'"'):
        start += 1
    return value[:start] + _url(value[start:], backend_url, origin)
