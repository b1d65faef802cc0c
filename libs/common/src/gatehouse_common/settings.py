"""The settings base class every Gatehouse service builds its own on.

Each service declares one subclass with its own ``env_prefix`` (for example
``GATEHOUSE_GATEWAY_``), so one environment can hold every service's settings
without collisions. Precedence is the one the design names: command-line flags
(passed as init arguments), then the environment (and a ``.env`` file), then
the defaults written here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "production"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class ServiceSettings(BaseSettings):
    """Settings that every service has: where it listens and how it logs."""

    model_config = SettingsConfigDict(
        env_prefix="GATEHOUSE_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
    )

    service_name: str = "gatehouse"
    environment: Environment = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: LogLevel = "info"
    # JSON lines (containers, log shippers); false: one readable, coloured line
    # per event for people (what `make demo` sets, gatehouse_common.logs).
    log_json: bool = True
    # Log the access lines of answered health checks (/healthz, /readyz, and the
    # gateway's /-/healthz, /-/readyz); the demo turns them off, failures still show.
    log_health_checks: bool = True
    # Log one line per request at info level. Off by default only where the
    # request rate makes it costly (the gateway's hot path).
    access_log: bool = True
    # Seconds a SIGTERM waits for in-flight requests before the process exits.
    graceful_timeout: float = Field(default=20.0, ge=0)

    # Edge limits, enforced by the HTTP protocol itself (gatehouse_common.edge_protocol)
    # on every connection before any app code runs; libs/common/README.md says why each
    # default is what it is.
    max_request_line_bytes: int = Field(default=8192, ge=64)
    max_header_bytes: int = Field(default=65536, ge=1024)
    max_header_count: int = Field(default=100, ge=1)
    header_timeout: float = Field(default=10.0, gt=0)
    body_idle_timeout: float = Field(default=15.0, gt=0)
    keepalive_timeout: float = Field(default=5.0, gt=0)
    max_connections: int = Field(default=4096, ge=1)
    linger_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    linger_timeout: float = Field(default=2.0, ge=0)
    # HTTP/2 (gatehouse_common.h2_protocol): streams a client may have open at once on
    # one connection, and stream resets it may send per 10 s before the connection is
    # closed (CVE-2023-44487, "rapid reset").
    http2_max_concurrent_streams: int = Field(default=100, ge=1, le=10_000)
    http2_max_resets: int = Field(default=200, ge=1)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"
