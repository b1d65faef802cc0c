"""Quotas end to end: gateway processes, fake backends, real Redis.

A spent quota answers 429 ``quota_exceeded`` with ``Retry-After`` and the
RateLimit headers, and allowed answers carry the consumer's usage; the
operator's ``/-/admin/quotas`` lists top consumers and those near their
quota. Two replicas under load share one count: Redis ends up holding
exactly what each admitted, and the quota is overrun by no more than the
requests the replicas admitted in the window the README's bound names.
A Redis taken away (a redis-server of the test's own) changes no answer;
the counts made meanwhile reach Redis once it is back, even after it lost
its data.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis
from gateway.operator_support import ADMIN, bearer, wait_until
from support.databases import REDIS_URL, drop_redis_prefix, unique_redis_prefix
from support.gateway import GatewayProcess, Launcher, gateway_route, metric_value
from support.jwks import KeyServer
from support.processes import ARTIFACTS, ServiceProcess
from support.redis_server import RedisServer

FLUSH = "0.05"


def env(redis_url: str, prefix: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "GATEHOUSE_GATEWAY_REDIS_PREFIX": prefix,
        "GATEHOUSE_GATEWAY_QUOTA_FLUSH_INTERVAL": FLUSH,
        "GATEHOUSE_GATEWAY_REDIS_RETRY_INTERVAL": "0.2",
    }


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def seconds_to_midnight() -> float:
    now = datetime.now(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    return (midnight - now).total_seconds()


@pytest.fixture(autouse=True)
def same_day() -> None:
    """These tests name today's window: one started in the last minute before
    midnight UTC waits for the new day rather than straddle two windows."""
    wait = seconds_to_midnight()
    if wait < 60:
        time.sleep(wait + 0.5)


def hash_fields(client: redis.Redis, key: str) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in client.hgetall(key).items()}


# ---- one gateway, tokens, the operator's view -------------------------------------


@pytest.fixture(scope="module")
def module_prefix() -> Iterator[str]:
    chosen = unique_redis_prefix("quota")
    yield chosen
    drop_redis_prefix(chosen)


@pytest.fixture(scope="module")
def gateway(
    module_launcher: Launcher,
    keys: KeyServer,
    backend_pool: list[ServiceProcess],
    module_prefix: str,
) -> GatewayProcess:
    """Routes ``app`` (the 429 test) and ``board`` (the dashboard test), the same quotas."""
    quotas = [
        {"name": "daily", "limit": 5, "period": "day"},
        {"name": "monthly", "limit": 1000, "period": "month", "key": {"by": "route"}},
    ]
    document = {
        "auth": {"jwks_url": keys.url},
        "routes": [
            gateway_route(backend_pool[:1], auth="required", quotas=quotas),
            gateway_route(
                backend_pool[:1], name="board", hosts=["board.test"], auth="required", quotas=quotas
            ),
        ],
    }
    return module_launcher.gateway(document, env=env(REDIS_URL, module_prefix))


def test_spent_quota_is_refused_with_headers_and_shown_to_the_operator(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    ada = bearer(keys.token(sub="ada"))
    with gateway.client() as client:
        for remaining in (4, 3, 2, 1, 0):
            response = client.get("/x", headers=ada)
            assert response.status_code == 200
            assert response.headers.get_list("ratelimit-policy") == [
                '"daily";q=5;w=86400',
                response.headers.get_list("ratelimit-policy")[1],
            ]
            assert response.headers.get_list("ratelimit-policy")[1].startswith(
                '"monthly";q=1000;w='
            )
            assert response.headers.get_list("ratelimit")[0].startswith(f'"daily";r={remaining};t=')
        refused = client.get("/x", headers=ada)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/json"
        body = refused.json()
        assert body["error"] == "quota_exceeded"
        assert (body["route"], body["quota"]) == ("app", "daily")
        retry_after = int(refused.headers["retry-after"])
        assert abs(retry_after - seconds_to_midnight()) < 5
        assert refused.headers.get_list("ratelimit")[0] == f'"daily";r=0;t={retry_after}'
        # the refused request counted against the route's quota neither
        assert '"monthly";r=995;' in refused.headers.get_list("ratelimit")[1]
        # another subject has its own count
        assert client.get("/x", headers=bearer(keys.token(sub="bob"))).status_code == 200

    admin = bearer(keys.token(roles=["admin"], sub="1"))
    url = gateway.admin_url + ADMIN + "/quotas"

    def listed() -> dict[str, Any] | None:
        quotas = httpx.get(url, headers=admin, timeout=10).json()["quotas"]
        daily = next(q for q in quotas if (q["route"], q["name"]) == ("app", "daily"))
        return daily if daily["top"] and daily["top"][0]["used"] == 5 else None

    wait_until(lambda: listed() is not None, "the flush to reach the top list")
    daily = listed()
    assert daily is not None
    assert daily["source"] == "redis" and daily["window"]["id"] == today()
    assert [(c["consumer"], c["used"], c["spent"]) for c in daily["top"]] == [
        ("ada", 5, True),
        ("bob", 1, False),
    ]
    assert [c["consumer"] for c in daily["near"]] == ["ada"]
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers=bearer(keys.token(sub="2")), timeout=10).status_code == 403
    for bad in ("0", "101", "x"):
        assert httpx.get(url, params={"top": bad}, headers=admin, timeout=10).status_code == 422

    metrics = gateway.metrics()
    assert metric_value(metrics, "gateway_quota_refusals_total", route="app", quota="daily") == 1
    assert metric_value(metrics, "gateway_quota_store_state", state="redis") == 1


@pytest.mark.browser
def test_the_dashboard_shows_top_consumers_and_those_near_their_quota(
    gateway: GatewayProcess, keys: KeyServer
) -> None:
    # imported here: the lowest-bounds unit run collects this file without playwright
    from playwright.sync_api import expect
    from support.browser import Watched, launch_chromium

    with gateway.client(headers={"Host": "board.test"}) as client:
        for subject, count in (("ada", 4), ("bob", 1)):
            for _ in range(count):
                assert client.get("/x", headers=bearer(keys.token(sub=subject))).status_code == 200
    with launch_chromium() as browser:
        context = browser.new_context()
        context.set_default_timeout(10_000)
        watched = Watched(context.new_page())
        page = watched.page
        try:
            page.goto(gateway.admin_url + "/-/dashboard")
            page.locator("summary").click()
            page.locator("#token").fill(keys.token(roles=["admin"], sub="1"))
            page.get_by_role("button", name="Use token").click()

            row = page.locator('tr[data-quota="board/daily"]')
            expect(row.locator("td.top")).to_have_text("ada 4 (80%), bob 1 (20%)")
            expect(row.locator("td.near")).to_have_text("ada 4 (80%)")
            expect(row).to_have_attribute("data-near", "true")
            expect(page.locator('tr[data-quota="board/monthly"] td.top')).to_have_text(
                "route 5 (1%)"
            )
            expect(page.locator("#quota-store")).to_have_text("shared through Redis (redis)")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "quota_dashboard.png"), full_page=True)
            assert watched.errors == []
        finally:
            context.close()


# ---- two replicas under load ---------------------------------------------------------

LIMIT = 300
# Over-admission is bounded by what the replicas admit in two flush intervals
# after the quota ran out (one for their counts to reach Redis, one for each
# to read the others'). The test counts a whole second, many intervals: it
# checks sharing, not the scheduler's punctuality on a loaded machine.
WINDOW = 1.0


@dataclass
class Answer:
    replica: int
    sent: float
    done: float
    status: int


def hammer(gateways: list[GatewayProcess], tenant: str) -> list[Answer]:
    """Two throttled threads per replica, until each sees five refusals in a row."""
    answers: list[Answer] = []
    lock = threading.Lock()

    def run(replica: int) -> None:
        refusals = 0
        with gateways[replica].client() as client:
            for _ in range(2000):  # bounded
                sent = time.monotonic()
                status = client.get("/x", headers={"x-tenant": tenant}).status_code
                with lock:
                    answers.append(Answer(replica, sent, time.monotonic(), status))
                refusals = refusals + 1 if status == 429 else 0
                if refusals >= 5:
                    return
                time.sleep(0.01)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, [0, 0, 1, 1]))
    return answers


def test_two_replicas_share_one_count_within_the_bound(
    launcher: Launcher, backends: list[ServiceProcess], redis_url: str, redis_prefix: str
) -> None:
    quota = {
        "name": "daily",
        "limit": LIMIT,
        "period": "day",
        "key": {"by": "header", "name": "x-tenant"},
    }
    document = {"routes": [gateway_route(backends[:2], quotas=[quota])]}
    with ThreadPoolExecutor(2) as pool:
        gateways = list(
            pool.map(
                lambda side: launcher.gateway(
                    document, env=env(redis_url, redis_prefix), name=side
                ),
                ["gw-a", "gw-b"],
            )
        )
    answers = hammer(gateways, "acme")
    assert {a.status for a in answers} == {200, 429}
    admitted = sorted((a for a in answers if a.status == 200), key=lambda a: a.done)
    per_replica = [sum(1 for a in admitted if a.replica == r) for r in (0, 1)]
    assert min(per_replica) > 0
    assert len(admitted) >= LIMIT  # never refused early
    # every admission past the quota's came from a request sent within WINDOW of
    # the moment the quota ran out, on either replica
    spent_at = admitted[LIMIT - 1].done
    late = [round(a.sent - spent_at, 3) for a in admitted[LIMIT:]]
    rate = len(answers) / (max(a.done for a in answers) - min(a.sent for a in answers))
    print(f"\n{rate:.0f} requests/s; admitted {len(admitted)} of {LIMIT} (per replica "
          f"{per_replica}); the {len(late)} over were sent this many seconds after the "
          f"quota ran out: {late}")  # fmt: skip
    assert all(delay <= WINDOW for delay in late)
    # Redis holds exactly what each replica admitted, each under its own field.
    client = redis.Redis.from_url(redis_url)
    key = f"{redis_prefix}quota:{{app/daily/{today()}/acme}}"
    try:
        wait_until(
            lambda: sorted(hash_fields(client, key).values()) == sorted(per_replica),
            "each replica's admissions in Redis",
        )
        top = client.zrange(f"{redis_prefix}quota-top:app/daily/{today()}", 0, -1, withscores=True)
        assert top == [(b"acme", float(len(admitted)))]
    finally:
        client.close()


# ---- Redis taken away ----------------------------------------------------------------------


def test_redis_down_keeps_answering_and_counts_reach_it_later(
    launcher: Launcher, backends: list[ServiceProcess], private_redis: RedisServer
) -> None:
    private_redis.start()
    quota = {
        "name": "daily",
        "limit": 6,
        "period": "day",
        "key": {"by": "header", "name": "x-tenant"},
    }
    gateway = launcher.gateway(
        {"routes": [gateway_route(backends[:1], quotas=[quota])]},
        env=env(private_redis.redis_url, "q:"),
    )
    key = f"q:quota:{{app/daily/{today()}/acme}}"
    tenant = {"x-tenant": "acme"}

    def total() -> int | None:
        client = private_redis.client()
        try:
            return sum(hash_fields(client, key).values())
        except redis.RedisError:
            return None
        finally:
            client.close()

    with gateway.client() as client:
        for _ in range(2):
            assert client.get("/x", headers=tenant).status_code == 200
        wait_until(lambda: total() == 2, "the first counts in Redis")
        private_redis.stop()
        for _ in range(2):
            assert client.get("/x", headers=tenant).status_code == 200
        wait_until(
            lambda: (
                metric_value(gateway.metrics(), "gateway_quota_store_state", state="unreachable")
                == 1
            ),
            "the store state to say unreachable",
        )
        assert metric_value(gateway.metrics(), "gateway_quota_unflushed_requests") == 2
        # back, and empty (no persistence): the replica writes its whole count again
        private_redis.start()
        wait_until(lambda: total() == 4, "the counts made while Redis was down")
        wait_until(
            lambda: (
                metric_value(gateway.metrics(), "gateway_quota_store_state", state="redis") == 1
            ),
            "the store state to say redis",
        )
        assert [client.get("/x", headers=tenant).status_code for _ in range(3)] == [200, 200, 429]
    assert metric_value(gateway.metrics(), "gateway_quota_flush_failures_total") >= 1
