"""The upstream client's failures: the three the proxy tells apart."""

from __future__ import annotations


class UpstreamError(Exception):
    """Base of the client's failures."""


class UpstreamConnectError(UpstreamError):
    """No connection to the backend could be made (refused, unreachable, connect timeout)."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    """The backend did not send anything for longer than the read timeout."""


class UpstreamBroken(UpstreamError):
    """The connection failed mid-exchange: reset, closed early, or an unparsable response."""
