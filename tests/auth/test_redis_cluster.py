"""Auth's Redis uses on a real Redis Cluster and a real Sentinel group: revocations and windows.

Auth takes one client for ``REDIS_URL`` (``connect_redis``) and shares it
between the login windows and the revocation publisher, so both must work
on every form of URL. On Cluster a pipeline cannot carry ``PUBLISH``: the
revocation is written in one transaction on its ``{rev}`` slot, then
announced; a classic ``PUBLISH`` reaches subscribers on every node.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.exceptions import RedisClusterException
from support.databases import unique_redis_prefix
from support.processes import free_port
from support.redis_cluster import RedisClusterProcesses, RedisSentinelGroup

from gatehouse_auth.ratelimit import RedisWindowStore, Window, connect_redis
from gatehouse_auth.revocation import Revocations, revocation_keys


@pytest.fixture(params=["cluster", "sentinel"])
def deployment(request: pytest.FixtureRequest) -> Iterator[tuple[str, Any, redis.Redis]]:
    """(REDIS_URL, a client of the test's own, a plain client on one node for pub/sub)."""
    if request.param == "cluster":
        cluster: RedisClusterProcesses = request.getfixturevalue("redis_cluster")
        own: Any = cluster.client()
        # Any node: a classic PUBLISH is broadcast to the whole cluster.
        node = redis.Redis(port=cluster.masters_now()[-1].port, socket_timeout=2)
        url = cluster.url
    else:
        group: RedisSentinelGroup = request.getfixturevalue("redis_sentinel")
        own = group.client()
        node = group.client()
        url = group.url
    yield url, own, node
    own.close()
    node.close()


def test_revocations_are_stored_and_announced(deployment: tuple[str, Any, redis.Redis]) -> None:
    url, own, node = deployment
    prefix = unique_redis_prefix("auth-cluster")
    jti_key, sub_key, channel = revocation_keys(prefix)
    pubsub = node.pubsub()
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"  # type: ignore[index]
    client = connect_redis(url)
    revocations = Revocations(client, prefix=prefix, max_token_lifetime=930)
    exp = int(time.time()) + 600
    assert revocations.revoke_token("abc123", exp)
    assert revocations.revoke_subject("42")
    assert revocations.pending == 0
    assert own.zscore(jti_key, "abc123") == exp
    assert own.zscore(sub_key, "42") is not None
    events = []
    for _ in range(2):
        message = pubsub.get_message(timeout=2)
        assert message is not None
        events.append(json.loads(message["data"]))
    assert [(e["kind"], e["id"]) for e in events] == [("jti", "abc123"), ("sub", "42")]
    pubsub.close()
    client.close()


def test_login_windows_work(deployment: tuple[str, Any, redis.Redis]) -> None:
    """Every operation of the window store, on keys of several slots."""
    url, _own, _node = deployment
    prefix = unique_redis_prefix("auth-cluster")
    client = connect_redis(url)
    store = RedisWindowStore(client)
    key, other = f"{prefix}w", f"{prefix}w2"
    assert store.hit(key, 2, 60_000, "one").count == 1
    assert store.hit(key, 2, 60_000, "two").count == 2
    assert store.hit(key, 2, 60_000, "three").refused
    wait, nothing = store.peek([Window(key, 2, 60_000), Window(other, 2, 60_000)])
    assert 0 < wait <= 60_000 and nothing == 0
    store.forget(key, "two")
    assert store.peek([Window(key, 2, 60_000)]) == [0]
    store.hit(other, 2, 60_000, "x")
    store.delete([key, other])  # two slots: split by the Cluster client
    assert store.peek([Window(key, 1, 60_000), Window(other, 1, 60_000)]) == [0, 0]
    registry = f"{prefix}registry"
    store.note(registry, "a", 60_000)
    store.note(registry, "b", 60_000)
    store.unnote(registry, ["a"])
    assert store.entries(registry) == ["b"]
    client.close()


def test_an_unreachable_cluster_fails_auths_client_at_once_without_its_password() -> None:
    """What the README says of auth's start on a Cluster URL: redis-py's blocking
    Cluster client reads the layout when it is made, so no node answering is an
    error then (one server and Sentinel connect on first use)."""
    port = free_port()
    with pytest.raises(RedisClusterException) as failed:
        connect_redis(f"redis+cluster://auth:s3cret-pw@127.0.0.1:{port}/")
    assert f"127.0.0.1:{port}" in str(failed.value)
    assert "s3cret-pw" not in str(failed.value)
    connect_redis(f"redis+sentinel://auth:s3cret-pw@127.0.0.1:{port}/gatehouse/0").close()
