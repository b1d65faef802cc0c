"""One Redis URL, three deployments: a single server, Redis Cluster, Redis Sentinel.

Every Gatehouse service reads one ``REDIS_URL``. Users who outgrow one Redis
run Cluster or Sentinel, which redis-py reaches through other client classes;
this module turns the URL into the right client, so the services (the
gateway's asyncio clients, auth's blocking one) share one parser and one set
of rules. The forms:

- ``redis://[user:password@]host:port/db``, ``rediss://...`` (TLS),
  ``unix://...``: one server, exactly as redis-py reads them.
- ``redis+cluster://[user:password@]host:port[,host:port...][/]`` (TLS:
  ``rediss+cluster://``): Redis Cluster; the nodes listed are only where the
  client starts, it learns the rest from the cluster. No database number
  (Cluster has only 0).
- ``redis+sentinel://[user:password@]host:port[,host:port...]/master-name[/db]``
  (TLS: ``rediss+sentinel://``): the master Sentinel names ``master-name``,
  found through the sentinels listed; the credentials are the master's.
  Sentinels that want a password of their own take
  ``?sentinel_username=...&sentinel_password=...``.

Ports default to 6379 (cluster nodes) and 26379 (sentinels). Anything else in
a cluster or sentinel URL (an unknown query parameter, a malformed host or
port, more than :data:`MAX_NODES` nodes) is refused with a ValueError that
never repeats the password, so a typo fails the start rather than silently
reaching the wrong place.

redis-py is imported only when a client is made: a process without
``REDIS_URL`` should not pay its memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, unquote

if TYPE_CHECKING:
    import redis
    import redis.asyncio

RedisErrors = tuple[type[BaseException], ...]
Kind = Literal["single", "cluster", "sentinel"]

MAX_NODES = 64
CLUSTER_PORT = 6379
SENTINEL_PORT = 26379

_SINGLE_SCHEMES = {"redis", "rediss", "unix"}
_SCHEMES: dict[str, tuple[Kind, bool]] = {
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
}
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]{2,45}\]")
_MASTER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_SENTINEL_OPTIONS = {"sentinel_username", "sentinel_password"}


@dataclass(frozen=True)
class RedisTarget:
    """What a ``REDIS_URL`` names, checked. ``repr`` leaves the passwords out."""

    kind: Kind
    url: str  # the URL as given (a single server's goes to redis-py as is)
    nodes: tuple[tuple[str, int], ...] = ()
    tls: bool = False
    username: str | None = None
    password: str | None = None
    master: str | None = None  # Sentinel's name of the master
    db: int = 0
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    def __repr__(self) -> str:
        return f"RedisTarget({self.describe()})"

    def describe(self) -> str:
        """For logs and the admin view: the kind and where, never a password."""
        if self.kind == "single":
            return "single server"
        nodes = ",".join(f"{host}:{port}" for host, port in self.nodes)
        if self.kind == "cluster":
            return f"cluster via {nodes}"
        return f"sentinel master {self.master!r} db {self.db} via {nodes}"


def parse_redis_url(url: str) -> RedisTarget:
    """The target of ``url``; ValueError (without the password) when it is not one."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError("a Redis URL needs a scheme: redis://, rediss://, unix://, "
                         "redis+cluster:// or redis+sentinel://")  # fmt: skip
    if scheme in _SINGLE_SCHEMES:
        return RedisTarget(kind="single", url=url)
    if scheme not in _SCHEMES:
        shown = repr(scheme) if re.fullmatch(r"[a-z0-9+.-]{1,20}", scheme) else "(unreadable)"
        raise ValueError(
            f"unknown Redis URL scheme {shown}: use redis://, rediss://, unix://, "
            "redis+cluster://, rediss+cluster://, redis+sentinel:// or rediss+sentinel://"
        )
    kind, tls = _SCHEMES[scheme]
    if "#" in rest:
        raise ValueError("a Redis URL has no fragment (#)")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    nodes = _nodes(hosts, CLUSTER_PORT if kind == "cluster" else SENTINEL_PORT)
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=False)) if query else {}
    if kind == "cluster":
        if path not in ("", "0"):
            raise ValueError("a Redis Cluster URL names no database (Cluster has only 0)")
        if options:
            raise ValueError(f"a Redis Cluster URL takes no options, got {_names(options)}")
        return RedisTarget(
            kind=kind, url=url, nodes=nodes, tls=tls, username=username, password=password
        )
    unknown = set(options) - _SENTINEL_OPTIONS
    if unknown:
        raise ValueError(
            f"unknown Redis Sentinel URL option(s) {_names(unknown)}: "
            f"only {sorted(_SENTINEL_OPTIONS)}"
        )
    master, db = _master_and_db(path)
    return RedisTarget(
        kind=kind,
        url=url,
        nodes=nodes,
        tls=tls,
        username=username,
        password=password,
        master=master,
        db=db,
        sentinel_username=options.get("sentinel_username") or None,
        sentinel_password=options.get("sentinel_password") or None,
    )


def check_redis_url(value: str | None) -> str | None:
    """A settings validator: ``REDIS_URL`` unset stays unset, anything else must parse.

    Use it with ``hide_input_in_errors`` on the settings class: the URL may
    carry a password, which pydantic would otherwise repeat in the error.
    """
    if value:
        parse_redis_url(value)
    return value or None


def _names(options: Iterable[str]) -> str:
    """Option names for an error: plain ones as given, anything else not repeated."""
    return ", ".join(
        sorted(name if re.fullmatch(r"[A-Za-z0-9_]{1,40}", name) else "(unreadable)"
               for name in options)
    )  # fmt: skip


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    if not colon:  # redis://secret@host means a password, as redis-py reads it
        return None, unquote(user) or None
    return unquote(user) or None, unquote(password) or None


def _nodes(hosts: str, default_port: int) -> tuple[tuple[str, int], ...]:
    if not hosts:
        raise ValueError("a Redis Cluster or Sentinel URL needs at least one host:port")
    entries = hosts.split(",")
    if len(entries) > MAX_NODES:
        raise ValueError(f"at most {MAX_NODES} hosts in a Redis URL, got {len(entries)}")
    nodes: list[tuple[str, int]] = []
    for number, entry in enumerate(entries, 1):
        host, port = _host_port(entry, default_port, number)
        if (host, port) not in nodes:
            nodes.append((host, port))
    return tuple(nodes)


def _host_port(entry: str, default_port: int, number: int) -> tuple[str, int]:
    """``host[:port]`` or ``[v6]:port``; errors name the entry's place, never its text
    (a password with an unescaped ``/`` would land here)."""
    if entry.startswith("["):
        end = entry.find("]")
        host, rest = entry[: end + 1], entry[end + 1 :]
        if end < 0 or not _IPV6.fullmatch(host):
            raise ValueError(f"host {number} of the Redis URL is not a host name or address")
        host = host[1:-1]
    else:
        host, colon, port_text = entry.partition(":")
        rest = colon + port_text
        if not _HOST.fullmatch(host):
            raise ValueError(f"host {number} of the Redis URL is not a host name or address")
    if not rest:
        return host, default_port
    port_text = rest[1:]
    if not rest.startswith(":") or not port_text.isascii() or not port_text.isdigit():
        raise ValueError(f"host {number} of the Redis URL has a port that is not a number")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"host {number} of the Redis URL has a port out of range")
    return host, port


def _master_and_db(path: str) -> tuple[str, int]:
    parts = path.strip("/").split("/") if path.strip("/") else []
    if not parts or len(parts) > 2:
        raise ValueError(
            "a Redis Sentinel URL names its master: redis+sentinel://host:port/<master-name>[/<db>]"
        )
    master = unquote(parts[0])
    if not _MASTER.fullmatch(master):
        raise ValueError("the Sentinel master name must be letters, digits, '.', '_' or '-'")
    db = 0
    if len(parts) == 2:
        if not parts[1].isascii() or not parts[1].isdigit() or int(parts[1]) > 65535:
            raise ValueError("the database of a Redis Sentinel URL must be a number up to 65535")
        db = int(parts[1])
    return master, db


def redis_errors(target: RedisTarget) -> RedisErrors:
    """The exceptions that mean the Redis of ``target`` is unreachable (or mid-failover)."""
    from redis.exceptions import RedisClusterException, RedisError

    errors: RedisErrors = (RedisError, OSError, TimeoutError)
    return (*errors, RedisClusterException) if target.kind == "cluster" else errors


def connect_async(
    url: str, *, timeout: float, retries: int = 0, backoff: float = 0.0
) -> tuple[redis.asyncio.Redis, RedisErrors]:
    """An asyncio client for ``url`` (any of the three forms), and its unreachable errors.

    ``timeout`` bounds every connect and reply; ``retries`` (after ``backoff``
    seconds each) is how often a failed command is tried again before it
    raises. A Cluster client is typed as a plain client: the commands the
    services use are the same on both.
    """
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.asyncio.retry
    import redis.asyncio.sentinel

    client: redis.asyncio.Redis = _connect(
        url,
        timeout,
        retries,
        backoff,
        plain=redis.asyncio.Redis,
        cluster=redis.asyncio.cluster,
        sentinel=redis.asyncio.sentinel.Sentinel,
        retry=redis.asyncio.retry.Retry,
    )
    return client, redis_errors(parse_redis_url(url))


def connect_sync(
    url: str,
    *,
    timeout: float,
    retries: int = 0,
    backoff: float = 0.0,
    health_check_interval: float = 0,
) -> tuple[redis.Redis, RedisErrors]:
    """The blocking client of :func:`connect_async` (auth runs in threads)."""
    import redis
    import redis.cluster
    import redis.retry
    import redis.sentinel

    client: redis.Redis = _connect(
        url,
        timeout,
        retries,
        backoff,
        plain=redis.Redis,
        cluster=redis.cluster,
        sentinel=redis.sentinel.Sentinel,
        retry=redis.retry.Retry,
        health_check_interval=health_check_interval,
    )
    return client, redis_errors(parse_redis_url(url))


def _connect(
    url: str,
    timeout: float,
    retries: int,
    backoff: float,
    *,
    plain: Any,
    cluster: Any,
    sentinel: Any,
    retry: Any,
    **extra: Any,
) -> Any:
    """One builder for both flavours: redis-py's asyncio and blocking clients take
    the same arguments, so only the classes (``plain``, ``cluster``'s module,
    ``sentinel``, ``retry``) differ."""
    from redis.backoff import ConstantBackoff, NoBackoff

    target = parse_redis_url(url)
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": retry(ConstantBackoff(backoff) if backoff else NoBackoff(), retries),
        **extra,
    }
    if target.kind == "single":
        return plain.from_url(url, **common)
    if target.kind == "cluster":
        return cluster.RedisCluster(
            startup_nodes=[cluster.ClusterNode(host, port) for host, port in target.nodes],
            username=target.username,
            password=target.password,
            ssl=target.tls,
            # A failed master leaves its slots uncovered until a replica takes
            # over; the other slots keep working meanwhile.
            require_full_coverage=False,
            **common,
        )
    sentinel_kwargs = _sentinel_kwargs(target, timeout)
    group = sentinel(list(target.nodes), sentinel_kwargs=sentinel_kwargs, **common)
    return group.master_for(
        target.master or "",
        db=target.db,
        username=target.username,
        password=target.password,
        ssl=target.tls,
    )


def _sentinel_kwargs(target: RedisTarget, timeout: float) -> dict[str, Any]:
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "username": target.sentinel_username,
        "password": target.sentinel_password,
        "ssl": target.tls,
    }
