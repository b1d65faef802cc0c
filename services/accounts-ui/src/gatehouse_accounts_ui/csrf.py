"""CSRF defence for the page's two forms: a signed double-submit token and an Origin check.

The browser holds a random nonce in an HttpOnly, SameSite=Strict cookie; the
form carries ``HMAC(secret, nonce)``. A post is accepted only when the form's
token is the signature of the cookie's nonce, so a forger needs both the
victim's cookie and the server's secret (OWASP, "Signed Double-Submit Cookie":
https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html).
When the browser sends ``Origin`` (every modern one does on a POST), it must be
the page's own origin as well, which also stops a sibling sub-domain that
planted its own nonce cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers

NONCE_BYTES = 32
_NONCE_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_CONTEXT = b"gatehouse-accounts-ui:csrf:"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def new_nonce() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(NONCE_BYTES)).rstrip(b"=").decode()


def valid_nonce(value: str | None) -> bool:
    """A cookie value this service could have issued (anything else gets replaced)."""
    return value is not None and _NONCE_SHAPE.match(value) is not None


def sign(key: bytes, nonce: str) -> str:
    """The form token for ``nonce``."""
    digest = hmac.new(key, _CONTEXT + nonce.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_matches(key: bytes, nonce: str | None, token: str | None) -> bool:
    """Whether the form's ``token`` is the signature of the cookie's ``nonce``."""
    if not valid_nonce(nonce) or not token or len(token) > 128:
        return False
    return hmac.compare_digest(sign(key, str(nonce)), token)


def _authority(scheme: str, netloc: str) -> str:
    """``host:port`` in lower case with the scheme's default port filled in."""
    parts = urlsplit(f"{scheme}://{netloc}")
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    return f"{host}:{port}" if host else ""


def origin_allowed(origin: str, headers: Headers, trusted: Iterable[str]) -> bool:
    """Whether a form post's ``Origin`` is the page's own (or an explicitly trusted) origin.

    The page's own authority is what the browser addressed: ``Host``, or the
    ``X-Forwarded-Host`` a proxy in front (the gateway) set. A browser cannot
    put ``X-Forwarded-Host`` on a cross-site form post, so accepting it does
    not let a foreign page through.
    """
    origin = origin.strip()
    if origin in trusted:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc or parts.path not in ("", "/"):
        return False  # includes the opaque "null" origin
    wanted = _authority(parts.scheme, parts.netloc)
    if not wanted:
        return False
    candidates = [headers.get("host", "")]
    candidates += [h.strip() for h in headers.get("x-forwarded-host", "").split(",")]
    # Compared under the origin's scheme: behind a TLS-terminating proxy this
    # service's own scheme is http while the browser's is https.
    return any(c and _authority(parts.scheme, c) == wanted for c in candidates)
