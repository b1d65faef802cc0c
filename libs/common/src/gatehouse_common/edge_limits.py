"""The limits every connection of every service is held to, in one value.

:class:`EdgeLimits` travels from the service's settings to the HTTP protocol
inside uvicorn's ``Config`` (:class:`gatehouse_common.server.EdgeConfig`), so
it survives uvicorn pickling the config into each worker process; the protocol
reads it once per connection. A plain ``uvicorn.Config`` (tests that run a
server in a thread) gets the defaults, which are the contract's safe values.
"""

from __future__ import annotations

from dataclasses import dataclass

from gatehouse_common.settings import ServiceSettings


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """Sizes in bytes, times in seconds; see libs/common/README.md for each one's reason."""

    max_request_line_bytes: int = 8192
    max_header_bytes: int = 65536
    max_header_count: int = 100
    header_timeout: float = 10.0
    body_idle_timeout: float = 15.0
    keepalive_timeout: float = 5.0
    max_connections: int = 4096
    linger_bytes: int = 64 * 1024 * 1024
    linger_timeout: float = 2.0
    http2_max_concurrent_streams: int = 100
    http2_max_resets: int = 200

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> EdgeLimits:
        return cls(
            max_request_line_bytes=settings.max_request_line_bytes,
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            header_timeout=settings.header_timeout,
            body_idle_timeout=settings.body_idle_timeout,
            keepalive_timeout=settings.keepalive_timeout,
            max_connections=settings.max_connections,
            linger_bytes=settings.linger_bytes,
            linger_timeout=settings.linger_timeout,
            http2_max_concurrent_streams=settings.http2_max_concurrent_streams,
            http2_max_resets=settings.http2_max_resets,
        )
