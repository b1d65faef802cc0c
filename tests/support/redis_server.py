"""A ``redis-server`` of a test's own, on a free port, to stop, kill or freeze.

The machine's shared Redis (6379) serves every other test and engineer, so an
outage is never injected there: a test that takes Redis away starts its own.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from support.processes import ServiceProcess, free_port


@dataclass
class RedisServer(ServiceProcess):
    """``redis-server`` in the foreground on its own port: no persistence, nothing shared."""

    ready_path: str = ""

    @classmethod
    def create(cls, port: int | None = None, name: str = "redis", *args: str) -> RedisServer:
        """Not started yet; ``args`` are more ``redis-server`` options (``--aclfile``...)."""
        port = port or free_port()
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--daemonize", "no", *args]  # fmt: skip
        return cls(name=name, command=command, port=port)

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A client that reports an outage at once (redis-py retries thrice by default)."""
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )

    def wait_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            client = self.client()
            try:
                if client.ping():
                    return
            except (redis.AuthenticationError, redis.ResponseError):
                return  # it answers, and refuses a client without a user (an ACL file)
            except redis.RedisError:
                time.sleep(0.05)
            finally:
                client.close()
        raise TimeoutError(f"redis not ready on port {self.port}:\n{self.log_tail()}")

    def freeze(self) -> None:
        """SIGSTOP: the port stays open and every call hangs, the nastiest outage."""
        self.signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.signal(signal.SIGCONT)
