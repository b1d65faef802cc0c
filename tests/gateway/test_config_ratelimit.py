"""``rate_limits:`` in the config: what a route may say, and every way it may not."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gatehouse_gateway.config.ratelimit import MAX_LIMITS_PER_ROUTE, RateLimitConfig
from gatehouse_gateway.config.schema import GatewayConfig

pytestmark = pytest.mark.unit


def config(*limits: dict[str, Any], auth: str = "required") -> GatewayConfig:
    route = {
        "name": "app",
        "auth": auth,
        "backends": [{"url": "http://127.0.0.1:9001"}],
        "rate_limits": list(limits),
    }
    return GatewayConfig.model_validate(
        {"auth": {"jwks_url": "http://127.0.0.1:8001/jwks"}, "routes": [route]}
    )


def test_defaults_are_per_subject_per_second_local_fallback_no_headers() -> None:
    (limit,) = config({"name": "per-subject", "rate": 20, "burst": 40}).routes[0].rate_limits
    assert limit.key.by == "subject"
    assert limit.per == "second" and limit.per_second == 20
    assert limit.capacity == 40
    assert limit.on_store_failure == "local"
    assert limit.headers is False
    assert limit.lease_size == 1  # a twentieth of a second's worth


def test_burst_defaults_to_the_rate_and_the_lease_scales_with_it() -> None:
    limit = RateLimitConfig(name="x", rate=10_000)
    assert limit.capacity == 10_000
    assert limit.lease_size == 500
    assert RateLimitConfig(name="x", rate=600, per="minute").per_second == 10
    assert RateLimitConfig(name="x", rate=7200, per="hour").per_second == 2
    # never more than a quarter of the burst, never less than one
    assert RateLimitConfig(name="x", rate=100_000, burst=8).lease_size == 2
    assert RateLimitConfig(name="x", rate=1, per="hour").lease_size == 1


def test_several_limits_on_one_route_each_with_its_key() -> None:
    limits = (
        config(
            {"name": "per-subject", "rate": 10},
            {"name": "per-tenant", "key": {"by": "claim", "name": "tenant"}, "rate": 100},
            {"name": "per-client", "key": {"by": "client_address"}, "rate": 50},
            {"name": "per-key", "key": {"by": "api_key"}, "rate": 5, "per": "minute"},
            {"name": "route", "key": {"by": "route"}, "rate": 1000, "headers": True},
        )
        .routes[0]
        .rate_limits
    )
    assert [limit.key.by for limit in limits] == [
        "subject", "claim", "client_address", "api_key", "route",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("limit", "reason"),
    [
        ({"name": "x", "rate": 0}, "greater than or equal to 1"),
        ({"name": "x", "rate": -5}, "greater than or equal to 1"),
        ({"name": "x", "rate": 2.5}, "whole number"),
        ({"name": "x", "rate": True}, "whole number"),
        ({"name": "x", "rate": "ten"}, "valid integer"),
        ({"name": "x", "rate": 10**9}, "less than or equal to"),
        ({"name": "x", "rate": 10, "burst": 0}, "greater than or equal to 1"),
        ({"name": "x", "rate": 10, "burst": -1}, "greater than or equal to 1"),
        ({"name": "x", "rate": 10, "burst": 10**12}, "less than or equal to"),
        ({"name": "x", "rate": 10, "burst": 5, "lease": 6}, "cannot exceed burst"),
        ({"name": "x", "rate": 10, "lease": 0}, "greater than or equal to 1"),
        ({"name": "x", "rate": 10, "per": "day"}, "'second', 'minute' or 'hour'"),
        ({"name": "x", "rate": 10, "on_store_failure": "maybe"}, "'local', 'open' or 'closed'"),
        ({"name": "x", "rate": 10, "limit": 5}, "Extra inputs are not permitted"),
        ({"name": "x", "rate": 10, "key": {"by": "cookie"}}, "key.by"),
        ({"name": "x", "rate": 10, "key": {"by": "header"}}, "needs a name"),
        ({"name": "x", "rate": 10, "key": {"by": "header", "name": "a b"}}, "not a valid"),
        ({"name": "x", "rate": 10, "key": {"by": "subject", "nmae": "x"}}, "Extra inputs"),
        ({"name": "", "rate": 10}, "name"),
        ({"name": "a b", "rate": 10}, "name"),
        ({"name": '"quoted"', "rate": 10}, "name"),
        ({"rate": 10}, "name"),
        ({"name": "x"}, "rate"),
    ],
)
def test_hostile_limits_are_refused_naming_the_problem(limit: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError) as raised:
        config(limit)
    assert reason in str(raised.value)


def test_duplicate_names_and_too_many_limits_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"repeated: \['same'\]"):
        config({"name": "same", "rate": 1}, {"name": "same", "rate": 2})
    many = [{"name": f"l{i}", "rate": 1} for i in range(MAX_LIMITS_PER_ROUTE + 1)]
    with pytest.raises(ValidationError, match="at most"):
        config(*many)


def test_token_keys_need_a_route_that_verifies_tokens() -> None:
    # without auth every request would be the shared "-" consumer: one bucket for all
    for key in ({"by": "subject"}, {"by": "claim", "name": "tenant"}):
        with pytest.raises(ValidationError, match="needs auth: required"):
            config({"name": "x", "rate": 1, "key": key}, auth="none")
    ok = config({"name": "x", "rate": 1, "key": {"by": "client_address"}}, auth="none")
    assert ok.routes[0].rate_limits[0].key.by == "client_address"
