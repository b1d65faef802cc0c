"""Backend groups: the config that declares them and the route table built from it.

A route's own backends are the group ``primary``; more groups add backends
that health checks, drains and the operator view cover like the primary's,
and whose state a reload keeps (keyed by route and URL, whichever group).
"""

from __future__ import annotations

from typing import Any

import pytest

from gatehouse_gateway.balancing import LocalCursor, RoundRobin
from gatehouse_gateway.config.loader import ConfigError, parse_config
from gatehouse_gateway.routing import RouteTable, build_table

pytestmark = pytest.mark.unit

A, B, C, D = (f"http://127.0.0.1:{port}" for port in (9101, 9102, 9103, 9104))


def _route(**extra: Any) -> dict[str, Any]:
    return {"name": "app", "backends": [{"url": A}, {"url": B}], **extra}


def _canary(*urls: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"name": "canary", "backends": [{"url": u} for u in urls or (C,)], **extra}]


def _table(route: dict[str, Any], previous: RouteTable | None = None) -> RouteTable:
    loaded = parse_config({"routes": [route]})
    return build_table(loaded.config, LocalCursor(), previous)


def test_groups_are_built_primary_first_and_every_backend_is_the_routes() -> None:
    table = _table(_route(groups=_canary(C, D, strategy="random")))
    route = table.routes[0]
    assert list(route.groups) == ["primary", "canary"]
    assert [b.base_url for b in route.primary.backends] == [A, B]
    assert [b.base_url for b in route.groups["canary"].backends] == [C, D]
    # checks, drains, history and the state view walk route.backends
    assert [b.base_url for b in route.backends] == [A, B, C, D]
    assert route.balancer is route.primary.balancer
    assert route.groups["canary"].strategy == "random"
    assert route.primary.strategy == "round_robin"
    # the primary keeps the route's cursor key: its round robin carries on after an upgrade
    assert isinstance(route.primary.balancer, RoundRobin)
    assert route.primary.balancer.key == "app"


def test_a_group_round_robins_on_a_cursor_of_its_own() -> None:
    route = _table(_route(groups=_canary(C, D))).routes[0]
    balancer = route.groups["canary"].balancer
    assert isinstance(balancer, RoundRobin) and balancer.key == "app/canary"


async def test_a_group_balancer_picks_only_its_own_backends() -> None:
    route = _table(_route(groups=_canary(C, D))).routes[0]
    balancer = route.groups["canary"].balancer

    async def picks(count: int) -> set[str | None]:
        return {getattr(await balancer.pick(), "base_url", None) for _ in range(count)}

    assert await picks(8) == {C, D}
    route.backends[2].drained = True  # C, drained like any backend of the route
    assert await picks(4) == {D}


def test_backend_state_survives_a_reload_whichever_group_it_moves_to() -> None:
    first = _table(_route(groups=_canary(C)))
    canary_state = first.routes[0].groups["canary"].backends[0]
    canary_state.drained = True
    canary_state.consecutive_failures = 2
    # C moves to primary, A to a new group: states follow the URL, not the group
    second = _table(
        {"name": "app", "backends": [{"url": C}], "groups": _canary(A, B)},
        previous=first,
    )
    moved = second.routes[0].primary.backends[0]
    assert moved is canary_state and moved.drained and moved.consecutive_failures == 2
    assert second.routes[0].groups["canary"].backends[0] is first.routes[0].primary.backends[0]


def test_a_route_without_groups_is_its_primary_alone() -> None:
    route = _table(_route()).routes[0]
    assert list(route.groups) == ["primary"]
    assert route.backends == route.primary.backends


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (_route(groups=[{"name": "primary", "backends": [{"url": C}]}]), "reserved"),
        (_route(groups=_canary(C) + _canary(D)), "repeated: ['canary']"),
        (_route(groups=_canary(A)), "listed more than once"),
        (_route(groups=_canary(C, C)), "listed more than once"),
        (_route(groups=[{"name": "canary", "backends": []}]), "at least 1 item"),
        (_route(groups=[{"name": "can ary", "backends": [{"url": C}]}]), "should match pattern"),
        (_route(groups=_canary(C, strategy="fastest")), "groups[0].strategy"),
        (_route(groups=[{"name": "canary", "backends": [{"url": C}], "x": 1}]), "Extra inputs"),
        (
            _route(
                groups=[
                    {"name": f"g{i}", "backends": [{"url": f"http://127.0.0.1:{9200 + i}"}]}
                    for i in range(16)
                ]
            ),
            "at most 16 groups",
        ),
    ],
)
def test_bad_groups_are_refused_naming_the_problem(route: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"routes": [route]})
    assert expected in str(error.value)
