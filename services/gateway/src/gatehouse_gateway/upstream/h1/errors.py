"""The upstream client's failures: the ones the proxy tells apart.

::

    UpstreamError
    ├── UpstreamPoolTimeout    no pool slot freed in time: the gateway is busy, not the backend
    ├── UpstreamConnectError   cannot connect (refused, unreachable, connect/TLS timeout)
    │   └── UpstreamTLSError   the TLS handshake failed: certificate not trusted, name
    │                          mismatch, or the backend refused the client certificate
    ├── UpstreamTimeout        (also TimeoutError) no response head in time, or a stalled body
    └── UpstreamBroken         reset, closed early, or an answer the client refuses to parse

Only the last three say something about the backend; a pool timeout is the
gateway's own queue and must never count against a backend's health.
"""

from __future__ import annotations


class UpstreamError(Exception):
    """Base of the client's failures."""


class UpstreamPoolTimeout(UpstreamError):
    """No connection slot freed within the pool timeout (per-backend or global cap).

    Deliberately not an ``UpstreamConnectError`` nor a ``TimeoutError``: the
    backend was never asked, so callers must not eject it or answer 504.
    """


class UpstreamConnectError(UpstreamError):
    """No connection to the backend could be made (refused, unreachable, connect timeout)."""


class UpstreamTLSError(UpstreamConnectError):
    """The TLS handshake with the backend failed, on either side: its certificate is
    not trusted or names another host, or it refused (or wanted) a client certificate.

    With TLS 1.3 a backend refuses a client certificate after the client's side of
    the handshake is done, so this may arrive in place of the response head; the
    request still never reached the backend's application. ``reason`` is OpenSSL's
    short reason (``CERTIFICATE_VERIFY_FAILED``), safe to show a client.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"TLS handshake with the backend failed: {reason}")
        self.reason = reason


class UpstreamTimeout(UpstreamError, TimeoutError):
    """The backend was too slow: no whole response head within the read timeout
    after the request was sent, no body byte for the read timeout, or no request
    byte taken for the read timeout while sending."""


class UpstreamBroken(UpstreamError):
    """The connection failed mid-exchange: reset, closed early, or an unparsable or
    refused response (bad status, unsolicited 101, a head over the limits)."""
