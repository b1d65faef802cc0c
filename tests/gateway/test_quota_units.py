"""Quotas in process: calendar windows, the hot-path judgement, and the keeper on real Redis.

The clock is injected, so a window's end is crossed by moving it, not by
waiting for midnight. Two keepers on one Redis are two replicas: what one
admitted reaches the other's judgement at their next flushes, and a flush
sent twice counts nothing twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from pydantic import ValidationError
from redis.crc import key_slot

from gatehouse_common.jwt import VerifiedToken
from gatehouse_gateway.balancing.cursor import LocalCursor
from gatehouse_gateway.config.loader import ConfigError, parse_config
from gatehouse_gateway.config.quota import QuotaConfig
from gatehouse_gateway.config.schema import EdgeConfig
from gatehouse_gateway.edge.head import HeadRules, RequestHead
from gatehouse_gateway.policy.quota import QuotaKeeper, RouteQuotas, Spent
from gatehouse_gateway.policy.quota.metrics import QUOTA_UNTRACKED
from gatehouse_gateway.policy.quota.window import window_at
from gatehouse_gateway.routing import Route, build_table


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, start: str) -> None:
        self.now = at(start)

    def __call__(self) -> float:
        return self.now


def document(*quotas: dict[str, Any]) -> dict[str, Any]:
    return {"routes": [{"name": "app", "backends": [{"url": "http://x"}], "quotas": list(quotas)}]}


def routes(*quotas: dict[str, Any]) -> list[Route]:
    config = parse_config(document(*quotas), source="test.yaml").config
    return build_table(config, LocalCursor()).routes


HEAD: RequestHead = HeadRules(EdgeConfig()).read(
    {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/x",
        "raw_path": b"/x",
        "query_string": b"",
        "headers": [(b"host", b"app.test")],
        "client": ("198.51.100.7", 40000),
        "server": ("127.0.0.1", 8080),
    }
)


def who(subject: str) -> VerifiedToken:
    return VerifiedToken(subject, None, (), 0.0, {"sub": subject})


def ask(route: Route, subject: str) -> tuple[Spent | None, dict[bytes, list[bytes]]]:
    """One request of ``subject``: the refusal or None, and the headers either answer got."""
    quotas = route.quotas
    if not isinstance(quotas, RouteQuotas):
        raise AssertionError("the route has no quotas")
    added: list[tuple[bytes, bytes]] = []
    spent = quotas.admit(who(subject), HEAD, b"198.51.100.7", added)
    headers: dict[bytes, list[bytes]] = {}
    for name, value in spent.headers if spent is not None else added:
        headers.setdefault(name, []).append(value)
    return spent, headers


Keepers = Callable[..., QuotaKeeper]


@pytest.fixture
async def keepers(redis_url: str, redis_prefix: str) -> AsyncIterator[Keepers]:
    made: list[QuotaKeeper] = []

    def make(clock: Clock, *, url: str | None = redis_url, max_consumers: int = 99) -> QuotaKeeper:
        keeper = QuotaKeeper(
            url,
            prefix=redis_prefix,
            timeout=1.0,
            flush_interval=3600,  # the tests flush by hand
            max_consumers=max_consumers,
            clock=clock,
        )
        made.append(keeper)
        return keeper

    yield make
    for keeper in made:
        await keeper.close()


def hash_total(redis_url: str, key: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(int(v) for v in client.hvals(key))
    finally:
        client.close()


# ---- windows and config ------------------------------------------------------


@pytest.mark.unit
def test_calendar_windows_in_utc() -> None:
    day = window_at("day", at("2026-12-31T23:59:59"))
    assert (day.id, day.seconds) == ("2026-12-31", 86400)
    assert day.end == at("2027-01-01T00:00:00")
    december = window_at("month", at("2026-12-31T23:59:59"))
    assert (december.id, december.end) == ("2026-12", at("2027-01-01T00:00:00"))
    assert window_at("month", at("2028-02-10T00:00:00")).seconds == 29 * 86400  # leap year
    assert window_at("month", at("2027-01-01T00:00:00")).id == "2027-01"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("quotas", "expected"),
    [
        ([{"name": "d", "limit": 0, "period": "day"}], "greater than or equal to 1"),
        ([{"name": "d", "limit": -5, "period": "day"}], "greater than or equal to 1"),
        ([{"name": "d", "limit": 10**13, "period": "day"}], "less than or equal to"),
        ([{"name": "d", "limit": 5, "period": "week"}], "Input should be 'day' or 'month'"),
        ([{"name": "d", "limit": 5}], "period: Field required"),
        (
            [
                {"name": "d", "limit": 5, "period": "day"},
                {"name": "d", "limit": 9, "period": "month"},
            ],
            "quota names must be unique within a route; repeated: ['d']",
        ),
        ([{"name": 'a"b', "limit": 5, "period": "day"}], "should match pattern"),
        ([{"name": "a{b}", "limit": 5, "period": "day"}], "should match pattern"),
        ([{"name": "d", "limit": 5, "period": "day", "burst": 3}], "Extra inputs"),
        ([{"name": "d", "limit": 5, "period": "day", "key": {"by": "claim"}}], "needs a name"),
        ([{"name": "d", "limit": "lots", "period": "day"}], "valid integer"),
        ([{"name": f"q{i}", "limit": 5, "period": "day"} for i in range(9)], "at most 8"),
    ],
)
def test_hostile_quota_config_is_refused(quotas: list[dict[str, Any]], expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(document(*quotas), source="test.yaml")
    assert "routes[0].quotas" in str(error.value)
    assert expected in str(error.value)


@pytest.mark.unit
def test_quota_defaults_to_the_subject() -> None:
    quota = QuotaConfig(name="daily", limit=10, period="day")
    assert quota.key.by == "subject"
    with pytest.raises(ValidationError):
        QuotaConfig(name="daily", limit=True, period="day", unknown=1)  # type: ignore[call-arg]


# ---- judgement and headers (no Redis) ------------------------------------------


async def test_spent_quota_refuses_with_retry_after_and_headers(keepers: Keepers) -> None:
    clock = Clock("2026-12-01T12:00:00")
    route = routes({"name": "daily", "limit": 3, "period": "day"})[0]
    keepers(clock, url=None).compile([route])
    for remaining in (2, 1, 0):
        spent, headers = ask(route, "ada")
        assert spent is None
        assert headers[b"ratelimit-policy"] == [b'"daily";q=3;w=86400']
        assert headers[b"ratelimit"] == [f'"daily";r={remaining};t=43200'.encode()]
    spent, headers = ask(route, "ada")
    assert spent is not None
    assert headers[b"retry-after"] == [b"43200"]
    assert headers[b"ratelimit"] == [b'"daily";r=0;t=43200']
    assert b'"error":"quota_exceeded"' in spent.body
    assert b'"resets_at":"2026-12-02T00:00:00Z"' in spent.body
    assert ask(route, "bob")[0] is None  # another consumer has its own count


async def test_a_refusal_counts_against_no_other_quota(keepers: Keepers) -> None:
    clock = Clock("2026-12-01T12:00:00")
    route = routes(
        {"name": "per-user", "limit": 1, "period": "day"},
        {"name": "shared", "limit": 100, "period": "month", "key": {"by": "route"}},
    )[0]
    keepers(clock, url=None).compile([route])
    assert ask(route, "ada")[0] is None
    for _ in range(5):
        assert ask(route, "ada")[0] is not None
    _, headers = ask(route, "bob")
    assert headers[b"ratelimit"][1] == b'"shared";r=98;t=2635200'


# ---- the keeper on real Redis ------------------------------------------------------


async def test_window_rollover_starts_a_new_count(
    keepers: Keepers, redis_url: str, redis_prefix: str
) -> None:
    clock = Clock("2026-12-31T23:59:58")
    route = routes({"name": "daily", "limit": 2, "period": "day"})[0]
    keeper = keepers(clock)
    keeper.compile([route])
    await keeper.start()
    assert ask(route, "ada")[0] is None
    assert ask(route, "ada")[0] is None
    spent, headers = ask(route, "ada")
    assert spent is not None and headers[b"retry-after"] == [b"2"]
    await keeper.flush()
    old = f"{redis_prefix}quota:{{app/daily/2026-12-31/ada}}"
    assert hash_total(redis_url, old) == 2

    clock.now = at("2027-01-01T00:00:00")
    spent, headers = ask(route, "ada")
    assert spent is None
    assert headers[b"ratelimit"] == [b'"daily";r=1;t=86400']
    await keeper.flush()
    assert hash_total(redis_url, f"{redis_prefix}quota:{{app/daily/2027-01-01/ada}}") == 1
    assert hash_total(redis_url, old) == 2
    client = redis.Redis.from_url(redis_url)
    try:
        # kept a day past its window, then Redis drops it
        assert client.expiretime(old) == int(at("2027-01-02T00:00:00"))
    finally:
        client.close()
    assert keeper.tracked == 1  # the ended window, all in Redis, is let go


async def test_two_replicas_share_the_count_at_their_flushes(
    keepers: Keepers, redis_url: str, redis_prefix: str
) -> None:
    clock = Clock("2026-12-01T08:00:00")
    quota = {"name": "daily", "limit": 3, "period": "day"}
    route_a, route_b = routes(quota)[0], routes(quota)[0]
    a, b = keepers(clock), keepers(clock)
    a.compile([route_a])
    b.compile([route_b])
    await a.start()
    await b.start()
    assert ask(route_a, "ada")[0] is None
    assert ask(route_a, "ada")[0] is None
    assert ask(route_b, "ada")[0] is None
    await a.flush()
    await b.flush()
    await a.flush()  # a reads b's request back
    assert ask(route_a, "ada")[0] is not None
    assert ask(route_b, "ada")[0] is not None
    key = f"{redis_prefix}quota:{{app/daily/2026-12-01/ada}}"
    assert hash_total(redis_url, key) == 3
    for _ in range(3):  # flushes repeated (as after a lost answer) count nothing twice
        await a.flush()
        await b.flush()
    assert hash_total(redis_url, key) == 3

    overview = await a.overview([route_a], top=5)
    assert overview[0]["source"] == "redis"
    assert overview[0]["top"] == [
        {"consumer": "ada", "used": 3, "remaining": 0, "share": 1.0, "spent": True}
    ]
    assert [c["consumer"] for c in overview[0]["near"]] == ["ada"]
    assert overview[0]["window"]["id"] == "2026-12-01"


async def test_reload_keeps_counts_and_applies_a_new_limit(keepers: Keepers) -> None:
    clock = Clock("2026-12-01T08:00:00")
    keeper = keepers(clock, url=None)
    first = routes({"name": "daily", "limit": 5, "period": "day"})[0]
    keeper.compile([first])
    for _ in range(3):
        assert ask(first, "ada")[0] is None
    second = routes({"name": "daily", "limit": 3, "period": "day"})[0]
    keeper.compile([second])
    spent, headers = ask(second, "ada")
    assert spent is not None
    assert headers[b"ratelimit-policy"] == [b'"daily";q=3;w=86400']
    third = routes({"name": "daily", "limit": 3, "period": "day", "key": {"by": "route"}})[0]
    keeper.compile([third])
    assert ask(third, "ada")[0] is None  # another key: another count
    await keeper.flush()  # without Redis the dropped quota's counts go at once
    assert keeper.tracked == 1


async def test_consumers_past_the_cap_pass_uncounted(keepers: Keepers) -> None:
    clock = Clock("2026-12-01T08:00:00")
    keeper = keepers(clock, url=None, max_consumers=2)
    route = routes({"name": "daily", "limit": 1, "period": "day"})[0]
    keeper.compile([route])
    before = QUOTA_UNTRACKED._value.get()
    assert ask(route, "a")[0] is None
    assert ask(route, "b")[0] is None
    assert ask(route, "c")[0] is None
    assert ask(route, "c")[0] is None  # uncounted, so never refused
    assert QUOTA_UNTRACKED._value.get() - before == 2
    assert ask(route, "a")[0] is not None  # the tracked ones still are


@pytest.mark.unit
def test_a_consumer_value_cannot_choose_the_cluster_slot() -> None:
    """Count keys carry their own hash tag: a header value with braces in it does not
    become the tag, so it cannot gather every quota's keys into one slot."""
    clock = Clock("2026-12-01T08:00:00")
    keeper = QuotaKeeper(
        None, prefix="p:", timeout=1, flush_interval=1, max_consumers=9, clock=clock
    )
    route = routes(
        {"name": "one", "limit": 5, "period": "day"},
        {"name": "two", "limit": 5, "period": "day"},
    )[0]
    keeper.compile([route])
    quotas = route.quotas
    assert quotas is not None
    keys = [state.window.key("{victim}").encode() for state in quotas.states]
    assert keys[0] == b"p:quota:{app/one/2026-12-01/{victim}}"
    assert key_slot(keys[0]) != key_slot(b"victim")
    assert key_slot(keys[0]) != key_slot(keys[1])


async def test_a_count_redis_lost_is_written_again(
    keepers: Keepers, redis_url: str, redis_prefix: str
) -> None:
    clock = Clock("2026-12-01T08:00:00")
    route = routes({"name": "daily", "limit": 10, "period": "day"})[0]
    keeper = keepers(clock)
    keeper.compile([route])
    await keeper.start()
    for _ in range(3):
        assert ask(route, "ada")[0] is None
    await keeper.flush()
    key = f"{redis_prefix}quota:{{app/daily/2026-12-01/ada}}"
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(key)  # a Redis restarted without its data
        await keeper.flush()  # ada unchanged: read only, and the loss shows
        await keeper.flush()
        assert hash_total(redis_url, key) == 3
    finally:
        client.close()
    _, headers = ask(route, "ada")
    assert headers[b"ratelimit"] == [b'"daily";r=6;t=57600']
