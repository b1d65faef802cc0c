"""Backend groups and the split between them (canary and header routing), as config.

A route's own ``backends`` are its group ``primary``; ``groups`` names more
(``canary``, ``blue``...), each with its backends and, optionally, its own
strategy. ``split`` says which group a request goes to: its ``rules`` first
(a header equal to a value or merely present, a cookie equal to a value), in
order, the first that matches winning; then ``weights`` between groups,
optionally ``sticky`` per consumer so one user stays on one group. A route
with groups and no ``split`` sends everything to ``primary`` until an
operator sets weights at run time.

Every backend URL appears once across all the groups of a route: a backend's
health, drain and metrics are kept per (route, URL), so one backend in two
groups would be drained from both at once without saying so.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from gatehouse_gateway.config.backend import BackendConfig, Strategy
from gatehouse_gateway.config.consumer import ConsumerKey

if TYPE_CHECKING:
    from gatehouse_gateway.config.schema import RouteConfig

PRIMARY = "primary"
# One group's weight; a route's weights are relative to their sum.
MAX_WEIGHT = 1_000_000
MAX_GROUPS = 16
MAX_RULES = 32
GROUP_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_HEADER_NAME = re.compile(r"^[a-z0-9!#$%&'*+.^`|~-]{1,64}$")  # no "_": the edge drops those
_COOKIE_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
# a value compared byte for byte: visible ASCII and inner spaces only
_VALUE = re.compile(r"^[\x21-\x7e]([\x20-\x7e]{0,1022}[\x21-\x7e])?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GroupConfig(_Strict):
    """A named set of backends of one route, balanced by its own strategy."""

    name: str = Field(pattern=GROUP_NAME_PATTERN)
    backends: list[BackendConfig] = Field(min_length=1)
    # None: the route's strategy
    strategy: Strategy | None = None

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == PRIMARY:
            raise ValueError(f"{PRIMARY!r} is reserved: it names the route's own backends")
        return value


class MatchRule(_Strict):
    """Send requests carrying a header (or a cookie) to ``group``.

    ``header`` with ``equals``: the header's value is exactly that (a request
    with the header twice matches when either copy does); ``header`` alone:
    the header is present. ``cookie`` always takes ``equals``.
    """

    header: str | None = None
    cookie: str | None = None
    equals: str | None = None
    group: str = Field(pattern=GROUP_NAME_PATTERN)

    @field_validator("header")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = value.lower()
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{value!r} is not a header name the gateway passes on")
        if name in ("host", "cookie"):
            raise ValueError(f"match {name!r} with {'cookie:' if name == 'cookie' else 'hosts'}")
        return name

    @field_validator("cookie")
    @classmethod
    def _cookie_name(cls, value: str | None) -> str | None:
        if value is not None and not _COOKIE_NAME.match(value):
            raise ValueError(f"{value!r} is not a cookie name")
        return value

    @field_validator("equals")
    @classmethod
    def _value(cls, value: str | None) -> str | None:
        if value is not None and not _VALUE.match(value):
            raise ValueError("must be 1-1024 visible ASCII characters (inner spaces allowed)")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> MatchRule:
        if (self.header is None) == (self.cookie is None):
            raise ValueError("give exactly one of header or cookie")
        if self.cookie is not None and self.equals is None:
            raise ValueError("a cookie rule needs equals")
        return self


class SplitConfig(_Strict):
    """Which group a request of the route goes to: rules, then weights."""

    rules: list[MatchRule] = Field(default_factory=list, max_length=MAX_RULES)
    # group -> weight; groups left out get 0. None: everything unmatched to primary.
    weights: dict[str, StrictInt] | None = None
    # the same consumer always lands in the same group while the weights stay
    sticky: ConsumerKey | None = None

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        if value is None:
            return None
        check_weights(value)
        return value


def check_weights(weights: dict[str, int]) -> None:
    """Refuse negative, too large or all-zero weights (the operator API shares this)."""
    for group, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise ValueError(f"weight of {group!r} must be a whole number")
        if weight < 0 or weight > MAX_WEIGHT:
            raise ValueError(f"weight of {group!r} must be 0..{MAX_WEIGHT}, not {weight}")
    if not weights or sum(weights.values()) == 0:
        raise ValueError("at least one group needs a weight above 0")


def check_route_groups(route: RouteConfig) -> None:
    """Cross-field checks of ``groups`` and ``split``: unique names and URLs, known groups."""
    groups: list[GroupConfig] = route.groups
    if len(groups) + 1 > MAX_GROUPS:
        raise ValueError(f"at most {MAX_GROUPS} groups per route, primary included")
    names = [group.name for group in groups]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"group names must be unique; repeated: {repeated}")
    where: dict[str, list[str]] = {}
    for name, backends in [(PRIMARY, route.backends), *((g.name, g.backends) for g in groups)]:
        for backend in backends:
            where.setdefault(backend.url, []).append(name)
    for url, owners in where.items():
        if len(owners) > 1:
            raise ValueError(
                f"backend {url} is listed more than once (in {owners}); a backend belongs "
                "to one group, once (use weight instead)"
            )
    split: SplitConfig | None = route.split
    if split is None:
        return
    if not groups:
        raise ValueError("split needs groups besides primary")
    known = {PRIMARY, *names}
    named = [rule.group for rule in split.rules] + list(split.weights or {})
    unknown = sorted({name for name in named if name not in known})
    if unknown:
        raise ValueError(f"split names unknown groups {unknown}; the route has {sorted(known)}")
    sticky = split.sticky
    if sticky is not None:
        if sticky.by == "route":
            raise ValueError("split.sticky by: route would send every request to one group")
        if sticky.by in ("subject", "claim") and route.auth != "required":
            raise ValueError(f"split.sticky by: {sticky.by} needs auth: required on the route")
