"""The TLS setting of an HTTP client made for one URL: no CA bundle for a plain-HTTP one.

httpx parses its whole CA bundle (certifi's, ~140 certificates) into every
client it makes, whether or not the client ever speaks TLS: about 1.2 MB a
client. The gateway makes its clients for one URL each (the JWKS, the audit
log), and such a client follows no redirects, so a client for an ``http://``
URL never handshakes: it gets a context that verifies against an empty trust
store instead, which would refuse any server if it ever did (fails closed).
An ``https://`` URL keeps httpx's default verification.
"""

from __future__ import annotations

import ssl


def verify_for(url: str) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for a client that only ever asks ``url`` (no redirects)."""
    if url.lower().startswith("http://"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies; trusts no one
    return True
