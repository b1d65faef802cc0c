"""The gateway's config file, as pydantic models.

Every model forbids unknown keys, so a typo (``path_prefx``) is an error that
names the key instead of a setting silently ignored. Durations are seconds.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from gatehouse_common.jwt.algorithms import KEY_TYPE_FOR_ALGORITHM
from gatehouse_gateway.config.backend import BackendConfig, Strategy
from gatehouse_gateway.config.cors import CorsConfig
from gatehouse_gateway.config.groups import GroupConfig, SplitConfig, check_route_groups
from gatehouse_gateway.config.header_rules import HeaderRulesConfig
from gatehouse_gateway.config.listeners import ListenerConfig
from gatehouse_gateway.config.mirror import MirrorConfig, check_mirror_group
from gatehouse_gateway.config.quota import QuotaList
from gatehouse_gateway.config.ratelimit import RateLimitConfig, check_rate_limits
from gatehouse_gateway.config.rewrite import PathRewriteConfig
from gatehouse_gateway.config.route_rules import check_route_rules
from gatehouse_gateway.edge.forwarding import parse_networks
from gatehouse_gateway.edge.path import BadPath, normalise_path


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListenConfig(_Strict):
    address: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # HTTP/2 with prior knowledge on the main port too (HTTP/1.1 keeps working)
    h2c: bool = False


class AdminListenConfig(_Strict):
    """The gateway's own endpoints (``/-/...``) listen here and nowhere else.

    Loopback by default, like Envoy's admin port: health, config, metrics and
    the operator API are for the operator, probes and Prometheus, not the edge.
    """

    address: str = "127.0.0.1"
    port: int = Field(default=9901, ge=1, le=65535)


class EdgeConfig(_Strict):
    """How the gateway treats what a client sends, before any route sees it."""

    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="CIDRs whose X-Forwarded-*/Forwarded the gateway appends to; "
        "from any other peer they are replaced with what the gateway saw",
    )
    underscores_in_headers: Literal["drop", "reject", "allow"] = Field(
        default="drop",
        description="request headers with _ in the name: dropped (nginx's and Envoy's "
        "default), refused with 400, or passed on (never for a header the gateway sets)",
    )
    escaped_slashes: Literal["reject", "keep"] = Field(
        default="reject",
        description="%2F and %5C in a path: refused with 400, or kept escaped (the backend "
        "must then not decode them into separators)",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)  # raises ValueError naming the bad entry
        return value


class AuthConfig(_Strict):
    """How tokens are verified on routes with ``auth: required``."""

    jwks_url: str | None = None
    issuer: str = "gatehouse-auth"
    audience: str = "gatehouse"
    algorithms: list[str] = Field(default_factory=lambda: ["EdDSA", "RS256"], min_length=1)
    leeway: float = Field(default=30.0, ge=0, le=600, description="clock skew allowed (s)")
    jwks_ttl: float = Field(default=300.0, gt=0, description="keys are refetched after this")
    jwks_min_refresh_interval: float = Field(
        default=10.0, ge=0, description="an unknown kid refetches the JWKS at most this often"
    )

    @field_validator("algorithms")
    @classmethod
    def _no_symmetric(cls, value: list[str]) -> list[str]:
        allowed = set(KEY_TYPE_FOR_ALGORITHM)  # asymmetric only: never none or HS*
        bad = [alg for alg in value if alg not in allowed]
        if bad:
            raise ValueError(f"not allowed: {bad}; choose from {sorted(allowed)}")
        return value


class CursorConfig(_Strict):
    """Where the round-robin cursor lives. ``redis`` needs REDIS_URL; without it
    the gateway keeps an in-process cursor (the demo's embedded default)."""

    store: Literal["redis", "local"] = "redis"


class TimeoutsConfig(_Strict):
    connect: float = Field(default=2.0, gt=0, le=300)
    read: float = Field(default=30.0, gt=0, le=3600)
    pool: float | None = Field(
        default=None,
        gt=0,
        le=300,
        description="waiting for a free connection to a busy backend (default: connect); "
        "503 upstream_busy when it runs out, never counted against the backend",
    )

    @property
    def pool_wait(self) -> float:
        return self.pool if self.pool is not None else self.connect


class RetriesConfig(_Strict):
    """Retries go to a different backend: on a connect failure for any method,
    on 502/503 or a reset connection for idempotent methods only."""

    attempts: int = Field(default=2, ge=0, le=10, description="retries after the first try")
    budget_ratio: float = Field(default=0.2, ge=0, le=1, description="retries per request")
    budget_min_per_second: float = Field(default=10.0, ge=0, description="retries always allowed")


class HealthCheckConfig(_Strict):
    """Active checks: GET ``path`` on every backend each ``interval`` seconds."""

    enabled: bool = True
    path: str = "/healthz"
    interval: float = Field(default=5.0, gt=0, le=3600)
    timeout: float = Field(default=2.0, gt=0, le=60)
    healthy_threshold: int = Field(default=2, ge=1, le=100)
    unhealthy_threshold: int = Field(default=2, ge=1, le=100)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with /")
        return value


class PassiveHealthConfig(_Strict):
    """N consecutive failures eject a backend; each ejection in a row doubles the time."""

    enabled: bool = True
    consecutive_failures: int = Field(default=3, ge=1, le=1000)
    ejection_time: float = Field(default=5.0, gt=0, le=3600)
    max_ejection_time: float = Field(default=60.0, gt=0, le=86400)


class LimitsConfig(_Strict):
    max_header_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    max_body_bytes: int | None = Field(default=None, ge=0, description="None: unlimited")
    buffer_body_bytes: int = Field(
        default=64 * 1024,
        ge=0,
        le=16 * 1024 * 1024,
        description="a body with a Content-Length up to this is read whole before a backend "
        "is picked (nginx's request buffering): a slow client then holds no backend "
        "connection; 0 streams every body",
    )


class UpstreamTLSConfig(_Strict):
    """TLS to a route's ``https://`` backends (``http://`` ones ignore it).

    Verified by default, against the system trust store or ``ca_file``; a client
    certificate (``cert_file`` + ``key_file``) is offered to backends that ask for
    one (mTLS). ``server_name`` is the name sent by SNI and checked against the
    backend's certificate when it differs from the host in the URL.
    """

    verify: bool = Field(
        default=True,
        description="check the backend's certificate and name; false only for tests "
        "(logged as a warning)",
    )
    ca_file: str | None = Field(
        default=None, description="PEM bundle of CAs to trust; none: the system trust store"
    )
    cert_file: str | None = Field(
        default=None, description="PEM client certificate chain offered to the backend"
    )
    key_file: str | None = Field(
        default=None, description="its private key (PEM); none: in cert_file"
    )
    server_name: str | None = Field(
        default=None, description="SNI and certificate name; none: the URL's host"
    )

    @model_validator(mode="after")
    def _consistent(self) -> UpstreamTLSConfig:
        if self.key_file and not self.cert_file:
            raise ValueError("key_file needs cert_file")
        if not self.verify and (self.ca_file or self.server_name):
            raise ValueError("ca_file and server_name only apply with verify: true")
        return self


TokenSource = Literal["header", "subprotocol", "query"]


class RouteConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    hosts: list[str] = Field(default_factory=list, description="empty: any host")
    path_prefix: list[str] = Field(default_factory=lambda: ["/"], min_length=1)
    path_match: Literal["segment", "string"] = Field(
        default="segment",
        description="segment: /account matches /account and /account/x, not /accounts; "
        "string: a plain string prefix",
    )
    auth: Literal["required", "none"] = "none"
    preserve_host: bool = Field(
        default=True,
        description="the backend gets the client's Host (Envoy's, Traefik's and HAProxy's "
        "default); false: its own host:port from the backend URL (nginx's default)",
    )
    strategy: Strategy = "round_robin"
    # the group "primary"; more groups and the split between them: config/groups.py
    backends: list[BackendConfig] = Field(min_length=1)
    groups: list[GroupConfig] = Field(default_factory=list)
    split: SplitConfig | None = None
    timeouts: TimeoutsConfig = TimeoutsConfig()
    retries: RetriesConfig = RetriesConfig()
    health_check: HealthCheckConfig | None = None
    passive_health: PassiveHealthConfig = PassiveHealthConfig()
    limits: LimitsConfig = LimitsConfig()
    tls: UpstreamTLSConfig = UpstreamTLSConfig()
    # WebSocket (gatehouse_gateway.websocket): proxied on every route unless turned
    # off here. With ``auth: required`` the token is read at the handshake from the
    # sources listed (browsers cannot set an Authorization header on a WebSocket):
    # ``header`` (Authorization), ``subprotocol`` (a ``bearer.<jwt>`` entry of
    # Sec-WebSocket-Protocol), ``query`` (``?access_token=``, dropped before the
    # backend sees the query). A socket with no message either way for
    # ``websocket_idle_timeout`` seconds is closed (unset: the gateway's setting).
    websocket: bool = True
    websocket_token_sources: list[TokenSource] = Field(
        default_factory=lambda: list[TokenSource](["header"]), min_length=1
    )
    websocket_idle_timeout: float | None = Field(default=None, gt=0, le=86400)
    # Edge rules (gatehouse_gateway.policy.route_rules): CORS answered at the
    # gateway, header rules, and a path rewrite; absent, a route pays nothing.
    cors: CorsConfig | None = None
    headers: HeaderRulesConfig | None = None
    path_rewrite: PathRewriteConfig | None = None

    @model_validator(mode="after")
    def _edge_rules(self) -> RouteConfig:
        check_route_rules(
            auth_required=self.auth == "required",
            path_prefixes=self.path_prefix,
            cors=self.cors,
            headers=self.headers,
            path_rewrite=self.path_rewrite,
        )
        return self

    # requests per consumer per UTC day or month, shared through Redis (config/quota.py)
    quotas: QuotaList = Field(default_factory=list)
    # a share of the requests copied to another group, the answers dropped (config/mirror.py)
    mirror: MirrorConfig | None = None
    # Token buckets per consumer, shared across replicas (config/ratelimit.py)
    rate_limits: list[RateLimitConfig] = Field(default_factory=list)

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits(
        cls, value: list[RateLimitConfig], info: ValidationInfo
    ) -> list[RateLimitConfig]:
        return check_rate_limits(value, info.data.get("auth"))

    @field_validator("backends")
    @classmethod
    def _distinct_backends(cls, value: list[BackendConfig]) -> list[BackendConfig]:
        urls = [backend.url for backend in value]
        repeated = sorted({url for url in urls if urls.count(url) > 1})
        if repeated:
            raise ValueError(f"listed more than once: {repeated}; use weight instead")
        return value

    @model_validator(mode="after")
    def _groups(self) -> RouteConfig:
        check_route_groups(self)
        return self

    @model_validator(mode="after")
    def _mirror_group(self) -> RouteConfig:
        if self.mirror is not None:
            check_mirror_group(self.mirror, [group.name for group in self.groups])
        return self

    @field_validator("path_prefix", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("path_prefix")
    @classmethod
    def _absolute_prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not prefix.startswith("/"):
                raise ValueError(f"{prefix!r} must start with /")
            if prefix.startswith("/-/"):
                # the admin listener answers /-/ itself: a route there would be half-hidden
                raise ValueError(f"{prefix!r} is under /-/, reserved for the gateway itself")
            try:
                normal = normalise_path(prefix.encode("utf-8"), "keep").decode("utf-8")
            except BadPath as exc:
                raise ValueError(f"{prefix!r}: {exc.reason}") from None
            if normal != prefix:
                raise ValueError(
                    f"{prefix!r} is not in normal form (paths are matched normalised): "
                    f"write {normal!r}"
                )
        return value

    @field_validator("hosts")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        cleaned = []
        for host in value:
            name = host.strip().lower()
            bare = name[2:] if name.startswith("*.") else name
            if not bare or "*" in bare or ":" in bare or "/" in bare:
                raise ValueError(f"{host!r} is not a host name or *.suffix wildcard")
            cleaned.append(name)
        return cleaned


class GatewayConfig(_Strict):
    listen: ListenConfig = ListenConfig()
    admin: AdminListenConfig = AdminListenConfig()
    # more public listeners: TLS, HTTP/2, HTTPS redirect, HSTS (config/listeners.py)
    listeners: list[ListenerConfig] = Field(default_factory=list)
    # /metrics on the public listener, as the original app served it; the
    # admin listener's /-/metrics is always there.
    public_metrics: bool = False
    edge: EdgeConfig = EdgeConfig()
    auth: AuthConfig = AuthConfig()
    cursor: CursorConfig = CursorConfig()
    routes: list[RouteConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> GatewayConfig:
        ports = [self.listen.port, self.admin.port] + [x.port for x in self.listeners if x.port]
        taken = sorted({p for p in ports if ports.count(p) > 1})
        if taken:
            raise ValueError(f"listen, admin and listeners need a port each; repeated: {taken}")
        names = [route.name for route in self.routes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"route names must be unique; repeated: {duplicates}")
        claimed: dict[tuple[str, str], str] = {}
        for route in self.routes:
            for host in route.hosts or ["(any host)"]:
                for prefix in route.path_prefix:
                    other = claimed.setdefault((host, prefix), route.name)
                    if other != route.name:
                        raise ValueError(
                            f"routes {other!r} and {route.name!r} both claim {host} {prefix}"
                        )
        needs_auth = [r.name for r in self.routes if r.auth == "required"]
        if needs_auth and not self.auth.jwks_url:
            raise ValueError(f"auth.jwks_url is required: routes {needs_auth} require auth")
        return self
