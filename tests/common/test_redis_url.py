"""REDIS_URL's three forms (one server, Cluster, Sentinel): what parses, what is refused.

The refusals matter: a URL that does not parse must stop the service at
start (rather than reach the wrong Redis, or none, at the first request), and
its message must never repeat the password the URL carries.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gatehouse_auth.settings import AuthSettings
from gatehouse_common.redis_url import MAX_NODES, parse_redis_url
from gatehouse_gateway.settings import GatewaySettings

SECRET = "s3cret-pw"


def test_a_single_server_url_is_left_to_redis_py() -> None:
    for url in ("redis://127.0.0.1:6379/0", "rediss://h:6380/2", "unix:///run/redis.sock"):
        target = parse_redis_url(url)
        assert target.kind == "single" and target.url == url


def test_a_cluster_url_names_its_starting_nodes() -> None:
    target = parse_redis_url(f"redis+cluster://app:{SECRET}@10.0.0.1:7000,redis-b,[::1]:7002/")
    assert target.kind == "cluster" and not target.tls
    assert target.nodes == (("10.0.0.1", 7000), ("redis-b", 6379), ("::1", 7002))
    assert (target.username, target.password) == ("app", SECRET)
    assert SECRET not in repr(target) and SECRET not in target.describe()
    assert parse_redis_url("rediss+cluster://h:7000").tls
    assert parse_redis_url("redis+cluster://h:7000/0").nodes == (("h", 7000),)


def test_a_sentinel_url_names_the_sentinels_the_master_and_the_db() -> None:
    target = parse_redis_url(
        f"redis+sentinel://:{SECRET}@s1:26379,s2,s3:26380/mymaster/2"
        "?sentinel_username=watch&sentinel_password=other"
    )
    assert target.kind == "sentinel"
    assert target.nodes == (("s1", 26379), ("s2", 26379), ("s3", 26380))
    assert (target.master, target.db, target.username, target.password) == (
        "mymaster", 2, None, SECRET,
    )  # fmt: skip
    assert (target.sentinel_username, target.sentinel_password) == ("watch", "other")
    assert parse_redis_url("redis+sentinel://s1/mymaster").db == 0


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("127.0.0.1:6379", "needs a scheme"),
        (f"memcached://u:{SECRET}@h:11211", "unknown Redis URL scheme"),
        (f"redis+cluster://u:{SECRET}@h:7000/3", "names no database"),
        (f"redis+cluster://u:{SECRET}@h:7000?read_from_replicas=1", "takes no options"),
        (f"redis+cluster://u:{SECRET}@", "at least one host"),
        (f"redis+cluster://u:{SECRET}@h:99999", "port out of range"),
        (f"redis+cluster://u:{SECRET}@h:0", "port out of range"),
        (f"redis+cluster://u:{SECRET}@h:70x0", "not a number"),
        (f"redis+cluster://u:{SECRET}@h:\uff11\uff12", "not a number"),  # non-ASCII digits
        (f"redis+cluster://u:{SECRET}@bad_host!:7000", "not a host"),
        (f"redis+cluster://u:{SECRET}@a,,b", "not a host"),
        (f"redis+cluster://u:{SECRET}@[::1:7000", "not a host"),
        (f"redis+cluster://u:{SECRET}@h:7000#x", "no fragment"),
        ("redis+cluster://" + ",".join(["h:7000"] * (MAX_NODES + 1)), "at most"),
        (f"redis+sentinel://u:{SECRET}@s1:26379", "names its master"),
        (f"redis+sentinel://u:{SECRET}@s1:26379/", "names its master"),
        (f"redis+sentinel://u:{SECRET}@s1/m/1/2", "names its master"),
        (f"redis+sentinel://u:{SECRET}@s1/m%20x", "master name"),
        (f"redis+sentinel://u:{SECRET}@s1/m/x", "database"),
        (f"redis+sentinel://u:{SECRET}@s1/m/70000", "database"),
        (f"redis+sentinel://s1/m?password={SECRET}", "unknown Redis Sentinel URL option"),
        (f"redis+cluster://h:7000?{SECRET}", "takes no options, got \\(unreadable\\)"),
        # An unescaped "/" in the password: the host part is then its first half.
        ("redis+cluster://u:s3cret/pw@h:7000", "not a number"),
    ],
)
def test_a_malformed_url_is_refused_without_its_password(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as refused:
        parse_redis_url(url)
    assert SECRET not in str(refused.value) and "s3cret" not in str(refused.value)


@pytest.mark.parametrize("settings", [GatewaySettings, AuthSettings])
def test_the_services_refuse_a_bad_redis_url_at_start(
    settings: type[GatewaySettings] | type[AuthSettings],
) -> None:
    with pytest.raises(ValidationError) as refused:
        settings(redis_url=f"redis+cluster://u:{SECRET}@h:7000/3")
    assert "names no database" in str(refused.value)
    assert SECRET not in str(refused.value)
    good = settings(redis_url="redis+sentinel://s1:26379,s2:26379/gatehouse/0")
    assert good.redis_url == "redis+sentinel://s1:26379,s2:26379/gatehouse/0"
    assert settings(redis_url="").redis_url is None
