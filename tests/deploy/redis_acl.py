"""A real ``redis-server`` started with an ACL file the deployment generates, and
the checks every deployment's Redis users must pass: nothing without a
password, each service on its own keys only, no admin commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError
from redis.retry import Retry
from support.redis_server import RedisServer

# The key prefixes the services use (GatewaySettings / AuthSettings.redis_prefix).
PREFIXES = {"gateway": "gatehouse:gateway:", "auth": "gatehouse:auth:"}
# What no service may run: each could take Redis (and every replica) down.
ADMIN_COMMANDS = [
    ("FLUSHALL",),
    ("CONFIG", "SET", "maxmemory", "1"),
    ("KEYS", "*"),
    ("SCRIPT", "FLUSH"),
    ("ACL", "LIST"),
    ("CLIENT", "KILL", "TYPE", "normal"),
]
# The revocation denylist both services share: auth writes it, the gateway reads it.
REVOCATION = "gatehouse:revocation:{rev}:"
# A script like the auth service's sliding window: Redis checks the keys it touches.
_SCRIPT = "redis.call('ZADD', KEYS[1], 1, ARGV[1]); return redis.call('ZCARD', KEYS[1])"


@contextmanager
def redis_with_acl(acl_file: Path) -> Iterator[int]:
    """``redis-server`` on a free loopback port with ``acl_file``; yields the port."""
    server = RedisServer.create(None, "redis-acl", "--aclfile", str(acl_file))
    try:
        try:
            server.start()
        except RuntimeError as exc:
            raise RuntimeError(f"redis-server refused {acl_file.name}:\n{exc}") from exc
        yield server.port
    finally:
        server.stop()


def _client(port: int, url: str | None = None, **options: object) -> redis.Redis:
    """A client that takes the first refusal as the answer.

    redis-py retries a refused login (AuthenticationError is a ConnectionError)
    three times with a growing backoff: seconds of sleep per refusal checked,
    proving nothing more.
    """
    retry = Retry(NoBackoff(), 0)
    if url is not None:
        return redis.Redis.from_url(on_port(url, port), retry=retry)
    return redis.Redis(port=port, retry=retry, **options)  # type: ignore[arg-type]


def on_port(url: str, port: int) -> str:
    """``url`` (redis://user:password@host:6379/0) pointed at 127.0.0.1:``port``."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@127.0.0.1:{port}"))


def check_service_users(port: int, urls: dict[str, str]) -> None:
    """Each of ``urls`` (service -> REDIS_URL as the service gets it) works for what
    the service does, and for nothing else; strangers get nothing."""
    # RESP2: no HELLO, so the refusal (NOAUTH) comes on the command itself.
    anonymous = _client(port, protocol=2)
    with pytest.raises(AuthenticationError, match="Authentication required"):
        anonymous.set(PREFIXES["gateway"] + "drain:service1:backend-1", "{}")
    anonymous.close()
    with pytest.raises(AuthenticationError):
        _client(port, username="default", password="").ping()
    with pytest.raises(AuthenticationError):
        _client(port, username="gateway", password="guessed").ping()
    probe = _client(port, username="healthcheck", password="anything")
    assert probe.ping()
    with pytest.raises(NoPermissionError):
        probe.get(PREFIXES["gateway"] + "cursor:service1")
    for service, url in urls.items():
        client = _client(port, url)
        own = PREFIXES[service]
        assert client.ping()
        # What the services do: the cursor (INCRBY, pipelined), drains (SET,
        # MGET, DEL), canary weights (a hash), the login limiter (a script), key expiry.
        assert client.incrby(own + "cursor:service1", 2) == 2
        with client.pipeline(transaction=False) as pipe:
            pipe.incrby(own + "cursor:service1", 1)
            pipe.incrby(own + "cursor:service2", 1)
            assert pipe.execute() == [3, 1]
        client.set(own + "drain:service1:backend-1", "{}")
        assert client.mget([own + "drain:service1:backend-1"]) == [b"{}"]
        assert client.pexpire(own + "drain:service1:backend-1", 60_000)
        assert client.delete(own + "drain:service1:backend-1") == 1
        # canary weights: one hash, written and read whole (HSET, HGETALL, HDEL)
        assert client.hset(own + "canary:weights", "service1", "{}") == 1
        assert client.hgetall(own + "canary:weights") == {b"service1": b"{}"}
        assert client.hdel(own + "canary:weights", "service1") == 1
        script = client.register_script(_SCRIPT)
        assert script(keys=[own + "login:ip:1"], args=["a"]) == 1
        # the gateway's rate limit script reads Redis's clock (TIME) in a script
        assert int(client.eval("return redis.call('TIME')[1]", 0)) > 0
        for other, prefix in PREFIXES.items():
            if other == service:
                continue
            # The finding: a written drain key took a route down. No other user can.
            with pytest.raises(NoPermissionError):
                client.set(prefix + "drain:service1:backend-1", "{}")
            with pytest.raises(NoPermissionError):
                client.get(prefix + "cursor:service1")
            with pytest.raises(NoPermissionError):
                client.hset(prefix + "canary:weights", "service1", "{}")
            with pytest.raises(NoPermissionError):
                script(keys=[prefix + "login:ip:1"], args=["a"])
        for command in ADMIN_COMMANDS:
            with pytest.raises(NoPermissionError):
                client.execute_command(*command)
        with pytest.raises(NoPermissionError):
            client.set("unprefixed", "1")
        check_revocation_rights(client, service)


def check_revocation_rights(client: redis.Redis, service: str) -> None:
    """Auth revokes (ZADD, prune, PUBLISH); the gateway resyncs (ZRANGE) and
    listens, and can neither write a revocation nor announce a forged one."""
    jti, events = REVOCATION + "jti", REVOCATION + "events"
    if service == "auth":
        client.zadd(jti, {"t1": 4_000_000_000})
        client.zremrangebyscore(jti, "-inf", 1)
        client.publish(events, '{"kind":"jti","id":"t1","exp":4000000000}')
    else:
        assert isinstance(client.zrange(jti, 0, -1, withscores=True), list)
        with pytest.raises(NoPermissionError):
            client.zadd(jti, {"forged": 1})
        with pytest.raises(NoPermissionError):
            client.zrem(jti, "t1")
        with pytest.raises(NoPermissionError):
            client.publish(events, "{}")
    pubsub = client.pubsub()
    pubsub.subscribe(events)
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    pubsub.close()
