"""The gateway's rate limits: every route's limits, checked in one call per request.

:class:`RateLimiter` belongs to the running gateway (made, started and closed
with it) and is rebuilt with each route table: a limit whose route and
settings a reload keeps keeps its consumers' state. It hands each limited
route its :class:`RouteLimits` (``route.rate_limits``), whose
:meth:`RouteLimits.check` is the proxy's and the WebSocket handshake's one
call: it answers None (the request fits every limit of its route, now spent)
or the :class:`Refused` answer to give. A request refused by one limit spends
nothing of the others.

Headers (draft-ietf-httpapi-ratelimit-headers): ``RateLimit-Policy`` names
each limit with its quota ``q`` (the burst) and window ``w`` (seconds the
quota takes to refill, so ``q/w`` is the long-run rate); ``RateLimit`` gives,
per limit, ``r`` (requests left, as this replica knows) and ``t`` (seconds
until the quota is whole again). A refusal carries both and ``Retry-After``
(seconds until one request fits).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from gatehouse_common.error_shape import error_body
from gatehouse_common.jwt import VerifiedToken
from gatehouse_gateway.edge.head import RequestHead
from gatehouse_gateway.policy.consumer import consumer_of
from gatehouse_gateway.policy.ratelimit.limit import ALLOW, REFUSE, Limit
from gatehouse_gateway.policy.ratelimit.store import LeaseStore
from gatehouse_gateway.routing import Route

# subjects whose consumer string is kept per route (the cache is emptied when full)
_SUBJECTS_CACHED = 10_000


@dataclass(slots=True, frozen=True)
class Refused:
    """The answer to a request a limit refused: 429, or 503 where a route fails closed."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]


class _Source:
    """What :func:`~gatehouse_gateway.policy.consumer.consumer_of` reads of a request."""

    __slots__ = ("client", "head", "identity")

    def __init__(self, identity: VerifiedToken | None, head: RequestHead, client: bytes) -> None:
        self.identity = identity
        self.head = head
        self.client = client


class RouteLimits:
    """The limits of one route, with the bytes of their answers built once."""

    def __init__(self, route: str, limits: list[Limit], store: LeaseStore) -> None:
        self.route = route
        self.limits = limits
        self.store = store
        self.policy = (b"ratelimit-policy", b", ".join(limit.policy for limit in limits))
        self.reporting = [limit for limit in limits if limit.headers]
        # a route with one limit is decided in one call (Limit.spend); keyed on the
        # subject, the consumer is one dict lookup once the subject was seen
        self._single = limits[0] if len(limits) == 1 else None
        self._by_subject = self._single is not None and self._single.key.by == "subject"
        self._refusals = {
            limit.name: error_body(
                "rate_limited",
                f"too many requests: {limit.config.rate} per {limit.config.per} "
                f"(burst {limit.capacity}) per {limit.key.by}",
                route=route,
                limit=limit.name,
            )
            for limit in limits
        }
        # subject -> consumer: the same few subjects, request after request
        self._subjects: dict[str, str] = {}
        self._unavailable = error_body(
            "rate_limit_unavailable",
            "the rate limit store is unreachable and this route refuses requests until it is back",
            route=route,
        )

    def check(
        self,
        identity: VerifiedToken | None,
        head: RequestHead,
        client: bytes,
        added: list[tuple[bytes, bytes]],
    ) -> Refused | None:
        now = time.monotonic()
        state = self.store.state
        limit = self._single
        if limit is not None:  # the usual case, without the lists
            consumer = None
            if self._by_subject and identity is not None:
                consumer = self._subjects.get(identity.subject)
            if consumer is None:
                consumer = self._consumer(limit, identity, head, client)
            verdict = limit.spend(consumer, now, state)
            if verdict != ALLOW:
                limit.refuse(consumer, now, state)
                return self._refused(limit, consumer, now, state, verdict)
            if limit.headers:
                added.append(self.policy)
                added.append((b"ratelimit", self._items([consumer], now, state)))
            return None
        return self._check_every(identity, head, client, added, now, state)

    def _check_every(
        self,
        identity: VerifiedToken | None,
        head: RequestHead,
        client: bytes,
        added: list[tuple[bytes, bytes]],
        now: float,
        state: str,
    ) -> Refused | None:
        """Several limits: every one admits before any is spent. A method of its own:
        its comprehension's closure would cost :meth:`check` a cell per argument."""
        limits = self.limits
        consumers = [self._consumer(limit, identity, head, client) for limit in limits]
        for limit, consumer in zip(limits, consumers, strict=True):
            verdict = limit.admits(consumer, now, state)
            if verdict != ALLOW:
                limit.refuse(consumer, now, state)
                return self._refused(limit, consumer, now, state, verdict)
        for limit, consumer in zip(limits, consumers, strict=True):
            limit.take(consumer, now, state)
        if self.reporting:
            added.append(self.policy)
            added.append((b"ratelimit", self._items(consumers, now, state)))
        return None

    def _consumer(
        self, limit: Limit, identity: VerifiedToken | None, head: RequestHead, client: bytes
    ) -> str:
        """The consumer under ``limit``'s key; a token's subject is looked up, not re-derived."""
        by = limit.key.by
        if by == "route":
            return "route"
        if by == "subject" and identity is not None:
            subject = identity.subject
            consumer = self._subjects.get(subject)
            if consumer is None:
                if len(self._subjects) >= _SUBJECTS_CACHED:
                    self._subjects.clear()
                consumer = consumer_of(limit.key, _Source(identity, head, client))
                self._subjects[subject] = consumer
            return consumer
        return consumer_of(limit.key, _Source(identity, head, client))

    def _items(self, consumers: list[str], now: float, state: str) -> bytes:
        items = []
        for limit, consumer in zip(self.limits, consumers, strict=True):
            if limit.headers:
                left = limit.remaining(consumer, now, state)
                items.append(f'"{limit.name}";r={left};t={limit.reset_seconds(left)}')
        return ", ".join(items).encode()

    def _refused(
        self, limit: Limit, consumer: str, now: float, state: str, verdict: int
    ) -> Refused:
        retry = str(limit.retry_after(consumer, now, state)).encode()
        if verdict == REFUSE:
            status, body = 429, self._refusals[limit.name]
        else:
            status, body = 503, self._unavailable
        item = f'"{limit.name}";r=0;t={limit.reset_seconds(0)}'.encode()
        return Refused(status, body, ((b"retry-after", retry), self.policy, (b"ratelimit", item)))


class RateLimiter:
    """Every route's limits and the store they share; one per gateway process."""

    def __init__(
        self,
        redis_url: str | None,
        *,
        prefix: str,
        timeout: float,
        retry_interval: float,
        max_consumers: int,
    ) -> None:
        self.store = LeaseStore(
            redis_url,
            prefix=prefix,
            timeout=timeout,
            retry_interval=retry_interval,
            limits=self._all_limits,
        )
        self.max_consumers = max_consumers
        self.routes: dict[str, RouteLimits] = {}

    def _all_limits(self) -> Iterator[Limit]:
        for route in list(self.routes.values()):
            yield from route.limits

    async def start(self) -> None:
        await self.store.start()

    async def close(self) -> None:
        await self.store.close()

    def update(self, routes: list[Route]) -> None:
        """Compile the limits of a new route table, keeping those a reload did not change."""
        kept = {
            (name, limit.config): limit for name, r in self.routes.items() for limit in r.limits
        }
        compiled: dict[str, RouteLimits] = {}
        for route in routes:
            configs = route.config.rate_limits
            if not configs:
                continue
            limits = [
                kept.get((route.name, config))
                or Limit(route.name, config, self.store, self.max_consumers)
                for config in configs
            ]
            compiled[route.name] = RouteLimits(route.name, limits, self.store)
        for route in routes:  # the proxy asks the route, without a lookup by name
            route.rate_limits = compiled.get(route.name)
        self.routes = compiled

    def view(self) -> dict[str, object]:
        """Every route's limits and the store's state: the operator view."""
        return {
            "store": self.store.snapshot(),
            "routes": [
                {"name": name, "limits": [limit.view() for limit in limits.limits]}
                for name, limits in self.routes.items()
            ],
        }
