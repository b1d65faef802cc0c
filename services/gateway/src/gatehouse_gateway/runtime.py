"""The running gateway's state: config, route table, cursor, upstream session, auth.

One :class:`Gateway` per worker process, built in the lifespan. The proxy reads
``gateway.table`` once per request; :meth:`Gateway.reload` builds a whole new
table and swaps the reference, so requests already under way finish on the
table they started with and none is dropped. Backends a reload keeps keep
their health and in-flight state. The gateway's own endpoints show this
object through :mod:`gatehouse_gateway.state_view`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from gatehouse_gateway.auth import Authenticator
from gatehouse_gateway.balancing.cursor import Cursor, make_cursor
from gatehouse_gateway.config.loader import ConfigError, LoadedConfig, load_config
from gatehouse_gateway.edge.head import HeadRules
from gatehouse_gateway.heap import freeze_long_lived
from gatehouse_gateway.jwks_fetch import upstream_fetch
from gatehouse_gateway.metrics import CONFIG_RELOADS
from gatehouse_gateway.operator.service import Operator
from gatehouse_gateway.policy.quota import QuotaKeeper
from gatehouse_gateway.policy.ratelimit import RateLimiter
from gatehouse_gateway.revocation import RevocationList
from gatehouse_gateway.routing import Route, RouteTable, build_table
from gatehouse_gateway.settings import GatewaySettings
from gatehouse_gateway.upstream.h1 import UpstreamClient
from gatehouse_gateway.upstream.health import HealthMonitor
from gatehouse_gateway.upstream.tls import TLSContexts
from gatehouse_gateway.websocket.sessions import Sessions

logger = logging.getLogger(__name__)


class Gateway:
    def __init__(self, settings: GatewaySettings, loaded: LoadedConfig) -> None:
        self.settings = settings
        self.loaded = loaded
        self.version = 1
        self.loaded_at = time.time()
        self.last_reload_error: str | None = None
        self.cursor: Cursor = make_cursor(
            settings.redis_url,
            loaded.config.cursor.store,
            prefix=settings.redis_prefix,
            timeout=settings.redis_timeout,
            retry_interval=settings.redis_retry_interval,
        )
        # SSL contexts to https:// backends, kept across reloads (upstream/tls.py)
        self.tls = TLSContexts()
        self.table: RouteTable = build_table(loaded.config, self.cursor, tls=self.tls)
        # Quota counts, shared through Redis; each table's routes get theirs from it.
        self.quotas = QuotaKeeper(
            settings.redis_url,
            prefix=settings.redis_prefix,
            timeout=settings.redis_timeout,
            flush_interval=settings.quota_flush_interval,
            max_consumers=settings.quota_max_consumers,
        )
        self.quotas.compile(self.table.routes)
        self.edge = HeadRules(loaded.config.edge)
        # Rate limits per route and consumer, leased from Redis (policy/ratelimit/).
        self.rate_limits = RateLimiter(
            settings.redis_url,
            prefix=settings.redis_prefix,
            timeout=settings.redis_timeout,
            retry_interval=settings.redis_retry_interval,
            max_consumers=settings.ratelimit_max_consumers,
        )
        self.rate_limits.update(self.table.routes)
        self.authenticator: Authenticator | None = None
        # Revoked tokens and subjects, pushed by auth through Redis.
        self.revocations = RevocationList(
            redis_url=settings.redis_url,
            prefix=settings.revocation_prefix,
            timeout=settings.redis_timeout,
            retry_interval=settings.redis_retry_interval,
            max_token_lifetime=settings.revocation_max_token_lifetime,
        )
        # The one client to backends (upstream/h1/): proxied requests and health checks.
        self._upstream: UpstreamClient | None = None
        self._health: HealthMonitor | None = None
        self._reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[object]] = set()
        # Drains shared through Redis and the dashboard's history.
        self.operator = Operator(settings, self._routes)
        # Open WebSocket connections; those whose backend leaves are closed after a grace.
        self.websockets = Sessions(lambda: self.table, settings.ws_drain_timeout)

    @property
    def upstream(self) -> UpstreamClient:
        if self._upstream is None:
            raise RuntimeError("the gateway has not started")
        return self._upstream

    async def start(self) -> None:
        self._upstream = UpstreamClient(
            limit=self.settings.upstream_connection_limit,
            backend_limit=self.settings.upstream_backend_connection_limit,
            keepalive=self.settings.upstream_keepalive,
            max_response_head_bytes=self.settings.upstream_max_response_head_bytes,
        )
        await self.cursor.start()
        await self.quotas.start()
        await self.revocations.start()
        await self.rate_limits.start()
        self._set_authenticator(self.loaded)
        self._health = HealthMonitor(self._upstream, self._routes)
        self._health.sync()
        await self.operator.start()
        logger.info(
            "gateway serving %d route(s) from %s (cursor: %s)",
            len(self.table.routes),
            self.loaded.source,
            self.cursor.state,
        )

    async def close(self) -> None:
        await self.websockets.close()
        await self.operator.close()
        if self._health is not None:
            await self._health.close()
        if self.authenticator is not None:
            await self.authenticator.aclose()
        await self.cursor.close()
        await self.quotas.close()
        await self.revocations.close()
        await self.rate_limits.close()
        if self._upstream is not None:
            await self._upstream.close()

    def _routes(self) -> list[Route]:
        return self.table.routes

    def _set_authenticator(self, loaded: LoadedConfig) -> None:
        auth = loaded.config.auth
        if not auth.jwks_url:
            self.authenticator = None
            return
        if self.authenticator is not None and self.authenticator.config == auth:
            return
        previous = self.authenticator
        self.authenticator = Authenticator(
            auth, self.revocations, upstream_fetch(lambda: self.upstream)
        )
        # Warm the key cache without holding up start-up: auth may start later.
        self._background(self.authenticator.jwks.refresh())
        if previous is not None:
            self._background(previous.aclose())

    def _background(self, work: Coroutine[Any, Any, object]) -> None:
        """Run ``work`` without waiting; the reference keeps the task from being collected."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self, reason: str) -> bool:
        """Load the config file again; on any problem keep the running one and say why."""
        async with self._reload_lock:
            try:
                loaded = load_config(
                    self.loaded.source,
                    auth_url=self.settings.auth_url,
                    accounts_ui_url=self.settings.accounts_ui_url,
                )
                if loaded.digest == self.loaded.digest:
                    return True
                # a CA, certificate or key that cannot be loaded fails here too
                table = build_table(loaded.config, self.cursor, previous=self.table, tls=self.tls)
            except ConfigError as exc:
                self.last_reload_error = str(exc)
                CONFIG_RELOADS.labels(outcome="failure").inc()
                logger.error(
                    "config reload (%s) failed, keeping the running config: %s", reason, exc
                )
                return False
            if loaded.config.cursor != self.loaded.config.cursor:
                logger.warning("cursor settings change only on restart; keeping the running one")
            if (loaded.config.listen, loaded.config.admin) != (
                self.loaded.config.listen,
                self.loaded.config.admin,
            ):
                logger.warning("listeners change only on restart; keeping the running ones")
            self.quotas.compile(table.routes)
            # runtime canary weights override the file's from the first request on
            self.operator.canary.apply(table.routes)
            self.rate_limits.update(table.routes)  # before the table serves a request
            self.table = table
            self.edge = HeadRules(loaded.config.edge)
            self._set_authenticator(loaded)
            self.loaded = loaded
            self.version += 1
            self.loaded_at = time.time()
            self.last_reload_error = None
            if self._health is not None:
                self._health.sync()
            freeze_long_lived()
            CONFIG_RELOADS.labels(outcome="success").inc()
            logger.warning(
                "config reloaded (%s): version %d, %d route(s), digest %s",
                reason,
                self.version,
                len(self.table.routes),
                loaded.digest,
            )
            return True
