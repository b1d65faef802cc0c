"""A route's quotas on the hot path: counts in memory, judged and answered without I/O.

Each consumer's count in a window is two numbers: ``mine``, the requests this
process admitted, and ``others``, what every other replica (and this
process's earlier incarnations) had admitted when Redis was last read. A
request is admitted while ``others + mine < limit``. The keeper
(:mod:`.keeper`) writes ``mine`` to Redis and reads ``others`` back every
flush interval, off the request path; between two flushes a replica cannot
see the others' new requests, which is the over-admission bound the README
states (every replica's admissions of one flush interval, at most).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

from prometheus_client import Counter

from gatehouse_common.error_shape import error_body
from gatehouse_common.jwt import VerifiedToken
from gatehouse_gateway.config.consumer import ConsumerKey
from gatehouse_gateway.config.quota import QuotaConfig
from gatehouse_gateway.edge.head import RequestHead
from gatehouse_gateway.policy.consumer import consumer_of
from gatehouse_gateway.policy.quota.metrics import QUOTA_REFUSALS
from gatehouse_gateway.policy.quota.window import Period, WindowBounds, window_at

Header = tuple[bytes, bytes]
POLICY = b"ratelimit-policy"
REMAINING = b"ratelimit"
RETRY_AFTER = b"retry-after"


class Count:
    """One consumer's requests in one window (see the module docstring)."""

    __slots__ = ("field", "flushed", "mine", "others", "recent", "touched")

    def __init__(self, field: str) -> None:
        self.mine = 0
        self.others = 0
        # the value of ``mine`` Redis last stored, under this process's ``field``
        self.flushed = 0
        self.field = field
        # asked about since the last flush; and flushes left to read it back (keeper.py)
        self.touched = True
        self.recent = 0


class Window:
    """One window of one quota: its bounds, its counts and what its answers repeat."""

    __slots__ = ("bounds", "count_key", "counts", "policy", "refusal", "top_key")

    def __init__(self, quota: QuotaState, bounds: WindowBounds) -> None:
        self.bounds = bounds
        self.counts: dict[str, Count] = {}
        where = f"{quota.route}/{quota.name}/{bounds.id}"
        # "<prefix>quota:{route/quota/window/consumer}": one key per count, its own hash
        # tag, so a consumer's value cannot pick the cluster slot of other keys
        self.count_key = f"{quota.prefix}quota:{{{where}/"
        self.top_key = f"{quota.prefix}quota-top:{where}"
        self.policy: Header = (POLICY, b"")
        self.refusal = b""
        self.describe(quota)

    def describe(self, quota: QuotaState) -> None:
        """The header and body every answer of this window repeats (redone on a new limit)."""
        seconds = self.bounds.seconds
        self.policy = (POLICY, f'"{quota.name}";q={quota.limit};w={seconds}'.encode())
        resets = datetime.fromtimestamp(self.bounds.end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.refusal = error_body(
            "quota_exceeded",
            f"the {quota.period} quota {quota.name!r} of {quota.limit} requests is spent; "
            f"it resets at {resets}",
            route=quota.route,
            quota=quota.name,
            resets_at=resets,
        )

    def key(self, consumer: str) -> str:
        return f"{self.count_key}{consumer}}}"


class QuotaState:
    """One quota of one route: the current window's counts, and ended ones not yet flushed.

    Kept by the keeper across config reloads (the same route, name, period and
    key keep their counts; a new limit applies at once).
    """

    def __init__(
        self,
        route: str,
        config: QuotaConfig,
        *,
        prefix: str,
        field: str,
        now: float,
    ) -> None:
        self.route = route
        self.name = config.name
        self.period: Period = config.period
        self.key: ConsumerKey = config.key
        self.limit = config.limit
        self.prefix = prefix
        # this process's field in each count's Redis hash (see keeper.py)
        self.field = field
        self.refusals: Counter = QUOTA_REFUSALS.labels(route=route, quota=config.name)
        self.window = Window(self, window_at(self.period, now))
        # ended windows whose counts Redis has not all stored yet
        self.ended: list[Window] = []

    @property
    def identity(self) -> tuple[str, str, str, ConsumerKey]:
        return (self.route, self.name, self.period, self.key)

    def set_limit(self, limit: int) -> None:
        if limit != self.limit:
            self.limit = limit
            self.window.describe(self)

    def roll(self, now: float) -> Window:
        """Start the window ``now`` falls in (the first request after midnight UTC)."""
        ended = self.window
        self.window = Window(self, window_at(self.period, now))
        if ended.counts:
            self.ended.append(ended)
        return self.window

    def retire(self) -> None:
        """A reload dropped this quota: what it counted is only left to flush."""
        if self.window.counts:
            self.ended.append(self.window)
        self.window = Window(self, self.window.bounds)

    def windows(self) -> list[Window]:
        return [*self.ended, self.window]


class Source(NamedTuple):
    """What :func:`consumer_of` reads of a request, before its ``ProxyRequest`` exists."""

    identity: VerifiedToken | None
    head: RequestHead
    client: bytes


class Tracker(Protocol):
    """The keeper's side of a new count: it bounds how many a process holds."""

    def track(self, window: Window, consumer: str, field: str) -> Count | None: ...


class Spent(NamedTuple):
    """A refusal: the 429 body and its headers."""

    body: bytes
    headers: list[Header]


class RouteQuotas:
    """The quotas of one route, as the proxy asks them: :meth:`admit` once per request."""

    __slots__ = ("_clock", "_tracker", "states")

    def __init__(
        self, states: list[QuotaState], tracker: Tracker, clock: Callable[[], float]
    ) -> None:
        self.states = states
        self._tracker = tracker
        self._clock = clock

    def admit(
        self,
        identity: VerifiedToken | None,
        head: RequestHead,
        client: bytes,
        added: list[Header],
    ) -> Spent | None:
        """Count the request against every quota and add their headers to ``added``;
        or, when one is spent, count it against none and return the refusal."""
        now = self._clock()
        source = Source(identity, head, client)
        found: list[tuple[QuotaState, Window, Count | None]] = []
        spent: QuotaState | None = None
        for state in self.states:
            window = state.window
            if now >= window.bounds.end:
                window = state.roll(now)
            consumer = consumer_of(state.key, source)
            count = window.counts.get(consumer)
            if count is None:
                count = self._tracker.track(window, consumer, state.field)
            elif count.others + count.mine >= state.limit:
                count.touched = True
                if spent is None or window.bounds.end > spent.window.bounds.end:
                    spent = state
            found.append((state, window, count))
        if spent is not None:
            spent.refusals.inc()
            headers = [(RETRY_AFTER, str(math.ceil(spent.window.bounds.end - now)).encode())]
            for state, window, count in found:
                _describe(headers, state, window, count, now)
            return Spent(spent.window.refusal, headers)
        for state, window, count in found:
            if count is not None:
                count.mine += 1
            _describe(added, state, window, count, now)
        return None


def _describe(
    headers: list[Header], state: QuotaState, window: Window, count: Count | None, now: float
) -> None:
    """One quota's ``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers)."""
    headers.append(window.policy)
    used = count.others + count.mine if count is not None else 0
    remaining = state.limit - used if used < state.limit else 0
    reset = math.ceil(window.bounds.end - now)
    headers.append((REMAINING, f'"{state.name}";r={remaining};t={reset}'.encode()))
