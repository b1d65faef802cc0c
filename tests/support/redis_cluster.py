"""A real Redis Cluster and a real Redis Sentinel group, started by the tests that need them.

:class:`RedisClusterProcesses` starts ``redis-server --cluster-enabled yes``
nodes on free ports in a folder of their own (3 masters and one replica
each by default, so a master can fail over), joins them with
``redis-cli --cluster create``, and waits (bounded) until every node says
``cluster_state:ok`` and every master has its replica. A test may kill a
master and start it again (:meth:`RedisClusterProcesses.restart`: it comes
back as a replica of whoever took over); :meth:`RedisClusterProcesses.wait_healthy`
then brings the cluster back to full health, so one cluster serves a whole
module or session.

:class:`RedisSentinelGroup` starts a master, a replica and one sentinel
(``redis-server <file> --sentinel``, quorum 1) watching them under
:data:`SENTINEL_MASTER`; after a test killed the master (the sentinel
promotes the replica), :meth:`RedisSentinelGroup.restart` starts it again as
the new master's replica and waits until the group is whole.

Both only need Debian's ``redis-server`` and ``redis-tools`` (``redis-cli``);
sentinel mode is the same ``redis-server`` binary.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from support.processes import free_port
from support.redis_server import RedisServer

# Milliseconds without an answer before the cluster calls a node failed (and a
# replica takes its slots over). Low so a failover test is quick.
NODE_TIMEOUT_MS = 1000
SENTINEL_MASTER = "gatehouse"


def _client(port: int, timeout: float = 2.0) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1", port=port, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def _ask(port: int, *command: str) -> object:
    """One command to one node; None when it does not answer."""
    client = _client(port)
    try:
        return client.execute_command(*command)
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()


def _wait(check: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class RedisClusterProcesses:
    """``masters`` masters with ``replicas`` replicas each, on free ports under ``directory``."""

    def __init__(self, directory: Path, *, masters: int = 3, replicas: int = 1) -> None:
        self.directory = directory
        self.masters = masters
        self.replicas = replicas
        self.nodes: list[RedisServer] = []
        for index in range(masters * (1 + replicas)):
            port = free_port()
            node_dir = directory / f"node-{port}"
            node_dir.mkdir(parents=True, exist_ok=True)
            options = [
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(node_dir / "nodes.conf"),
                # The bus on a free port of its own (not port + 10000, which may be taken).
                "--cluster-port", str(free_port()),
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                # A replica may always take over, however long its master was gone.
                "--cluster-replica-validity-factor", "0",
                # The slots of a failed master fail; the others keep answering.
                "--cluster-require-full-coverage", "no",
                "--dir", str(node_dir),
            ]  # fmt: skip
            self.nodes.append(RedisServer.create(port, f"redis-cluster-{index}", *options))

    @property
    def url(self) -> str:
        """The ``REDIS_URL`` of the cluster: every node as a starting point."""
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        return f"redis+cluster://{hosts}/"

    def start(self) -> RedisClusterProcesses:
        """Start the nodes, join them, wait until whole; on any failure stop them all."""
        try:
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                list(pool.map(RedisServer.start, self.nodes))
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            created = subprocess.run(
                ["redis-cli", "--cluster", "create", *addresses,
                 "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            if created.returncode != 0:
                raise RuntimeError(
                    f"redis-cli --cluster create failed:\n{created.stdout}{created.stderr}"
                )
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        with ThreadPoolExecutor(max(1, len(self.nodes))) as pool:
            list(pool.map(RedisServer.stop, self.nodes))

    def running(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def node(self, port: int) -> RedisServer:
        return next(n for n in self.nodes if n.port == port)

    def client(self) -> redis.RedisCluster:
        """A cluster client for the test's own reads and writes."""
        return redis.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode("127.0.0.1", n.port) for n in self.running()],
            socket_timeout=2.0,
            require_full_coverage=False,
        )

    def master_of(self, key: str) -> RedisServer:
        """The node serving ``key``'s slot now (asked of a running node)."""
        asked = self.running()[0].port
        slot = int(str(_ask(asked, "CLUSTER", "KEYSLOT", key)))
        for start, end, port in _slots(asked):
            if start <= slot <= end:
                return self.node(port)
        raise LookupError(f"no master serves the slot of {key!r}")

    def masters_now(self) -> list[RedisServer]:
        found = []
        for node in self.running():
            role = _ask(node.port, "ROLE")
            if isinstance(role, list) and role and role[0] in (b"master", "master"):
                found.append(node)
        return found

    def restart(self, node: RedisServer) -> None:
        """Start a killed node again on its port; it rejoins from its nodes.conf."""
        node.stop()
        node.start()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every node answers ``cluster_state:ok`` and ``masters`` masters have a replica each."""

        def healthy() -> bool:
            for node in self.nodes:
                info = _ask(node.port, "CLUSTER", "INFO")
                if not isinstance(info, (bytes, str)):
                    return False
                text = info.decode() if isinstance(info, bytes) else info
                if "cluster_state:ok" not in text or "cluster_slots_ok:16384" not in text:
                    return False
            masters = self.masters_now()
            if len(masters) != self.masters:
                return False
            return all(_connected_replicas(m.port) >= self.replicas for m in masters)

        _wait(healthy, "the Redis Cluster to be whole", timeout)


def _slots(port: int) -> list[tuple[int, int, int]]:
    """(first slot, last slot, the port of the master serving them), as ``port`` sees it."""
    slots = _ask(port, "CLUSTER", "SLOTS")
    if not isinstance(slots, list):
        return []
    return [(int(entry[0]), int(entry[1]), int(entry[2][1])) for entry in slots]


def _connected_replicas(port: int) -> int:
    info = _ask(port, "INFO", "replication")
    if not isinstance(info, (bytes, str, dict)):
        return 0
    if isinstance(info, dict):
        return int(info.get("connected_slaves", 0))
    text = info.decode() if isinstance(info, bytes) else info
    for line in text.splitlines():
        if line.startswith("connected_slaves:"):
            return int(line.split(":", 1)[1])
    return 0


class RedisSentinelGroup:
    """A master, a replica and one sentinel (quorum 1) naming the master :data:`SENTINEL_MASTER`."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.master = RedisServer.create(None, "redis-sentinel-master", "--dir", str(directory))
        self.replica = RedisServer.create(
            None, "redis-sentinel-replica", "--dir", str(directory),
            "--replicaof", "127.0.0.1", str(self.master.port),
        )  # fmt: skip
        sentinel_port = free_port()
        config = directory / f"sentinel-{sentinel_port}.conf"
        config.write_text(
            f"port {sentinel_port}\n"
            "bind 127.0.0.1\n"
            f"dir {directory}\n"
            f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n"
            f"sentinel failover-timeout {SENTINEL_MASTER} 5000\n"
        )
        self.sentinel = RedisServer(
            name="redis-sentinel",
            command=["redis-server", str(config), "--sentinel"],
            port=sentinel_port,
        )

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{SENTINEL_MASTER}/0"

    def start(self) -> RedisSentinelGroup:
        try:
            self.master.start()
            self.replica.start()
            # The sentinel learns of replicas from the master's INFO, which it asks
            # when it connects and then only every 10 s: started before the
            # replica is linked, it would name none for those 10 s.
            _wait(
                lambda: _connected_replicas(self.master.port) >= 1,
                "the replica to link to the master",
                30.0,
            )
            self.sentinel.start()
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """The master the sentinel names is one, with its replica connected (after a
        failover too: a killed master started again comes back as the replica)."""
        _wait(self._healthy, "the sentinel to name a master with a connected replica", timeout)

    def _healthy(self) -> bool:
        port = self.master_port()
        if port is None or _connected_replicas(port) < 1:
            return False
        role = _ask(port, "ROLE")
        replicas = _ask(self.sentinel.port, "SENTINEL", "REPLICAS", SENTINEL_MASTER)
        return (
            isinstance(role, list)
            and role[0] in (b"master", "master")
            and isinstance(replicas, list)
            and len(replicas) >= 1
        )

    def restart(self, server: RedisServer) -> None:
        """Start a killed ``server`` again as the current master's replica; wait until whole.

        The sentinel would make it the replica too, but only at its next look at
        the server (every 10 s): this says at once what the sentinel would.
        """
        server.start()
        master = self.master_port()
        if master is not None and master != server.port:
            _ask(server.port, "REPLICAOF", "127.0.0.1", str(master))
        self.wait_healthy()

    def server_at(self, port: int) -> RedisServer:
        return self.master if self.master.port == port else self.replica

    def master_port(self) -> int | None:
        """The port the sentinel names as the master now."""
        answer = _ask(self.sentinel.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER)
        if isinstance(answer, list) and len(answer) == 2:
            return int(answer[1])
        return None

    def client(self) -> redis.Redis:
        """A client of the master the sentinel names, whichever that is by then."""
        sentinel = redis.sentinel.Sentinel([("127.0.0.1", self.sentinel.port)], socket_timeout=2.0)
        client: redis.Redis = sentinel.master_for(SENTINEL_MASTER, socket_timeout=2.0)
        return client

    def stop(self) -> None:
        for server in (self.sentinel, self.replica, self.master):
            with contextlib.suppress(Exception):
                server.thaw()
            server.stop()


@contextlib.contextmanager
def started_cluster(
    directory: Path, *, masters: int = 3, replicas: int = 1
) -> Iterator[RedisClusterProcesses]:
    """A whole cluster for the ``with`` block; every node is stopped after it."""
    cluster = RedisClusterProcesses(directory, masters=masters, replicas=replicas)
    cluster.start()  # stops what it started if it fails
    try:
        yield cluster
    finally:
        cluster.stop()


@contextlib.contextmanager
def started_sentinel(directory: Path) -> Iterator[RedisSentinelGroup]:
    """A sentinel group for the ``with`` block; all three processes are stopped after it."""
    group = RedisSentinelGroup(directory)
    try:
        yield group.start()
    finally:
        group.stop()
