"""Rate limits, quotas and canary weights shared by two gateways on a real Redis Cluster.

Two gateway processes get a ``redis+cluster://`` URL and one route with all
three policies: a rate limit per ``x-user`` header, a daily quota per
``x-tenant`` header, and a canary group with split weights. On the session's
cluster (3 masters, 3 replicas; see tests/support/redis_cluster.py):

- the rate limit holds across both replicas within the bound of
  services/gateway/README.md, "Rate limits":
  ``burst + rate * t + replicas * 3 * lease``;
- the quota's count is shared: both replicas refuse once it is spent, every
  admission past it was sent shortly after it ran out (README, "Quotas"), and
  the cluster holds exactly what each replica admitted;
- a weights change through one replica's admin API reaches the other;
- no store reports itself down (admin views and metrics).

Then the master serving the bucket, the quota hash and the weights hash is
killed under load: every answer is still a documented one (200, or 429 from
the rate limit or the quota), and once a replica took over, every store is
shared again and a weights change still travels.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis
from gateway.operator_support import ADMIN, bearer, wait_until
from support.databases import unique_redis_prefix
from support.gateway import GatewayProcess, Launcher, gateway_route, metric_value
from support.jwks import KeyServer
from support.processes import ServiceProcess
from support.redis_cluster import RedisClusterProcesses

HOST = "policies.cluster.test"
ROUTE = "policies"
RATE = 40
BURST = 20
LEASE = 2
REPLICAS = 2
QUOTA = 120
# README "Quotas": every replica stops admitting within two flush intervals of
# the quota running out. The test allows a whole second (many intervals): it
# checks sharing, not the scheduler's punctuality on a loaded machine.
QUOTA_WINDOW = 1.0
FLUSH = "0.05"


def document(keys: KeyServer, pool: list[ServiceProcess]) -> dict[str, Any]:
    route = gateway_route(
        pool[:1],
        name=ROUTE,
        hosts=[HOST],
        rate_limits=[
            {
                "name": "per-user",
                "key": {"by": "header", "name": "x-user"},
                "rate": RATE,
                "burst": BURST,
                "lease": LEASE,
            }
        ],
        quotas=[
            {
                "name": "daily",
                "limit": QUOTA,
                "period": "day",
                "key": {"by": "header", "name": "x-tenant"},
            }
        ],
        groups=[{"name": "canary", "backends": [{"url": pool[1].url}]}],
        split={"weights": {"primary": 1}},
    )
    return {"auth": {"jwks_url": keys.url}, "routes": [route]}


@dataclass
class Cluster:
    """Two gateways on the cluster, the test's own client to it, the gateways' prefix."""

    gateways: list[GatewayProcess]
    store: Any  # redis.RedisCluster
    prefix: str
    admin: str  # an admin token


def spread_prefix(cluster: RedisClusterProcesses) -> str:
    """A prefix whose weights hash and rate-limit replica set live on different masters,
    so the failover below takes the one and not the other: a store must then find
    the new master through the keys it lost, not through a command that still works."""
    for _ in range(100):
        prefix = unique_redis_prefix("policy-cluster")
        weights = cluster.master_of(f"{prefix}canary:weights")
        if cluster.master_of(f"{prefix}rl:{{replicas}}") is not weights:
            return prefix
    raise LookupError("no prefix spreads the two keys")


@pytest.fixture(scope="module")
def on_cluster(
    module_launcher: Launcher,
    keys: KeyServer,
    backend_pool: list[ServiceProcess],
    redis_cluster: RedisClusterProcesses,
) -> Iterator[Cluster]:
    prefix = spread_prefix(redis_cluster)
    env = {
        "REDIS_URL": redis_cluster.url,
        "GATEHOUSE_GATEWAY_REDIS_PREFIX": prefix,
        "GATEHOUSE_GATEWAY_REDIS_RETRY_INTERVAL": "0.2",
        "GATEHOUSE_GATEWAY_QUOTA_FLUSH_INTERVAL": FLUSH,
        "GATEHOUSE_GATEWAY_CANARY_SYNC_INTERVAL": "0.2",
    }
    with ThreadPoolExecutor(REPLICAS) as pool:
        futures = [
            pool.submit(
                module_launcher.gateway, document(keys, backend_pool), env=env, name=f"gw-{side}"
            )
            for side in ("a", "b")
        ]
        gateways = [future.result() for future in futures]
    store = redis_cluster.client()
    admin = keys.token(roles=["admin"], email="ops@example.com")
    yield Cluster(gateways, store, prefix, admin)
    try:
        keys_left = list(store.scan_iter(match=f"{prefix}*", count=500, target_nodes="primaries"))
        for key in keys_left:
            store.delete(key)
    except redis.RedisError:
        pass  # the session's cluster is torn down after the session anyway
    store.close()


@pytest.fixture(autouse=True)
def same_day() -> None:
    """The quota names today's window: one started in the last minute before
    midnight UTC would straddle two."""
    now = datetime.now(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    if (midnight - now).total_seconds() < 60:
        time.sleep((midnight - now).total_seconds() + 1)


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


# ---- what the gateways say about their stores ------------------------------------------


def stores_up(gateway: GatewayProcess, admin: str) -> dict[str, bool]:
    """Each store's own word, from the admin API and from the metrics."""
    state = httpx.get(gateway.admin_url + ADMIN + "/state", headers=bearer(admin), timeout=10)
    quotas = httpx.get(gateway.admin_url + ADMIN + "/quotas", headers=bearer(admin), timeout=10)
    state.raise_for_status()
    quotas.raise_for_status()
    view = state.json()
    metrics = gateway.metrics()
    return {
        "ratelimit_view": view["rate_limits"]["store"]["state"] == "redis",
        "canary_view": view["canary_weights"]["state"] == "redis",
        "quota_view": quotas.json()["store"]["state"] == "redis",
        "ratelimit_metric": metric_value(metrics, "gateway_ratelimit_store_state", state="redis")
        == 1,
        "quota_metric": metric_value(metrics, "gateway_quota_store_state", state="redis") == 1,
        "canary_metric": metric_value(metrics, "gateway_canary_weights_store_up") == 1,
    }


def all_up(cluster: Cluster) -> bool:
    return all(all(stores_up(g, cluster.admin).values()) for g in cluster.gateways)


def store_report(cluster: Cluster) -> str:
    """Each gateway's stores as it reports them, with their last errors: a failure's why."""
    lines = []
    for gateway in cluster.gateways:
        headers = bearer(cluster.admin)
        view = httpx.get(gateway.admin_url + ADMIN + "/state", headers=headers, timeout=10).json()
        quotas = httpx.get(gateway.admin_url + ADMIN + "/quotas", headers=headers, timeout=10)
        lines.append(
            f"{gateway.name}: {stores_up(gateway, cluster.admin)} "
            f"rate_limits={view['rate_limits']['store']} canary={view['canary_weights']} "
            f"quotas={quotas.json()['store']}"
        )
    return "\n".join(lines)


def failures(cluster: Cluster) -> list[float]:
    """Failed round trips so far, per gateway: the rate limit's and the quota's."""
    found = []
    for gateway in cluster.gateways:
        metrics = gateway.metrics()
        found.append(
            metric_value(metrics, "gateway_ratelimit_store_round_trips_total", outcome="error")
            + metric_value(metrics, "gateway_quota_flush_failures_total")
        )
    return found


def assert_all_up(cluster: Cluster) -> None:
    for gateway in cluster.gateways:
        seen = stores_up(gateway, cluster.admin)
        assert all(seen.values()), (gateway.name, seen)


# ---- the rate limit ------------------------------------------------------------------


@dataclass
class Answers:
    statuses: list[int] = field(default_factory=list)
    sends: list[float] = field(default_factory=list)
    ended: float = 0.0


def hammer(
    gateways: Sequence[GatewayProcess],
    headers: dict[str, str],
    seconds: float,
    tenant: str | None = None,
) -> Answers:
    """Two keep-alive clients per gateway for ``seconds`` after the first answer; each
    request its own quota consumer unless ``tenant`` names one."""
    answers = Answers()
    lock = threading.Lock()
    stop = threading.Event()
    answered = threading.Event()

    def run(gateway: GatewayProcess, number: int) -> float:
        last = 0.0
        with gateway.client(headers={"Host": HOST}) as client:
            for count in range(100_000):  # bounded; the stop event ends it long before
                if stop.is_set():
                    break
                quota = {"x-tenant": tenant or f"rl-{gateway.port}-{number}-{count}"}
                sent = time.monotonic()
                status = client.get("/", headers={**headers, **quota}).status_code
                last = time.monotonic()
                with lock:
                    answers.sends.append(sent)
                    answers.statuses.append(status)
                answered.set()
        return last

    with ThreadPoolExecutor(2 * len(gateways)) as pool:
        futures = [pool.submit(run, g, n) for g in gateways for n in range(2)]
        answered.wait(timeout=30)
        time.sleep(seconds)
        stop.set()
        answers.ended = max(future.result() for future in futures)
    return answers


def test_the_rate_limit_holds_across_both_replicas_within_its_bound(on_cluster: Cluster) -> None:
    assert_all_up(on_cluster)
    answers = hammer(on_cluster.gateways, {"x-user": "ada"}, seconds=1.5)
    seconds = answers.ended - min(answers.sends)
    admitted = answers.statuses.count(200)
    bound = BURST + RATE * seconds + REPLICAS * 3 * LEASE
    print(
        f"\ncluster rate limit {RATE}/s burst {BURST} lease {LEASE}: "
        f"{len(answers.statuses)} requests in {seconds:.2f} s, {admitted} admitted "
        f"(ideal {BURST + RATE * seconds:.0f}, bound {bound:.0f})"
    )
    assert set(answers.statuses) == {200, 429}, Counter(answers.statuses)
    assert admitted <= bound
    assert admitted >= 0.6 * (BURST + RATE * seconds)  # shared, not starved
    bucket = f"{on_cluster.prefix}rl:{{{ROUTE}:per-user:ada}}"
    assert on_cluster.store.exists(bucket) == 1  # the bucket lives in the cluster
    assert_all_up(on_cluster)


# ---- the quota ----------------------------------------------------------------------


@dataclass
class Answer:
    replica: int
    sent: float
    done: float
    status: int


def spend(gateways: Sequence[GatewayProcess], tenant: str) -> list[Answer]:
    """Two throttled threads per replica until each sees five refusals in a row."""
    answers: list[Answer] = []
    lock = threading.Lock()

    def run(replica: int, number: int) -> None:
        refusals = 0
        with gateways[replica].client(headers={"Host": HOST}) as client:
            for count in range(2000):  # bounded
                # one rate-limit consumer per request: this test is about the quota
                headers = {"x-tenant": tenant, "x-user": f"q-{replica}-{number}-{count}"}
                sent = time.monotonic()
                status = client.get("/q", headers=headers).status_code
                with lock:
                    answers.append(Answer(replica, sent, time.monotonic(), status))
                refusals = refusals + 1 if status == 429 else 0
                if refusals >= 5:
                    return
                time.sleep(0.01)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, [0, 0, 1, 1], [0, 1, 0, 1]))
    return answers


def test_the_quota_count_is_shared_and_both_replicas_refuse_once_spent(
    on_cluster: Cluster,
) -> None:
    answers = spend(on_cluster.gateways, "acme")
    assert {a.status for a in answers} == {200, 429}
    admitted = sorted((a for a in answers if a.status == 200), key=lambda a: a.done)
    per_replica = [sum(1 for a in admitted if a.replica == r) for r in (0, 1)]
    assert min(per_replica) > 0
    assert len(admitted) >= QUOTA  # never refused early
    spent_at = admitted[QUOTA - 1].done
    late = [round(a.sent - spent_at, 3) for a in admitted[QUOTA:]]
    print(
        f"\ncluster quota {QUOTA}: admitted {len(admitted)} (per replica {per_replica}); "
        f"the {len(late)} over were sent this many seconds after it ran out: {late}"
    )
    assert all(delay <= QUOTA_WINDOW for delay in late)
    # both replicas refuse now, with the quota's own answer
    for gateway in on_cluster.gateways:
        with gateway.client(headers={"Host": HOST}) as client:
            refused = client.get("/q", headers={"x-tenant": "acme", "x-user": "late"})
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"] == "quota_exceeded"
    # the cluster holds exactly what each replica admitted, one field each
    key = f"{on_cluster.prefix}quota:{{{ROUTE}/daily/{today()}/acme}}"

    def fields() -> list[int]:
        return sorted(int(v) for v in on_cluster.store.hvals(key))

    wait_until(lambda: fields() == sorted(per_replica), "each replica's count in the cluster")
    assert_all_up(on_cluster)


# ---- canary weights -----------------------------------------------------------------


def weights_url(gateway: GatewayProcess) -> str:
    return f"{gateway.admin_url}{ADMIN}/routes/{ROUTE}/weights"


def weights_of(gateway: GatewayProcess, admin: str) -> dict[str, int]:
    response = httpx.get(weights_url(gateway), headers=bearer(admin), timeout=10)
    response.raise_for_status()
    found: dict[str, int] = response.json()["weights"]
    return found


def instances(gateway: GatewayProcess, count: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    with gateway.client(headers={"Host": HOST}) as client:
        for n in range(count):
            headers = {"x-user": f"w-{n}", "x-tenant": f"w-{n}"}
            response = client.get(f"/w/{n}", headers=headers)
            assert response.status_code == 200, response.text
            seen[response.headers["x-backend-instance"]] += 1
    return seen


def set_weights(cluster: Cluster, through: GatewayProcess, weights: dict[str, int]) -> None:
    response = httpx.put(
        weights_url(through), json={"weights": weights}, headers=bearer(cluster.admin), timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json()["stored_in_redis"] is True, response.json()


def reset_weights(cluster: Cluster, through: GatewayProcess) -> None:
    httpx.delete(weights_url(through), headers=bearer(cluster.admin), timeout=10)


def test_a_weights_change_through_one_replica_reaches_the_other(on_cluster: Cluster) -> None:
    first, second = on_cluster.gateways
    admin = on_cluster.admin
    assert instances(second, 10) == {"backend-1": 10}
    set_weights(on_cluster, first, {"canary": 1})
    try:
        stored = on_cluster.store.hget(f"{on_cluster.prefix}canary:weights", ROUTE)
        assert stored is not None and json.loads(stored)["weights"] == {"canary": 1}
        wait_until(
            lambda: weights_of(second, admin) == {"primary": 0, "canary": 1},
            "the other replica to apply the weights",
        )
        assert instances(second, 20) == {"backend-2": 20}
    finally:
        reset_weights(on_cluster, second)
    wait_until(
        lambda: weights_of(first, admin) == {"primary": 1, "canary": 0},
        "the reset to reach the first replica",
    )
    assert instances(first, 10) == {"backend-1": 10}
    assert_all_up(on_cluster)


# ---- a master killed under load -----------------------------------------------------


def consumer_on(cluster: RedisClusterProcesses, victim: object, key_of: Any, label: str) -> str:
    """A consumer value whose key (``key_of(value)``) the ``victim`` master serves."""
    for number in range(500):
        value = f"{label}-{number}"
        if cluster.master_of(key_of(value)) is victim:
            return value
    raise LookupError(f"no {label} lands on that master")


@dataclass
class Load:
    statuses: list[int] = field(default_factory=list)
    refusals: Counter[str] = field(default_factory=Counter)  # by the answer's "error"
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def reason_of(response: httpx.Response) -> str:
    """The ``error`` of a gateway-made answer, or the start of whatever else came."""
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.text[:100]


def under_load(
    gateways: Sequence[GatewayProcess], headers: dict[str, str], stop: threading.Event, into: Load
) -> list[threading.Thread]:
    def run(gateway: GatewayProcess) -> None:
        with gateway.client(headers={"Host": HOST}) as client:
            for _ in range(5000):  # bounded
                if stop.is_set():
                    return
                try:
                    response = client.get("/load", headers=headers)
                except httpx.HTTPError as exc:
                    into.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                with into.lock:
                    into.statuses.append(response.status_code)
                    if response.status_code != 200:
                        into.refusals[reason_of(response)] += 1
                time.sleep(0.005)

    threads = [threading.Thread(target=run, args=(g,), daemon=True) for g in gateways * 2]
    for thread in threads:
        thread.start()
    return threads


def test_a_killed_master_under_load_answers_only_documented_statuses(
    on_cluster: Cluster, redis_cluster: RedisClusterProcesses
) -> None:
    prefix = on_cluster.prefix
    weights_key = f"{prefix}canary:weights"
    victim = redis_cluster.master_of(weights_key)
    user = consumer_on(
        redis_cluster, victim, lambda v: f"{prefix}rl:{{{ROUTE}:per-user:{v}}}", "user"
    )
    tenant = consumer_on(
        redis_cluster, victim, lambda v: f"{prefix}quota:{{{ROUTE}/daily/{today()}/{v}}}", "tenant"
    )
    fresh = consumer_on(
        redis_cluster, victim, lambda v: f"{prefix}quota:{{{ROUTE}/daily/{today()}/{v}}}", "after"
    )  # a quota not spent by the load, for after the failover
    assert_all_up(on_cluster)
    traffic = Load()
    stop = threading.Event()
    threads = under_load(on_cluster.gateways, {"x-user": user, "x-tenant": tenant}, stop, traffic)
    try:
        wait_until(lambda: len(traffic.statuses) >= 50, "load before the kill")
        victim.kill()
        killed = time.monotonic()
        wait_until(
            lambda: redis_cluster.master_of(weights_key) is not victim,
            "a replica to take the slot over",
            timeout=30,
        )
        took_over = time.monotonic() - killed
        try:
            wait_until(lambda: all_up(on_cluster), "every store shared again", timeout=30)
        except AssertionError:
            raise AssertionError(store_report(on_cluster)) from None
        back = time.monotonic() - killed
        settled = len(traffic.statuses)
        wait_until(lambda: len(traffic.statuses) >= settled + 50, "load after the failover")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        redis_cluster.restart(victim)  # back as a replica of the new master
        redis_cluster.wait_healthy()
    statuses = Counter(traffic.statuses)
    print(
        f"\npolicy failover: {sum(statuses.values())} requests {dict(statuses)} "
        f"{dict(traffic.refusals)}; a replica "
        f"took over {took_over:.1f}s and every store was shared again {back:.1f}s after the kill"
    )
    assert traffic.errors == []
    assert set(statuses) <= {200, 429}, statuses
    assert set(traffic.refusals) <= {"rate_limited", "quota_exceeded"}, traffic.refusals
    assert statuses[200] > 0
    # The stores work on the new master: the limit and the quota go through it
    # without a failed round trip, and a weights change travels again.
    failures_before = failures(on_cluster)
    after = hammer(on_cluster.gateways, {"x-user": user}, seconds=1.0, tenant=fresh)
    assert set(after.statuses) <= {200, 429} and after.statuses.count(200) > 0
    assert_all_up(on_cluster)
    assert failures(on_cluster) == failures_before, (failures_before, failures(on_cluster))
    first, second = on_cluster.gateways
    set_weights(on_cluster, second, {"canary": 1})
    try:
        wait_until(
            lambda: weights_of(first, on_cluster.admin) == {"primary": 0, "canary": 1},
            "the weights to reach the other replica after the failover",
        )
    finally:
        reset_weights(on_cluster, first)
    assert_all_up(on_cluster)
