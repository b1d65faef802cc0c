"""The upstream client's failures: the ones the proxy tells apart.

::

    UpstreamError
    ├── UpstreamPoolTimeout    no pool slot freed in time: the gateway is busy, not the backend
    ├── UpstreamConnectError   cannot connect (refused, unreachable, connect/TLS timeout)
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


class UpstreamTimeout(UpstreamError, TimeoutError):
    """The backend was too slow: no whole response head within the read timeout
    after the request was sent, no body byte for the read timeout, or no request
    byte taken for the read timeout while sending."""


class UpstreamBroken(UpstreamError):
    """The connection failed mid-exchange: reset, closed early, or an unparsable or
    refused response (bad status, unsolicited 101, a head over the limits)."""
