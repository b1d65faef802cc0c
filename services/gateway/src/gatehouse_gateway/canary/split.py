"""Which backend group a request goes to: match rules, then weights, maybe sticky.

Compiled once per route at config load (:class:`Splitter`); per request it
does a few comparisons and, for a weighted pick, one random number or one
small hash, and nothing on a route without groups (``Route.split`` is None).

Weights are kept as cumulative ends with the groups in config order, primary
first, and a request falls on a point in ``[0, total)``. A sticky consumer's
point is its hash scaled to the total, so it is the same on every replica
and a weight change moves only the consumers whose point changes side: from
primary 90 / canary 10 to 80 / 20, every consumer already on the canary
stays there.

A group with no backend to pick (all down, drained or ejected) sends the
request to ``primary`` instead, counted in ``gateway_group_fallbacks_total``:
a canary that dies must not take its share of the traffic down with it (a
group's ejected backends are not picked in panic, as a route's only group's
are; primary's still are). A retry goes to another backend of the chosen
group first, then to primary's (:class:`GroupRetries`), under the route's
usual retry rules and budget.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right
from collections.abc import Collection
from typing import TYPE_CHECKING

from gatehouse_gateway.balancing.base import Balancer
from gatehouse_gateway.canary.metrics import GROUP_FALLBACKS, GROUP_REQUESTS, GROUP_WEIGHT
from gatehouse_gateway.config.groups import PRIMARY, SplitConfig
from gatehouse_gateway.policy.consumer import MISSING, ConsumerSource, consumer_of

if TYPE_CHECKING:
    from gatehouse_gateway.backend_state import BackendState
    from gatehouse_gateway.routing import BackendGroup

# (header or cookie, lower-case name, value or None for "present", group)
_Rule = tuple[bool, bytes, bytes | None, "BackendGroup"]
# (cumulative ends, their groups, total)
_Table = tuple[tuple[int, ...], tuple["BackendGroup", ...], int]


def _cookies(headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Every ``Cookie`` header's pairs (HTTP/2 may split them); the first of a name wins."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name == b"cookie":
            for pair in value.split(b";"):
                key, equals, item = pair.strip().partition(b"=")
                if equals and key not in found:
                    found[key] = item.strip()
    return found


def _matches(rules: tuple[_Rule, ...], headers: list[tuple[bytes, bytes]]) -> BackendGroup | None:
    cookies: dict[bytes, bytes] | None = None
    for is_cookie, name, wanted, group in rules:
        if is_cookie:
            if cookies is None:
                cookies = _cookies(headers)
            if cookies.get(name) == wanted:
                return group
            continue
        for key, value in headers:
            if key == name and (wanted is None or value.strip() == wanted):
                return group
    return None


def sticky_point(route: str, consumer: str, total: int) -> int:
    """Where ``consumer`` falls in ``[0, total)``: the same on every replica and process."""
    digest = hashlib.blake2b(f"{route}\0{consumer}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") * total) >> 64


class Splitter:
    """One route's split; :meth:`set_weights` swaps its weights at run time."""

    __slots__ = (
        "_counted",
        "_fallbacks",
        "_retries",
        "_rules",
        "_table",
        "config",
        "file_weights",
        "groups",
        "route",
        "sticky",
        "weights",
    )

    def __init__(self, route: str, groups: dict[str, BackendGroup], config: SplitConfig | None):
        self.route = route
        self.groups = groups
        self.config = config
        self._counted = {name: GROUP_REQUESTS.labels(route=route, group=name) for name in groups}
        self._fallbacks = {name: GROUP_FALLBACKS.labels(route=route, group=name) for name in groups}
        primary = groups[PRIMARY].balancer
        self._retries = {
            name: GroupRetries(group.balancer, primary)
            for name, group in groups.items()
            if name != PRIMARY
        }
        rules: list[_Rule] = []
        if config is not None:
            for rule in config.rules:
                value = rule.equals.encode() if rule.equals is not None else None
                if rule.cookie is not None:
                    rules.append((True, rule.cookie.encode(), value, groups[rule.group]))
                else:
                    rules.append((False, (rule.header or "").encode(), value, groups[rule.group]))
        self._rules = tuple(rules)
        self.sticky = config.sticky if config is not None else None
        written = config.weights if config is not None else None
        # the file's weights, every group named (left out: 0); none: all to primary
        self.file_weights = {name: (written or {PRIMARY: 1}).get(name, 0) for name in groups}
        self.weights: dict[str, int] = {}
        self._table: _Table = ((), (), 0)
        self.set_weights(None)

    def set_weights(self, weights: dict[str, int] | None) -> bool:
        """Use ``weights`` (groups the route lacks are ignored), or the file's with None.

        False, and the file's weights, when ``weights`` leaves every group of
        this route at 0 (a runtime override written for an older config).
        """
        chosen = self.file_weights
        usable = True
        if weights is not None:
            mine = {name: max(0, int(weights.get(name, 0))) for name in self.groups}
            if sum(mine.values()) > 0:
                chosen = mine
            else:
                usable = False
        ends: list[int] = []
        picked: list[BackendGroup] = []
        total = 0
        for name, weight in chosen.items():
            if weight > 0:
                total += weight
                ends.append(total)
                picked.append(self.groups[name])
        self.weights = dict(chosen)
        self._table = (tuple(ends), tuple(picked), total)
        for name, weight in chosen.items():
            GROUP_WEIGHT.labels(route=self.route, group=name).set(weight)
        return usable

    def choose(self, request: ConsumerSource) -> BackendGroup:
        """The group ``request`` goes to: the first matching rule, else by weight."""
        if self._rules:
            matched = _matches(self._rules, request.head.headers)
            if matched is not None:
                return matched
        ends, groups, total = self._table
        if len(groups) == 1:
            return groups[0]
        sticky = self.sticky
        if sticky is not None:
            consumer = consumer_of(sticky, request)
            if consumer != MISSING:
                return groups[bisect_right(ends, sticky_point(self.route, consumer, total))]
        return groups[bisect_right(ends, random.random() * total)]

    async def pick(self, request: ConsumerSource) -> tuple[Balancer, BackendState | None]:
        """Where ``request`` goes: its retry targets and first backend (see the module doc)."""
        group = self.choose(request)
        if group.name != PRIMARY:
            backend = await group.balancer.pick()
            if backend is not None:
                self._counted[group.name].inc()
                return self._retries[group.name], backend
            self._fallbacks[group.name].inc()
        primary = self.groups[PRIMARY].balancer
        self._counted[PRIMARY].inc()
        return primary, await primary.pick() or primary.panic_pick()


class GroupRetries(Balancer):
    """A group's balancer whose retries go to primary once the group has none left.

    A canary that refuses connections then costs its share of the traffic a
    retry, not an error, for every request that may be retried.
    """

    def __init__(self, group: Balancer, primary: Balancer) -> None:
        super().__init__([*group.backends, *primary.backends])
        self.group = group
        self.primary = primary

    async def pick(self) -> BackendState | None:
        return await self.group.pick()

    def pick_other(self, tried: Collection[BackendState]) -> BackendState | None:
        return self.group.pick_other(tried) or self.primary.pick_other(tried)
