"""Gateways on a real Redis Cluster and a real Sentinel group: shared state, and a failover.

Two gateway processes per deployment, with ``REDIS_URL`` a ``redis+cluster://``
or ``redis+sentinel://`` URL, must share what they share on one Redis: the
round-robin cursor (exact across both), drains (asked of one, followed by the
other) and revocations (written as auth writes them, refused by both). Every
test runs on both (the module's ``deployment`` fixture: the cluster's pair,
then the sentinel group's). Then a master is killed under load (a
:class:`Failover` says how, on each): every answer must still be a success
(the cursor falls back to its local counter while its key has no master)
and, once a replica took over, the shared state works again. The failover
test starts the killed node again and waits until the deployment is whole,
so the session's cluster and sentinel group stay usable for later tests.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from gateway.operator_support import admin_state, backend_of, bearer, drain_path, load, wait_until
from support.databases import unique_redis_prefix
from support.gateway import HOST, GatewayProcess, Launcher, gateway_route, metric_value
from support.jwks import KeyServer
from support.processes import ServiceProcess
from support.redis_cluster import RedisClusterProcesses, RedisSentinelGroup
from support.redis_server import RedisServer
from support.revocations import Revoker

SECURE_HOST = "secure.gatehouse.test"


@dataclass
class Deployment:
    """Two gateways on one Redis deployment, and the test's own client to it."""

    kind: str
    url: str
    store: Any  # redis.Redis or redis.RedisCluster: the same commands here
    gateways: list[GatewayProcess]
    prefix: str  # the revocation prefix; the gateway's keys are under prefix + "gw:"
    route: str

    def key(self, rest: str) -> str:
        return f"{self.prefix}gw:{rest}"


def start_pair(
    launcher: Launcher,
    keys: KeyServer,
    backends: list[ServiceProcess],
    url: str,
    prefix: str,
    route: str,
) -> list[GatewayProcess]:
    document = {
        "auth": {"jwks_url": keys.url},
        "cursor": {"store": "redis"},
        "routes": [
            gateway_route(backends, name=route),
            gateway_route(backends[:1], name="secure", hosts=[SECURE_HOST], auth="required"),
        ],
    }
    env = {
        "REDIS_URL": url,
        "GATEHOUSE_GATEWAY_REDIS_PREFIX": prefix + "gw:",
        "GATEHOUSE_GATEWAY_REVOCATION_PREFIX": prefix,
        "GATEHOUSE_GATEWAY_REDIS_RETRY_INTERVAL": "0.2",
        "GATEHOUSE_GATEWAY_DRAIN_SYNC_INTERVAL": "0.3",
    }
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(launcher.gateway, document, env=env, name=f"gw-{side}")
            for side in ("a", "b")
        ]
        return [future.result() for future in futures]


def route_beside(cluster: RedisClusterProcesses, prefix: str, key: str) -> str:
    """A route name whose cursor key is served by the master that serves ``key``:
    killing that master then takes the cursor and the revocation channel at once."""
    target = cluster.master_of(key)
    for number in range(200):
        name = f"app-{number}"
        if cluster.master_of(f"{prefix}gw:cursor:{name}") is target:
            return name
    raise LookupError("no route name lands on that master")


@pytest.fixture(scope="module", params=["cluster", "sentinel"])
def deployment(
    request: pytest.FixtureRequest,
    module_launcher: Launcher,
    keys: KeyServer,
    backend_pool: list[ServiceProcess],
) -> Iterator[Deployment]:
    """Two gateways on the session's cluster, then on its sentinel group. On the
    cluster the route's cursor shares its master with the revocation channel
    (see the failover test)."""
    kind: str = request.param
    redis_: RedisClusterProcesses | RedisSentinelGroup = request.getfixturevalue(f"redis_{kind}")
    prefix = unique_redis_prefix(kind)
    route = "app"
    if isinstance(redis_, RedisClusterProcesses):
        route = route_beside(redis_, prefix, f"{prefix}{{rev}}:events")
    gateways = start_pair(module_launcher, keys, backend_pool, redis_.url, prefix, route)
    store = redis_.client()
    yield Deployment(kind, redis_.url, store, gateways, prefix, route)
    store.close()


def cursor_state(gateway: GatewayProcess) -> str:
    return str(httpx.get(gateway.admin_url + "/-/config", timeout=10).json()["cursor"]["state"])


def revocation_state(gateway: GatewayProcess, token: str) -> str:
    return str(admin_state(gateway, token)["revocations"]["state"])


def round_robin(deployment: Deployment, backends: list[ServiceProcess], count: int) -> Counter[str]:
    """``count`` requests alternating between the gateways; the backends that answered."""
    clients = [gateway.client() for gateway in deployment.gateways]

    def one(index: int) -> str:
        response = clients[index % len(clients)].get("/")
        assert response.status_code == 200, response.text
        return str(response.json()["instance"])

    try:
        with ThreadPoolExecutor(8) as pool:
            return Counter(pool.map(one, range(count)))
    finally:
        for client in clients:
            client.close()


def test_gateways_share_one_exact_round_robin(
    deployment: Deployment, backend_pool: list[ServiceProcess]
) -> None:
    for gateway in deployment.gateways:
        assert cursor_state(gateway) == "redis"
    before = int(deployment.store.get(deployment.key(f"cursor:{deployment.route}")) or 0)
    seen = round_robin(deployment, backend_pool, 400)
    assert len(seen) == len(backend_pool), seen
    assert all(abs(count - 100) <= 1 for count in seen.values()), seen
    after = int(deployment.store.get(deployment.key(f"cursor:{deployment.route}")) or 0)
    assert after - before == 400  # every pick came from the shared counter


def test_a_drain_asked_of_one_gateway_reaches_the_other(
    deployment: Deployment, backend_pool: list[ServiceProcess], keys: KeyServer
) -> None:
    token = keys.token(roles=["admin"], email="ops@example.com")
    first, second = deployment.gateways
    target = backend_pool[1]
    path = drain_path(deployment.route, target, "drain")
    answer = httpx.post(first.admin_url + path, headers=bearer(token), timeout=10).json()
    assert answer["stored_in_redis"] is True, answer
    try:
        # One hash tag for every drain key: the sync's MGET stays in one slot.
        key = deployment.key(f"{{drain}}:{deployment.route}:127.0.0.1:{target.port}")
        assert deployment.store.exists(key) == 1
        wait_until(
            lambda: backend_of(admin_state(second, token), deployment.route, target)["drained"],
            "the other gateway to follow the drain",
        )
        with second.client() as client:
            answered = {client.get("/").json()["instance"] for _ in range(30)}
        assert target.name not in answered and len(answered) == len(backend_pool) - 1
    finally:
        restore = drain_path(deployment.route, target, "restore")
        httpx.post(second.admin_url + restore, headers=bearer(token), timeout=10)
    wait_until(
        lambda: not backend_of(admin_state(first, token), deployment.route, target)["drained"],
        "the first gateway to follow the restore",
    )
    assert deployment.store.exists(key) == 0


def refused_by_both(deployment: Deployment, token: str) -> bool:
    codes = []
    for gateway in deployment.gateways:
        with gateway.client(headers={"Host": SECURE_HOST}) as client:
            codes.append(client.get("/whoami", headers=bearer(token)).status_code)
    assert set(codes) <= {200, 401}, codes
    return codes == [401, 401]


def test_a_revocation_reaches_both_gateways(deployment: Deployment, keys: KeyServer) -> None:
    revoker = Revoker(deployment.store, deployment.prefix)
    jti = uuid.uuid4().hex
    by_id = keys.token(jti=jti, sub="cluster-user-1")
    by_subject = keys.token(jti=uuid.uuid4().hex, sub="cluster-user-2")
    assert not refused_by_both(deployment, by_id)
    assert not refused_by_both(deployment, by_subject)
    revoker.revoke_token(jti, time.time() + 600)
    revoker.revoke_subject("cluster-user-2")
    wait_until(lambda: refused_by_both(deployment, by_id), "both to refuse the revoked token id")
    wait_until(lambda: refused_by_both(deployment, by_subject), "both to refuse the subject")


@dataclass
class Failover:
    """How one deployment loses its master under the test and gets a new one."""

    victim: RedisServer
    taken_over: Callable[[], bool]  # a new master serves the cursor's key
    what: str  # what the test waits for, for its error message
    client: Callable[[], Any]  # a client of whichever master serves by then
    recover: Callable[[], None]  # the victim back, the deployment whole again


def cluster_failover(deployment: Deployment, cluster: RedisClusterProcesses) -> Failover:
    """The master of the cursor's slot (and of the revocation channel) is the victim;
    a replica takes over after the cluster's node timeout."""
    cursor_key = deployment.key(f"cursor:{deployment.route}")
    victim = cluster.master_of(cursor_key)
    assert cluster.master_of(f"{deployment.prefix}{{rev}}:events") is victim

    def recover() -> None:
        cluster.restart(victim)  # back as a replica of the new master
        cluster.wait_healthy()

    return Failover(
        victim,
        lambda: cluster.master_of(cursor_key) is not victim,
        "a replica to take the slot over",
        cluster.client,
        recover,
    )


def sentinel_failover(_deployment: Deployment, group: RedisSentinelGroup) -> Failover:
    """The master is the victim; the sentinel promotes the replica after its
    ``down-after-milliseconds``, and the gateways ask it for the new master."""
    old_port = group.master_port()
    assert old_port is not None
    victim = group.server_at(old_port)

    def recover() -> None:
        group.restart(victim)  # back as the new master's replica

    return Failover(
        victim,
        lambda: group.master_port() not in (None, old_port),
        "the sentinel to promote the replica",
        group.client,
        recover,
    )


FAILOVERS: dict[str, Callable[[Deployment, Any], Failover]] = {
    "cluster": cluster_failover,
    "sentinel": sentinel_failover,
}


def test_a_killed_master_fails_no_request_and_the_shared_state_comes_back(
    deployment: Deployment,
    request: pytest.FixtureRequest,
    backend_pool: list[ServiceProcess],
    keys: KeyServer,
) -> None:
    """A master dies under load (on the cluster, in the Sentinel group): every
    answer is a success, and once a new master serves, the shared state works."""
    kind = deployment.kind
    failover = FAILOVERS[kind](deployment, request.getfixturevalue(f"redis_{kind}"))
    admin = keys.token(roles=["admin"], email="ops@example.com")
    for gateway in deployment.gateways:
        assert cursor_state(gateway) == "redis"
        assert revocation_state(gateway, admin) == "up"
    try:
        with load(deployment.gateways, HOST, threads=4, max_requests=3000) as traffic:
            wait_until(lambda: len(traffic.outcomes) >= 100, "load before the kill")
            failover.victim.kill()
            killed = time.monotonic()
            wait_until(failover.taken_over, failover.what, timeout=30)
            took_over = time.monotonic() - killed
            wait_until(
                lambda: (
                    all(cursor_state(g) == "redis" for g in deployment.gateways)
                    and all(revocation_state(g, admin) == "up" for g in deployment.gateways)
                ),
                "both gateways back on the shared cursor and revocation list",
                timeout=30,
            )
            back = time.monotonic() - killed
            settled = len(traffic.outcomes)
            wait_until(lambda: len(traffic.outcomes) >= settled + 100, "load after the failover")
        assert traffic.errors == []
        statuses = Counter(outcome.status for outcome in traffic.outcomes)
        assert set(statuses) == {200}, statuses
        fallbacks = sum(
            metric_value(g.metrics(), "gateway_cursor_fallbacks_total") for g in deployment.gateways
        )
        assert fallbacks > 0  # the key had no master for a while: local picks served
        print(
            f"{kind} failover: {len(traffic.outcomes)} requests, all 200; a new master "
            f"{took_over:.1f}s and the shared state was back {back:.1f}s after the kill; "
            f"{fallbacks:.0f} local picks meanwhile"
        )

        # The shared state works on the new master: the counter, and revocations.
        fresh = failover.client()
        try:
            cursor_key = deployment.key(f"cursor:{deployment.route}")
            before = int(fresh.get(cursor_key) or 0)
            seen = round_robin(deployment, backend_pool, 200)
            assert all(abs(count - 50) <= 1 for count in seen.values()), seen
            assert int(fresh.get(cursor_key) or 0) - before == 200
            jti = uuid.uuid4().hex
            token = keys.token(jti=jti, sub=f"{kind}-failover-user")
            assert not refused_by_both(deployment, token)
            Revoker(fresh, deployment.prefix).revoke_token(jti, time.time() + 600)
            wait_until(lambda: refused_by_both(deployment, token), "both to refuse after it")
        finally:
            fresh.close()
    finally:
        failover.recover()


def test_the_cluster_client_refuses_keys_of_several_slots_in_one_mget(
    redis_cluster: RedisClusterProcesses,
) -> None:
    """Why drains carry a hash tag: without one, their MGET spans slots and fails."""
    store = redis_cluster.client()
    try:
        with pytest.raises(redis.exceptions.RedisClusterException):
            store.mget(["x:drain:a:1", "x:drain:b:2", "x:drain:c:3"])
        assert store.mget(["x:{drain}:a:1", "x:{drain}:b:2", "x:{drain}:c:3"]) == [None] * 3
    finally:
        store.close()
