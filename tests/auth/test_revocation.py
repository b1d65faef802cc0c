"""Publishing revocations (the Redis contract) against real Redis, outages included."""

from __future__ import annotations

import json
import time

import jwt
import pytest
import redis
from prometheus_client import REGISTRY
from support.auth import PASSWORD, StartAuth, signup
from support.gateway import metric_value
from support.redis_server import RedisServer

from gatehouse_auth.ratelimit import connect_redis
from gatehouse_auth.revocation import Revocations, revocation_keys

LIFETIME = 930.0


def _failures(kind: str) -> float:
    return REGISTRY.get_sample_value("revocation_publish_failures_total", {"kind": kind}) or 0.0


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


def test_keys_follow_the_contract() -> None:
    assert revocation_keys("gatehouse:revocation:") == (
        "gatehouse:revocation:{rev}:jti",
        "gatehouse:revocation:{rev}:sub",
        "gatehouse:revocation:{rev}:events",
    )


def test_a_token_and_a_subject_are_stored_and_announced(
    client: redis.Redis, redis_prefix: str, redis_url: str
) -> None:
    jti_key, sub_key, channel = revocation_keys(redis_prefix)
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"  # type: ignore[index]
    revocations = Revocations(
        connect_redis(redis_url), prefix=redis_prefix, max_token_lifetime=LIFETIME
    )
    exp = int(time.time()) + 600
    assert revocations.revoke_token("abc123", exp)
    before = time.time()
    assert revocations.revoke_subject("42")
    assert client.zscore(jti_key, "abc123") == exp
    nbf = client.zscore(sub_key, "42")
    assert nbf is not None and before <= nbf <= time.time()
    events = []
    for _ in range(2):
        message = pubsub.get_message(timeout=2)
        assert message is not None
        events.append(json.loads(message["data"]))
    assert events == [
        {"kind": "jti", "id": "abc123", "exp": exp},
        {"kind": "sub", "id": "42", "nbf": nbf},
    ]
    pubsub.close()


def test_writes_prune_what_no_longer_matters(
    client: redis.Redis, redis_prefix: str, redis_url: str
) -> None:
    jti_key, sub_key, _ = revocation_keys(redis_prefix)
    now = time.time()
    client.zadd(jti_key, {"expired": now - 1, "live": now + 100})
    client.zadd(sub_key, {"old": now - LIFETIME - 10, "recent": now - LIFETIME + 100})
    revocations = Revocations(
        connect_redis(redis_url), prefix=redis_prefix, max_token_lifetime=LIFETIME
    )
    revocations.revoke_token("new", now + 50)
    revocations.revoke_subject("7")
    assert set(client.zrange(jti_key, 0, -1)) == {"live", "new"}
    assert set(client.zrange(sub_key, 0, -1)) == {"recent", "7"}


def test_an_outage_holds_revocations_back_and_they_go_out_when_redis_returns(
    private_redis: RedisServer,
) -> None:
    revocations = Revocations(
        connect_redis(private_redis.redis_url), prefix="t:", max_token_lifetime=LIFETIME
    )
    failures = _failures("jti")
    exp = int(time.time()) + 600
    assert not revocations.revoke_token("during-outage", exp)  # Redis not started
    assert not revocations.revoke_subject("9")
    assert revocations.pending == 2
    assert _failures("jti") == failures + 1
    assert revocations.retry() == 2  # still down
    private_redis.start()
    assert revocations.retry() == 0
    client = private_redis.client()
    jti_key, sub_key, _ = revocation_keys("t:")
    assert client.zscore(jti_key, "during-outage") == exp
    assert client.zscore(sub_key, "9") is not None
    # later revocations queue behind held-back ones, never overtake them
    assert revocations.revoke_token("after", exp)


def test_without_redis_nothing_is_published_and_nothing_fails() -> None:
    revocations = Revocations(None, prefix="t:", max_token_lifetime=LIFETIME)
    assert not revocations.revoke_token("x", time.time() + 10)
    assert revocations.pending == 0 and revocations.retry() == 0


def test_a_logout_while_redis_is_down_reaches_redis_when_it_returns(
    private_redis: RedisServer, start_auth: StartAuth
) -> None:
    """The session ends at once (the database), and the gateways' list gets it on the retry."""
    private_redis.start()
    service = start_auth(
        name="revocation-outage",
        redis=False,
        extra_env={"REDIS_URL": private_redis.redis_url},
        revocation_retry_seconds="0.5",
    )
    with service.client() as client:
        account = signup(client)
        login = client.post("/login", json={"email": account["email"], "password": PASSWORD})
        body = login.json()
        jti = jwt.decode(body["access_token"], options={"verify_signature": False})["jti"]
        private_redis.stop()

        logout = client.post("/logout", json={"refresh_token": body["refresh_token"]})
        assert logout.status_code == 204
        refresh = client.post("/token/refresh", json={"refresh_token": body["refresh_token"]})
        assert refresh.status_code == 401  # the database already says so
        metrics = client.get("/metrics").text
        assert metric_value(metrics, "revocations_pending") == 1
        assert metric_value(metrics, "revocation_publish_failures_total", kind="jti") >= 1

        private_redis.start()
        jti_key = revocation_keys("gatehouse:revocation:")[0]
        redis_client = private_redis.client()
        deadline = time.monotonic() + 10
        while redis_client.zscore(jti_key, jti) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert redis_client.zscore(jti_key, jti) is not None
        assert metric_value(client.get("/metrics").text, "revocations_pending") == 0
