"""Faults 2 and 3: Redis down, PostgreSQL down, under a steady load through the gateways."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import httpx
import pytest
import yaml

from chaos import faults, profiles
from chaos.front import open_front
from chaos.load import BackgroundLoad, LoadResult, Outcome, Sender, SenderFactory
from chaos.profiles import Profile
from chaos.report import FaultReportFactory, seconds
from chaos.stack import AUTH_MAX_EJECTION, ChaosStack, gateway_config, gateway_process

CURSOR_KEY = "gatehouse:gateway:cursor:chaos"
# The gateway retries Redis every redis_retry_interval (1 s by default).
REDIS_BACK_BOUND = 1.0 + 3.0
# The auth service waits db_connect_timeout (3 s) for a connection before its 503.
AUTH_ANSWER_BOUND = 3.0 + 3.0
# After PostgreSQL is back: the pool's first connections may still fail, and
# the gateway may hold the auth route's only backend ejected for up to
# AUTH_MAX_EJECTION after the 503s it answered during the outage.
DB_RECOVERY = 1.0 + AUTH_MAX_EJECTION
PASSWORD = "chaos-pass-1"


@pytest.mark.parametrize("how", ["stop", "freeze"])
def test_redis_down(
    stack: ChaosStack,
    profile: Profile,
    fault_report: FaultReportFactory,
    how: Literal["stop", "freeze"],
) -> None:
    verb = "stopped" if how == "stop" else "frozen (SIGSTOP)"
    report = fault_report(f"Redis {verb} {profile.outage:g}s")
    token = stack.user_token()
    fallbacks_before = stack.metric("gateway_cursor_fallbacks_total")
    duration = profile.settle + profile.outage + REDIS_BACK_BOUND + profile.settle
    with BackgroundLoad(stack.chaos_load(token), rate=profile.rate, duration=duration) as load:
        load.sleep_until(profile.settle)
        with faults.redis_down(stack.redis, how):
            down_at = load.elapsed()
            load.sleep_until(down_at + profile.outage)
            fallbacks_during = stack.metric("gateway_cursor_fallbacks_total")
            fallback_state = stack.metric("gateway_cursor_state", {"state": "fallback"})
        back = faults.wait_until(
            lambda: stack.metric("gateway_cursor_state", {"state": "redis"}) == [1.0, 1.0],
            timeout=REDIS_BACK_BOUND,
        )
        client = stack.redis.client()
        cursor_before = int(client.get(CURSOR_KEY) or 0)
        load.sleep_until(load.elapsed() + profile.settle)
        cursor_after = int(client.get(CURSOR_KEY) or 0)
        client.close()
        load.stop()
    result = report.load(load.result)

    report.check("zero failed proxied requests", result.failed == 0, result.describe_failures())
    rise = [int(d - b) for d, b in zip(fallbacks_during, fallbacks_before, strict=True)]
    report.check(
        f"fallback metric rose on both gateways (+{rise[0]}, +{rise[1]} picks)",
        all(d > b for d, b in zip(fallbacks_during, fallbacks_before, strict=True))
        and fallback_state == [1.0, 1.0],
        f"fallbacks {fallbacks_before} -> {fallbacks_during}; fallback state {fallback_state}",
    )
    report.check(
        f"cursor back on Redis in {seconds(back)} (bound {REDIS_BACK_BOUND:g}s),"
        f" key +{cursor_after - cursor_before}",
        back is not None and cursor_after > cursor_before,
        f"back after {back}s; {CURSOR_KEY} {cursor_before} -> {cursor_after}",
    )
    report.verdict()


def _account_traffic(bases: list[str], run: str, login_email: str) -> SenderFactory:
    """Even requests sign up a new account ``<run><index>``, odd ones log in."""

    @asynccontextmanager
    async def factory() -> AsyncIterator[Sender]:
        async with open_front(bases, timeout=30.0) as front:

            async def send(index: int) -> Outcome:
                if index % 2:
                    body = {"email": login_email, "password": PASSWORD}
                    return (await front.request("POST", "/login", json=body)).outcome("login")
                name = f"{run}{index}"
                body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
                reply = await front.request("POST", "/account", json=body)
                return reply.outcome(f"signup:{name}")

            yield send

    return factory


def _existing_usernames(stack: ChaosStack, run: str) -> set[str]:
    """Every account whose name starts with ``run``, read back through the admin API."""
    found: set[str] = set()
    with stack.client(headers={"Authorization": f"Bearer {stack.admin_token()}"}) as client:
        for offset in range(0, 100_000, 100):
            page = client.get("/accounts", params={"search": run, "limit": 100, "offset": offset})
            page.raise_for_status()
            items = page.json()["items"]
            found.update(item["username"] for item in items)
            if len(items) < 100:
                break
    return found


def _expected(outcome: Outcome) -> bool:
    ok = 201 if (outcome.label or "").startswith("signup:") else 200
    return outcome.status == ok or (outcome.status == 503 and outcome.detail != "not-json")


def test_postgres_down(
    stack: ChaosStack, profile: Profile, fault_report: FaultReportFactory
) -> None:
    report = fault_report(f"PostgreSQL stopped {profile.outage:g}s")
    run = f"pg{secrets.token_hex(3)}"
    login_name = f"{run}login"
    created = stack.signup(login_name, PASSWORD)
    assert created.status_code == 201, created.text
    token = stack.token(f"{login_name}@example.com", PASSWORD)
    duration = profile.settle + profile.outage + DB_RECOVERY + profile.settle
    accounts = BackgroundLoad(
        _account_traffic(stack.gateway_urls, run, f"{login_name}@example.com"),
        rate=profile.signup_rate,
        duration=duration,
        ok_statuses=frozenset({200, 201, 503}),
    )
    with (
        BackgroundLoad(stack.chaos_load(token), rate=profile.rate, duration=duration) as load,
        accounts,
    ):
        load.sleep_until(profile.settle)
        with faults.postgres_down(stack.postgres):
            down_at = accounts.elapsed()
            load.sleep_until(load.elapsed() + profile.outage)
            up_at = accounts.elapsed()
    result = report.load(load.result)
    traffic: LoadResult | None = accounts.result
    assert traffic is not None
    report.load(traffic)

    report.check("proxied GETs unaffected", result.failed == 0, result.describe_failures())
    wrong = [o for o in traffic.outcomes if not _expected(o)]
    report.check(
        "signups/logins: 201/200 or 503 JSON, no 500",
        not wrong,
        ", ".join(f"{o.label} {o.status or o.error} {o.detail}" for o in wrong[:5]),
    )
    slowest = max((o.latency for o in traffic.outcomes), default=0.0)
    report.check(
        f"slowest answer {slowest:.2f}s (bound {AUTH_ANSWER_BOUND:g}s, no hang)",
        slowest <= AUTH_ANSWER_BOUND,
        f"slowest {slowest:.2f}s",
    )
    during = [o for o in traffic.window(down_at + 0.2, up_at) if o.done_at < up_at]
    report.check(
        f"all {len(during)} sent during the outage got 503",
        bool(during) and all(o.status == 503 for o in during),
        str(LoadResult(during).statuses()),
    )
    after = traffic.window(up_at + DB_RECOVERY)
    report.check(
        f"all {len(after)} sent from {DB_RECOVERY:g}s after restart succeeded",
        bool(after) and all(o.status in (200, 201) for o in after),
        str(Counter((o.status, o.detail) for o in after)),
    )
    acknowledged = {
        o.label.removeprefix("signup:")
        for o in traffic.outcomes
        if o.status == 201 and o.label is not None
    }
    try:
        missing = acknowledged - _existing_usernames(stack, run)
    except httpx.HTTPError as exc:
        missing = {f"(could not list: {exc!r})"}
    report.check(
        f"all {len(acknowledged)} accounts acknowledged with 201 exist",
        bool(acknowledged) and not missing,
        f"missing: {sorted(missing)[:5]}",
    )
    report.verdict()


@pytest.mark.skipif(
    profiles.current().name != "full",
    reason="full profile only (make chaos), for time: tests/chaos/README.md",
)
def test_auth_route_recovery_with_the_demo_ejection_defaults(
    stack: ChaosStack, profile: Profile, fault_report: FaultReportFactory
) -> None:
    """With the demo's passive-health defaults (5 s ejection doubling up to 60 s)
    the auth route's only backend is ejected during a database outage (its 503s
    count as failures); panic mode still sends it traffic, so signups and logins
    succeed as soon as the database is back, not when the ejection expires."""
    report = fault_report(f"PostgreSQL stopped {profile.outage:g}s, demo ejection defaults")
    run = f"dm{secrets.token_hex(3)}"
    login_name = f"{run}login"
    assert stack.signup(login_name, PASSWORD).status_code == 201
    config = gateway_config(
        stack.auth.url,
        [b.url for b in stack.backends],
        stack.lingering.url,
        demo_auth_ejection=True,
    )
    config_path = stack.workdir / "gateway-demo-ejection.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    gateway = gateway_process("chaos-gateway-demo-ejection", config_path, stack.redis.redis_url)
    wait_after = 20.0
    with gateway:
        traffic = BackgroundLoad(
            _account_traffic([gateway.url], run, f"{login_name}@example.com"),
            rate=profile.signup_rate,
            duration=profile.settle + profile.outage + wait_after,
            ok_statuses=frozenset({200, 201, 503}),
        )
        with traffic:
            traffic.sleep_until(profile.settle)
            with faults.postgres_down(stack.postgres):
                traffic.sleep_until(traffic.elapsed() + profile.outage)
            up_at = traffic.elapsed()
    result = report.load(traffic.result) if traffic.result else None
    assert result is not None
    first_ok = min(
        (o.sent_at for o in result.window(up_at) if o.status in (200, 201)), default=None
    )
    recovery = None if first_ok is None else first_ok - up_at
    report.check(
        f"signups/logins succeed again {seconds(recovery)} after the restart"
        f" (bound {DB_RECOVERY:g}s)",
        recovery is not None and recovery <= DB_RECOVERY,
        str(Counter((o.status, o.detail) for o in result.window(up_at))),
    )
    report.verdict()
