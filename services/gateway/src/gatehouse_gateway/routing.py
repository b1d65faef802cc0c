"""The route table: compiled once per config, then (host, path) -> Route in a few lookups.

Host matching ignores the port and case: exact names first, then ``*.suffix``
wildcards (longest suffix first), then routes that name no host. Within the
first of those that has a route for the path, the longest path prefix wins.
Paths are matched in their normal form (:mod:`gatehouse_gateway.edge.path`)
and prefixes on segment boundaries: ``/account`` matches ``/account`` and
``/account/x`` but not ``/accounts``, so a prefix never claims a neighbour's
paths by accident. A route can ask for plain string prefixes
(``path_match: string``), as nginx's ``location /prefix`` has them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatehouse_common.error_shape import error_body
from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.balancing import Balancer, Cursor, make_balancer
from gatehouse_gateway.canary.split import Splitter
from gatehouse_gateway.config.groups import PRIMARY
from gatehouse_gateway.config.loader import ConfigError
from gatehouse_gateway.config.schema import GatewayConfig, RouteConfig
from gatehouse_gateway.metrics import RouteMetrics
from gatehouse_gateway.policy.mirror import Mirror
from gatehouse_gateway.policy.route_rules import RouteRules
from gatehouse_gateway.upstream.retry import RetryBudget
from gatehouse_gateway.upstream.tls import TLSContexts, UpstreamTLS

if TYPE_CHECKING:
    from gatehouse_gateway.policy.quota import RouteQuotas
    from gatehouse_gateway.policy.ratelimit import RouteLimits

# (prefix, the same ending in "/" or "" for string matching, route), longest first
_Entries = tuple[tuple[str, str, "Route"], ...]


class BackendGroup:
    """A named set of a route's backends with its own balancer (``primary``: the route's own).

    Retries stay within the group a request was sent to; health checks,
    drains, metrics and the operator view cover every group's backends
    through :attr:`Route.backends`.
    """

    __slots__ = ("backends", "balancer", "name", "strategy")

    def __init__(
        self, name: str, backends: list[BackendState], balancer: Balancer, strategy: str
    ) -> None:
        self.name = name
        self.backends = backends
        self.balancer = balancer
        self.strategy = strategy


class Route:
    """One route, with everything the hot path needs built in advance."""

    def __init__(
        self, config: RouteConfig, groups: dict[str, list[BackendState]], cursor: Cursor
    ) -> None:
        self.config = config
        self.name = config.name
        self.auth_required = config.auth == "required"
        self.preserve_host = config.preserve_host
        self.groups: dict[str, BackendGroup] = {}
        strategies = {g.name: g.strategy for g in config.groups if g.strategy is not None}
        for name, states in groups.items():
            strategy = strategies.get(name, config.strategy)
            # primary keeps the route's own cursor key, so its round robin continues
            key = config.name if name == PRIMARY else f"{config.name}/{name}"
            balancer = make_balancer(strategy, key, states, cursor)
            self.groups[name] = BackendGroup(name, states, balancer, strategy)
        self.primary = self.groups[PRIMARY]
        # every group's backends, primary's first: what checks, drains and views cover
        self.backends = [b for group in self.groups.values() for b in group.backends]
        self.balancer: Balancer = self.primary.balancer
        # which group a request goes to; None on a route that is its primary alone
        self.split = Splitter(config.name, self.groups, config.split) if config.groups else None
        self.max_attempts = 1 + config.retries.attempts
        # Plain floats for every attempt: a pydantic model's attributes are read
        # through its class's __getattr__ hook, which no attribute read specialises.
        timeouts = config.timeouts
        self.connect_timeout = timeouts.connect
        self.read_timeout = timeouts.read
        self.pool_timeout = timeouts.pool_wait
        self.budget = RetryBudget(config.retries)
        self.max_header_bytes = config.limits.max_header_bytes
        self.max_body_bytes = config.limits.max_body_bytes
        self.buffer_body_bytes = config.limits.buffer_body_bytes
        self.metrics = RouteMetrics(config.name)
        # CORS, header rules, path rewrite; None (most routes): nothing to do
        self.rules = RouteRules.compile(config)
        # set by the gateway's QuotaKeeper when the route has quotas
        self.quotas: RouteQuotas | None = None
        # set by the gateway's RateLimiter when the route has rate limits
        self.rate_limits: RouteLimits | None = None
        self.no_backend_body = error_body(
            "no_healthy_backend",
            f"route {config.name!r} has no healthy backend",
            route=config.name,
        )
        # a share of the requests copied to another group (policy/mirror.py)
        mirrored = config.mirror
        self.mirror: Mirror | None = None
        if mirrored is not None:
            self.mirror = Mirror(mirrored, config.name, self.groups[mirrored.group].balancer)


def _segment_form(prefix: str) -> str:
    """``/account`` -> ``/account/``: what a path under the prefix starts with."""
    return prefix if prefix.endswith("/") else prefix + "/"


def _host_key(raw: bytes) -> str:
    """``Example.COM:8080`` -> ``example.com`` (IPv6 ``[::1]:80`` -> ``[::1]``)."""
    host = raw.decode("latin-1").strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end > 0 else host
    colon = host.rfind(":")
    return host[:colon] if colon >= 0 else host


class RouteTable:
    """Routes indexed for matching; rebuilt (not mutated) on every reload."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        exact: dict[str, list[tuple[str, str, Route]]] = {}
        wildcard: dict[str, list[tuple[str, str, Route]]] = {}
        anyhost: list[tuple[str, str, Route]] = []
        for route in routes:
            segment = route.config.path_match == "segment"
            pairs = [
                (prefix, _segment_form(prefix) if segment else "", route)
                for prefix in route.config.path_prefix
            ]
            if not route.config.hosts:
                anyhost.extend(pairs)
            for host in route.config.hosts:
                if host.startswith("*."):
                    wildcard.setdefault(host[1:], []).extend(pairs)
                else:
                    exact.setdefault(host, []).extend(pairs)

        def ordered(pairs: list[tuple[str, str, Route]]) -> _Entries:
            return tuple(sorted(pairs, key=lambda pair: len(pair[0]), reverse=True))

        self._exact = {host: ordered(pairs) for host, pairs in exact.items()}
        self._wildcards = tuple(
            (suffix, ordered(pairs))
            for suffix, pairs in sorted(wildcard.items(), key=lambda kv: len(kv[0]), reverse=True)
        )
        self._any = ordered(anyhost)
        # Host header value -> candidate lists; bounded so hostile Host values
        # cannot grow it without end.
        self._host_cache: dict[bytes, tuple[_Entries, ...]] = {}

    def _candidates(self, raw_host: bytes) -> tuple[_Entries, ...]:
        cached = self._host_cache.get(raw_host)
        if cached is not None:
            return cached
        host = _host_key(raw_host)
        found: list[_Entries] = []
        if host in self._exact:
            found.append(self._exact[host])
        for suffix, entries in self._wildcards:
            if host.endswith(suffix) and len(host) > len(suffix):
                found.append(entries)
        if self._any:
            found.append(self._any)
        result = tuple(found)
        if len(self._host_cache) >= 1024:
            self._host_cache.clear()
        self._host_cache[raw_host] = result
        return result

    def match(self, raw_host: bytes, path: str) -> Route | None:
        """The route for ``path``, which must already be normalised."""
        for entries in self._candidates(raw_host):
            for prefix, directory, route in entries:
                if directory:
                    if path.startswith(directory) or path == prefix:
                        return route
                elif path.startswith(prefix):
                    return route
        return None

    def by_name(self, name: str) -> Route | None:
        return next((r for r in self.routes if r.name == name), None)


def _route_tls(route_config: RouteConfig, contexts: TLSContexts) -> UpstreamTLS | None:
    every = [*route_config.backends, *(b for g in route_config.groups for b in g.backends)]
    if not any(b.url.startswith("https://") for b in every):
        return None
    try:
        return contexts.get(route_config.tls, route_config.name)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise ConfigError(f"route {route_config.name!r}: tls: {exc}") from exc


def build_table(
    config: GatewayConfig,
    cursor: Cursor,
    previous: RouteTable | None = None,
    *,
    tls: TLSContexts | None = None,
) -> RouteTable:
    """Compile ``config``; backends kept by a reload keep their state.

    ``tls`` holds the SSL contexts of earlier tables (the gateway keeps one for
    its life, so unchanged ``tls`` blocks keep their pooled connections).
    Raises :class:`ConfigError` when a route's CA, certificate or key cannot be loaded.
    """
    contexts = tls if tls is not None else TLSContexts()
    # every context first: a bad file fails the build before kept backends are touched
    route_tls = [_route_tls(route_config, contexts) for route_config in config.routes]
    known: dict[tuple[str, str], BackendState] = {}
    if previous is not None:
        for route in previous.routes:
            for backend in route.backends:
                known[(route.name, backend.base_url)] = backend
    routes = []
    for route_config, tls_of_route in zip(config.routes, route_tls, strict=True):
        groups: dict[str, list[BackendState]] = {}
        listed = [(PRIMARY, route_config.backends)]
        listed += [(group.name, group.backends) for group in route_config.groups]
        for group_name, backend_configs in listed:
            backends = groups[group_name] = []
            for backend_config in backend_configs:
                state = known.get((route_config.name, backend_config.url))
                if state is None:
                    state = BackendState(
                        route_config.name,
                        backend_config.url,
                        backend_config.weight,
                        route_config.passive_health,
                    )
                else:
                    state.weight = backend_config.weight
                    state.passive = route_config.passive_health
                state.tls = tls_of_route if backend_config.url.startswith("https://") else None
                backends.append(state)
        route = Route(route_config, groups, cursor)
        kept = previous.by_name(route.name) if previous is not None else None
        if route.mirror is not None and kept is not None and kept.mirror is not None:
            route.mirror.gate = kept.mirror.gate  # copies under way still count
        routes.append(route)
    return RouteTable(routes)
