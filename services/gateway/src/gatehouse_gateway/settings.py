"""GatewaySettings: how the gateway process runs (the routes live in the YAML config)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict

from gatehouse_common.redis_url import check_redis_url
from gatehouse_common.settings import ServiceSettings
from gatehouse_gateway.config.schema import AdminListenConfig


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEHOUSE_GATEWAY_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        # REDIS_URL may carry a password: a refusal names the field, not the value.
        hide_input_in_errors=True,
    )

    service_name: str = "gateway"
    port: int = Field(default=8080, ge=0, le=65535)
    # The admin listener (/-/...): unset, the config's ``admin`` section decides.
    admin_host: str | None = None
    admin_port: int | None = Field(default=None, ge=1, le=65535)
    # One info line per proxied request costs more than the proxying; opt in.
    access_log: bool = False
    config: str = Field(
        default="services/gateway/config/demo.yaml",
        validation_alias=AliasChoices("GATEHOUSE_CONFIG", "GATEHOUSE_GATEWAY_CONFIG", "config"),
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "redis_url")
    )
    # One server (redis://, rediss://, unix://), Redis Cluster (redis+cluster://h:p,h:p/)
    # or a Sentinel group's master (redis+sentinel://h:p,h:p/<master>/<db>):
    # gatehouse_common.redis_url. A URL that does not parse fails the start.
    _check_redis_url = field_validator("redis_url")(check_redis_url)
    # Every key starts with this ("<prefix>cursor:<route>", ...; README "Redis keys"),
    # so tests and tenants can share one Redis.
    redis_prefix: str = "gatehouse:gateway:"
    # A dead Redis must never stall a request: short timeouts, and after a
    # failure it is retried in the background at this interval.
    redis_timeout: float = Field(default=0.25, gt=0, le=10)
    redis_retry_interval: float = Field(default=1.0, gt=0, le=60)
    # The revocation denylist auth writes and announces (shared with auth's
    # setting of the same name); read only when redis_url is set. Without
    # Redis no revocation reaches the gateway: tokens live until they expire.
    revocation_prefix: str = "gatehouse:revocation:"
    # How long a subject's "not before" matters: the longest access token
    # lifetime auth may be configured with (its token_ttl_seconds allows a day).
    revocation_max_token_lifetime: float = Field(default=86_400, gt=0)
    # Routes in the original (Flask) config format get these for the auth
    # service's and the accounts page's paths.
    auth_url: str = "http://127.0.0.1:8001"
    accounts_ui_url: str = "http://127.0.0.1:8002"
    # Drains and restores are recorded in auth's audit log (POST <auth_url>/audit,
    # as the acting admin), in the background within this timeout.
    operator_audit: bool = True
    operator_audit_timeout: float = Field(default=2.0, gt=0, le=30)
    # Pooled keep-alive connections to all backends together, per worker.
    upstream_connection_limit: int = Field(default=1000, ge=1, le=100_000)
    # ... and to each backend, per worker: one slow backend cannot take every place.
    upstream_backend_connection_limit: int = Field(default=256, ge=1, le=100_000)
    # The response head (status line and headers) a backend may send; over it, 502.
    upstream_max_response_head_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    upstream_keepalive: float = Field(default=60.0, ge=0)
    watch_config: bool = True
    # Rate limits (policy/ratelimit): consumers tracked per limit and process; past
    # it the oldest tenth is forgotten, so hostile header values cannot grow memory.
    ratelimit_max_consumers: int = Field(default=100_000, ge=100, le=10_000_000)
    # How often a replica reads the drained backends every replica shares in
    # Redis (and samples the dashboard's per-backend history).
    drain_sync_interval: float = Field(default=1.0, gt=0, le=60)
    # Quotas (policy/quota/): every replica writes its counts to Redis and reads
    # the totals back this often. Between two flushes replicas do not see each
    # other's requests: a quota can be overrun by what every replica admits in
    # one interval, at most.
    quota_flush_interval: float = Field(default=0.5, ge=0.01, le=10)
    # Consumers whose counts one process holds in memory at most; past it a new
    # consumer's request is let through uncounted (gateway_quota_untracked_total).
    quota_max_consumers: int = Field(default=100_000, ge=100, le=10_000_000)
    # How often a replica reads the canary weights operators set at run time
    # (Redis hash <prefix>canary:weights): a change reaches every replica within this.
    canary_sync_interval: float = Field(default=0.5, gt=0, le=60)

    # WebSocket proxying (gatehouse_gateway.websocket; the per-message limits are
    # the ws_* settings every service shares). Off: an Upgrade request is plain HTTP.
    ws_enabled: bool = True
    # A socket with no message either way for this long is closed with 1001
    # (a route's websocket_idle_timeout overrides it); pings do not count.
    ws_idle_timeout: float = Field(default=300.0, gt=0, le=86400)

    def admin_listener(self, admin: AdminListenConfig) -> tuple[str, int]:
        """(host, port) of the admin listener: flags and environment, then the config."""
        return (self.admin_host or admin.address, self.admin_port or admin.port)
