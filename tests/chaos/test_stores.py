"""The suite's own PostgreSQL and Redis: started, stopped, frozen and back, on free ports."""

from __future__ import annotations

import contextlib
import time

import psycopg2
import pytest
import redis
from support.redis_server import RedisServer

from chaos.stores import OwnPostgres


@pytest.fixture
def own_redis(private_redis: RedisServer) -> RedisServer:
    private_redis.start()
    return private_redis


def test_redis_stops_and_comes_back_on_the_same_port(own_redis: RedisServer) -> None:
    assert own_redis.port not in (6379,)
    client = own_redis.client()
    client.set("chaos:key", "1")
    own_redis.stop()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    own_redis.start()
    assert client.ping()
    assert client.get("chaos:key") is None  # no persistence: a restart is a clean slate
    client.close()


def test_a_frozen_redis_hangs_until_thawed(own_redis: RedisServer) -> None:
    client = own_redis.client(timeout=0.3)
    own_redis.freeze()
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        client.ping()
    assert time.monotonic() - started >= 0.25
    own_redis.thaw()
    assert client.ping()
    client.close()


def test_own_postgres_survives_an_immediate_stop() -> None:
    cluster = OwnPostgres()
    try:
        cluster.init().start()
        assert cluster.port != 5432
        cluster.query("CREATE TABLE acknowledged (id int PRIMARY KEY)")
        cluster.query("INSERT INTO acknowledged VALUES (1), (2)")
        with contextlib.closing(psycopg2.connect(cluster.dsn)) as held:
            cluster.stop()  # immediate: like a crash, every connection dropped
            assert not cluster.running()
            with pytest.raises(psycopg2.Error), held.cursor() as cursor:
                cursor.execute("SELECT 1")
        cluster.start()
        assert cluster.query("SELECT id FROM acknowledged ORDER BY id") == [(1,), (2,)]
    finally:
        cluster.destroy()
    assert not cluster.root.exists()
