"""The split, in process: rules before weights, cookies, sticky points, runtime weights.

The end-to-end behaviour (real gateway, real backends) is in test_canary.py;
these pin the parts a sample of requests cannot show exactly: rule order,
which cookie of several counts, that a sticky consumer keeps its group when
the canary grows, and the config a split refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from gatehouse_common.jwt import VerifiedToken
from gatehouse_gateway.balancing import LocalCursor
from gatehouse_gateway.canary.split import Splitter, sticky_point
from gatehouse_gateway.canary.weights import BadOverride, parse_record
from gatehouse_gateway.config.loader import ConfigError, parse_config
from gatehouse_gateway.config.schema import EdgeConfig
from gatehouse_gateway.edge.head import HeadRules, RequestHead
from gatehouse_gateway.routing import Route, build_table

pytestmark = pytest.mark.unit

JWKS = "http://127.0.0.1:1/jwks.json"


@dataclass
class Request:
    head: RequestHead
    client: bytes
    identity: VerifiedToken | None = None


def request(*headers: tuple[bytes, bytes], subject: str | None = None) -> Request:
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "headers": [(b"host", b"app.test"), *headers],
        "client": ("198.51.100.7", 40000),
    }
    rules = HeadRules(EdgeConfig())
    head = rules.read(scope)
    identity = VerifiedToken(subject, None, (), 0.0, {"sub": subject}) if subject else None
    return Request(head, rules.client_address(head), identity)


def route_with(split: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "app",
        "backends": [{"url": "http://127.0.0.1:9101"}],
        "groups": [
            {"name": "canary", "backends": [{"url": "http://127.0.0.1:9102"}]},
            {"name": "blue", "backends": [{"url": "http://127.0.0.1:9103"}]},
        ],
        **extra,
    }
    if split is not None:
        document["split"] = split
    return document


def built(split: dict[str, Any] | None, **extra: Any) -> Route:
    config: dict[str, Any] = {"routes": [route_with(split, **extra)]}
    if extra.get("auth") == "required":
        config["auth"] = {"jwks_url": JWKS}
    return build_table(parse_config(config).config, LocalCursor()).routes[0]


def splitter(route: Route) -> Splitter:
    assert route.split is not None
    return route.split


def chosen(route: Route, *headers: tuple[bytes, bytes]) -> str:
    return splitter(route).choose(request(*headers)).name


RULES = {
    "rules": [
        {"header": "X-Canary", "equals": "1", "group": "canary"},
        {"cookie": "beta", "equals": "1", "group": "blue"},
        {"header": "x-blue", "group": "blue"},
    ]
}


def test_rules_match_in_order_and_the_rest_go_by_weight() -> None:
    route = built(RULES)
    assert chosen(route) == "primary"  # no weights: everything unmatched to primary
    assert chosen(route, (b"x-canary", b"1")) == "canary"
    assert chosen(route, (b"x-canary", b" 1 ")) == "canary"  # surrounding spaces are not the value
    assert chosen(route, (b"x-canary", b"0")) == "primary"
    assert chosen(route, (b"x-canary", b"11")) == "primary"
    # a header twice: either copy matching counts
    assert chosen(route, (b"x-canary", b"0"), (b"x-canary", b"1")) == "canary"
    # present, any value
    assert chosen(route, (b"x-blue", b"")) == "blue"
    # the first rule wins when several match
    assert chosen(route, (b"cookie", b"beta=1"), (b"x-canary", b"1")) == "canary"
    # an underscore twin of the header is dropped at the edge, never matched
    assert chosen(route, (b"x_canary", b"1")) == "primary"


def test_cookies_are_read_from_every_cookie_header_by_exact_name_and_value() -> None:
    route = built(RULES)
    assert chosen(route, (b"cookie", b"a=b; beta=1; c=d")) == "blue"
    assert chosen(route, (b"cookie", b"a=b"), (b"cookie", b"beta=1")) == "blue"  # HTTP/2 split
    assert chosen(route, (b"cookie", b"beta=10")) == "primary"
    assert chosen(route, (b"cookie", b"xbeta=1")) == "primary"
    assert chosen(route, (b"cookie", b"Beta=1")) == "primary"
    # the first cookie of a name counts, as servers read it
    assert chosen(route, (b"cookie", b"beta=0; beta=1")) == "primary"
    assert chosen(route, (b"x-other", b"beta=1")) == "primary"


def test_weights_split_the_unmatched_and_zero_weight_groups_get_nothing() -> None:
    route = built({"weights": {"primary": 3, "canary": 1}})
    counts = {"primary": 0, "canary": 0, "blue": 0}
    for _ in range(4000):
        counts[chosen(route)] += 1
    assert counts["blue"] == 0
    assert 800 < counts["canary"] < 1200  # 1000 expected; > 6 standard deviations either side


def test_runtime_weights_override_until_reset_and_unusable_ones_are_refused() -> None:
    split = splitter(built({"weights": {"primary": 1}}))
    assert split.set_weights({"canary": 5})
    assert split.weights == {"primary": 0, "canary": 5, "blue": 0}
    assert {chosen_group(split) for _ in range(50)} == {"canary"}
    # names the route lacks are ignored; all-zero for this route keeps the file's
    assert not split.set_weights({"gone": 5})
    assert split.weights == split.file_weights == {"primary": 1, "canary": 0, "blue": 0}
    assert split.set_weights(None) and split.weights == split.file_weights


def chosen_group(split: Splitter) -> str:
    return split.choose(request()).name


def test_a_sticky_consumer_stays_and_a_growing_canary_only_gains_consumers() -> None:
    route = built(
        {"weights": {"primary": 90, "canary": 10}, "sticky": {"by": "subject"}}, auth="required"
    )
    split = splitter(route)
    subjects = [f"user-{n}" for n in range(400)]

    def groups() -> dict[str, str]:
        return {s: split.choose(request(subject=s)).name for s in subjects}

    before = groups()
    assert before == groups()  # stable
    on_canary = {s for s, g in before.items() if g == "canary"}
    assert 15 < len(on_canary) < 70  # about 40
    split.set_weights({"primary": 80, "canary": 20})
    after = groups()
    grown = {s for s, g in after.items() if g == "canary"}
    assert on_canary < grown  # nobody left the canary, some joined
    # no subject: not sticky (a random pick), never an error
    assert split.choose(request()).name in {"primary", "canary"}


def test_sticky_points_are_stable_and_spread() -> None:
    # the same on every replica and process: no per-process hash seed
    assert sticky_point("app", "user-1", 100) == sticky_point("app", "user-1", 100)
    # pinned: changing the hash would move every sticky consumer on upgrade
    assert [sticky_point("app", f"user-{n}", 100) for n in range(4)] == [91, 0, 11, 70]
    points = [sticky_point("app", f"user-{n}", 10) for n in range(1000)]
    assert all(0 <= p < 10 for p in points)
    assert min(points.count(v) for v in range(10)) > 60


@pytest.mark.parametrize(
    ("split", "extra", "expected"),
    [
        ({"weights": {"primary": 1, "green": 1}}, {}, "unknown groups ['green']"),
        ({"rules": [{"header": "x-a", "group": "green"}]}, {}, "unknown groups ['green']"),
        ({"weights": {"primary": -1, "canary": 2}}, {}, "must be 0..1000000"),
        ({"weights": {"primary": 0, "canary": 0}}, {}, "at least one group"),
        ({"weights": {}}, {}, "at least one group"),
        ({"weights": {"primary": 10_000_000}}, {}, "must be 0..1000000"),
        ({"weights": {"primary": "90"}}, {}, "valid integer"),
        ({"weights": {"primary": 1.5}}, {}, "valid integer"),
        ({"weights": {"primary": True}}, {}, "valid integer"),
        ({"rules": [{"cookie": "beta", "group": "canary"}]}, {}, "needs equals"),
        ({"rules": [{"group": "canary"}]}, {}, "exactly one of header or cookie"),
        (
            {"rules": [{"header": "x-a", "cookie": "b", "equals": "1", "group": "canary"}]},
            {},
            "exactly one of header or cookie",
        ),
        ({"rules": [{"header": "x_canary", "group": "canary"}]}, {}, "not a header name"),
        ({"rules": [{"header": "host", "group": "canary"}]}, {}, "with hosts"),
        ({"rules": [{"header": "x-a", "equals": "", "group": "canary"}]}, {}, "visible ASCII"),
        ({"rules": [{"header": "x-a", "equals": "a\nb", "group": "canary"}]}, {}, "visible"),
        ({"sticky": {"by": "subject"}}, {}, "needs auth: required"),
        ({"sticky": {"by": "route"}}, {}, "one group"),
        ({"unknown": 1}, {}, "Extra inputs"),
    ],
)
def test_bad_splits_are_refused_naming_the_problem(
    split: dict[str, Any], extra: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"routes": [route_with(split, **extra)]})
    assert expected in str(error.value)


def test_a_split_needs_groups() -> None:
    document = {"name": "app", "backends": [{"url": "http://127.0.0.1:9101"}]}
    with pytest.raises(ConfigError, match="split needs groups"):
        parse_config({"routes": [{**document, "split": {"weights": {"primary": 1}}}]})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "not an object"),
        (b'{"weights": {"primary": -5}}', "must be 0.."),
        (b'{"weights": {"primary": 0}}', "at least one"),
        (b'{"weights": {"primary": "1"}}', "whole number"),
        (b'{"weights": {"no pe": 1}}', "not a group name"),
        (b'{"weights": {"a": 1}, "pad": "' + b"x" * 5000 + b'"}', "over 4096 bytes"),
    ],
)
def test_a_stored_override_is_checked_like_the_api_checks_one(raw: bytes, expected: str) -> None:
    with pytest.raises(BadOverride, match=expected):
        parse_record(raw)


def test_a_stored_override_keeps_only_what_it_needs() -> None:
    record = parse_record(b'{"weights": {"canary": 3}, "by": 7, "at": "x", "extra": 1}')
    assert record == {"weights": {"canary": 3}, "by": "unknown", "at": None}
