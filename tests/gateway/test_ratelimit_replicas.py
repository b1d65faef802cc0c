"""One rate limit across two gateway processes under load, with Redis up, down and back.

Clients hammer both gateways with one consumer (an ``x-user`` header) far
faster than its limit. The count of 200s in a window of ``t`` seconds must
stay within the bound services/gateway/README.md states:

    admitted <= burst + rate * t + replicas * (lease + 2 * lease)

``t`` is measured at the clients, from the first request sent to the last
answer, which contains every moment a gateway decided. With a Redis of the
test's own stopped under load, the ``local`` limit holds each replica to its
share (rate and burst / replicas seen), ``open`` lets everything through and
``closed`` answers 503; none of them answers anything else, the fallback is
counted, and once Redis is back the limit is shared again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from support.databases import REDIS_URL
from support.gateway import GatewayProcess, Launcher, gateway_route, metric_value
from support.processes import ServiceProcess
from support.redis_server import RedisServer

RATE = 40
BURST = 20
LEASE = 2
REPLICAS = 2
SHARED_SLACK = REPLICAS * (LEASE + 2 * LEASE)

LOCAL = "local.gatehouse.test"
OPEN = "open.gatehouse.test"
CLOSED = "closed.gatehouse.test"


def limited_route(
    backend: ServiceProcess, name: str, host: str, **limit: object
) -> dict[str, object]:
    rule = {"name": "per-user", "key": {"by": "header", "name": "x-user"}, **limit}
    return gateway_route([backend], name=name, hosts=[host], rate_limits=[rule])


def document(backend: ServiceProcess) -> dict[str, object]:
    shared = {"rate": RATE, "burst": BURST, "lease": LEASE}
    wide = {"rate": 100_000, "burst": 100_000}
    return {
        "routes": [
            limited_route(backend, "local", LOCAL, on_store_failure="local", **shared),
            limited_route(backend, "open", OPEN, on_store_failure="open", **wide),
            limited_route(backend, "closed", CLOSED, on_store_failure="closed", **wide),
        ]
    }


@dataclass
class Answers:
    """What one burst of load got: statuses, and the window the clients saw."""

    statuses: list[int]
    started: float
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    def count(self, status: int) -> int:
        return self.statuses.count(status)


def hammer(
    gateways: Sequence[GatewayProcess], host: str, user: str, seconds: float, threads: int = 4
) -> Answers:
    """Requests from ``threads`` keep-alive clients per gateway, for ``seconds`` after the
    first answer (starting clients on a loaded machine takes a while of its own)."""
    statuses: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()
    answered = threading.Event()
    sends: list[float] = []

    def client(gateway: GatewayProcess) -> float:
        last = 0.0
        headers = {"Host": host, "x-user": user}
        with httpx.Client(base_url=gateway.url, headers=headers, timeout=30) as session:
            for _ in range(100_000):  # bounded; the stop event ends it long before
                if stop.is_set():
                    break
                sent = time.monotonic()
                status = session.get("/").status_code
                last = time.monotonic()
                with lock:
                    sends.append(sent)
                    statuses.append(status)
                answered.set()
        return last

    with ThreadPoolExecutor(max_workers=threads * len(gateways)) as pool:
        futures = [pool.submit(client, g) for g in gateways for _ in range(threads)]
        answered.wait(timeout=30)
        time.sleep(seconds)
        stop.set()
        ended = max(future.result() for future in futures)
    assert statuses, "no answer at all"
    return Answers(statuses, min(sends), ended)


def shared_bound(seconds: float) -> float:
    return BURST + RATE * seconds + SHARED_SLACK


def store_state(gateway: GatewayProcess) -> str:
    metrics = gateway.metrics()
    for state in ("redis", "fallback", "local"):
        if metric_value(metrics, "gateway_ratelimit_store_state", state=state) == 1:
            return state
    return "unknown"


def wait_for_state(gateways: Sequence[GatewayProcess], state: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if all(store_state(g) == state for g in gateways):
            return
        time.sleep(0.1)
    raise AssertionError(f"the gateways did not reach store state {state!r} in 15 s")


@pytest.fixture
def backend(launcher: Launcher) -> Iterator[ServiceProcess]:
    yield launcher.backends(1, prefix="rl")[0]


def start_pair(
    launcher: Launcher, backend: ServiceProcess, env: dict[str, str]
) -> list[GatewayProcess]:
    with ThreadPoolExecutor(max_workers=REPLICAS) as pool:
        return list(
            pool.map(
                lambda i: launcher.gateway(document(backend), env=env, name=f"gw{i}"),
                range(REPLICAS),
            )
        )


def test_two_replicas_hold_one_shared_limit_within_the_bound(
    launcher: Launcher, backend: ServiceProcess, redis_prefix: str
) -> None:
    env = {"REDIS_URL": REDIS_URL, "GATEHOUSE_GATEWAY_REDIS_PREFIX": redis_prefix}
    gateways = start_pair(launcher, backend, env)
    answers = hammer(gateways, LOCAL, "ada", seconds=2.0)
    admitted = answers.count(200)
    bound = shared_bound(answers.seconds)
    print(
        f"\nshared limit {RATE}/s burst {BURST} lease {LEASE}, {REPLICAS} replicas: "
        f"{len(answers.statuses)} requests in {answers.seconds:.2f} s, {admitted} admitted "
        f"(ideal {BURST + RATE * answers.seconds:.0f}, bound {bound:.0f})"
    )
    assert set(answers.statuses) == {200, 429}
    assert admitted <= bound
    # the limit is shared, not enforced twice over nor starved: well above one replica's share
    assert admitted >= 0.6 * (BURST + RATE * answers.seconds)

    def allowed() -> list[float]:
        return [
            metric_value(
                g.metrics(), "gateway_ratelimit_requests_total", route="local", decision="allowed"
            )
            for g in gateways
        ]

    # every 200 was counted by the replica that allowed it (within a second), and
    # both replicas admitted their part
    deadline = time.monotonic() + 15
    while sum(allowed()) != admitted:
        assert time.monotonic() < deadline, f"allowed {allowed()} != {admitted} admitted"
        time.sleep(0.1)
    assert all(count > 0 for count in allowed())
    metrics = [g.metrics() for g in gateways]
    trips = sum(metric_value(m, "gateway_ratelimit_store_round_trips_total") for m in metrics)
    assert trips < len(answers.statuses) / 4  # far from a round trip per request
    assert all(store_state(g) == "redis" for g in gateways)


def test_redis_stopped_and_started_under_load_changes_nothing_beyond_the_fallback(
    launcher: Launcher, backend: ServiceProcess, private_redis: RedisServer
) -> None:
    private_redis.start()
    env = {
        "REDIS_URL": private_redis.redis_url,
        "GATEHOUSE_GATEWAY_REDIS_PREFIX": "rl-outage:",
        "GATEHOUSE_GATEWAY_REDIS_RETRY_INTERVAL": "0.2",
    }
    gateways = start_pair(launcher, backend, env)
    hosts = (LOCAL, OPEN, CLOSED)
    for gateway in gateways:  # both have announced themselves: the local share is half
        deadline = time.monotonic() + 15
        while metric_value(gateway.metrics(), "gateway_ratelimit_replicas") != REPLICAS:
            assert time.monotonic() < deadline, "replicas never saw each other"
            time.sleep(0.1)

    def phase(user: str) -> dict[str, Answers]:
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            runs = {h: pool.submit(hammer, gateways, h, user, 1.0, 2) for h in hosts}
            return {host: run.result() for host, run in runs.items()}

    before = phase("before")
    private_redis.stop()
    wait_for_state(gateways, "fallback")
    during = phase("during")
    private_redis.start()
    wait_for_state(gateways, "redis")
    after = phase("after")

    for answers in (before, after):
        assert set(answers[LOCAL].statuses) <= {200, 429}
        assert answers[LOCAL].count(200) <= shared_bound(answers[LOCAL].seconds)
        assert set(answers[OPEN].statuses) == {200}
        assert set(answers[CLOSED].statuses) == {200}
    # Redis down: local holds each replica to its share, open admits, closed refuses
    local = during[LOCAL]
    assert set(local.statuses) == {200, 429}
    assert local.count(200) <= BURST + RATE * local.seconds + REPLICAS
    assert set(during[OPEN].statuses) == {200}
    assert set(during[CLOSED].statuses) == {503}
    print(
        f"\nRedis down {local.seconds:.2f} s: local fallback admitted {local.count(200)} of "
        f"{len(local.statuses)} (bound {BURST + RATE * local.seconds + REPLICAS:.0f}); "
        f"open {len(during[OPEN].statuses)} all 200; closed {len(during[CLOSED].statuses)} all 503"
    )
    metrics = [g.metrics() for g in gateways]
    for mode in ("local", "open", "closed"):
        counted = sum(
            metric_value(m, "gateway_ratelimit_fallback_total", route=mode, mode=mode)
            for m in metrics
        )
        assert counted >= len(
            during[{"local": LOCAL, "open": OPEN, "closed": CLOSED}[mode]].statuses
        )
    refusal = httpx.get(gateways[0].url + "/", headers={"Host": CLOSED, "x-user": "z"}, timeout=10)
    assert refusal.status_code == 200  # shared again
    log = gateways[0].log_text()
    assert log.count("rate limits use each route's on_store_failure") == 1
    assert log.count("rate limits are shared again") == 1
