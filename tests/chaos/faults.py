"""The fault injectors: each breaks one thing and, whatever happens, puts it back.

Every injector is a context manager: the fault holds inside the ``with``
block and is undone on the way out, even when a check inside failed, so one
fault never leaks into the next. Timings are left to the caller, who lines
them up with the load's clock (:meth:`chaos.load.BackgroundLoad.elapsed`).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

import httpx
from support.processes import ServiceProcess
from support.redis_server import RedisServer

from chaos.stores import OwnPostgres


def wait_until(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.1
) -> float | None:
    """Seconds until ``predicate()`` held, or None if it never did within ``timeout``."""
    started = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - started
        except (httpx.HTTPError, OSError):
            pass  # the thing polled may itself be down for now
        if time.monotonic() - started >= timeout:
            return None
        time.sleep(interval)


@contextmanager
def killed(process: ServiceProcess) -> Iterator[None]:
    """``kill -9`` (a crash: no drain, connections reset), restarted on the same port after."""
    process.kill()
    try:
        yield
    finally:
        process.start()


@contextmanager
def redis_down(server: RedisServer, how: Literal["stop", "freeze"]) -> Iterator[None]:
    """``stop``: the server exits (connections refused), and restarts empty on the same port.
    ``freeze``: SIGSTOP, so the port stays open and every call hangs until SIGCONT."""
    if how == "freeze":
        server.freeze()
    else:
        server.stop()
    try:
        yield
    finally:
        if how == "freeze":
            server.thaw()
        else:
            server.start()


@contextmanager
def postgres_down(cluster: OwnPostgres) -> Iterator[None]:
    """An immediate shutdown of the suite's own cluster (every connection dropped)."""
    cluster.stop("immediate")
    try:
        yield
    finally:
        cluster.start()


@contextmanager
def terminated(process: ServiceProcess, grace: float = 30.0) -> Iterator[float]:
    """SIGTERM and wait for the process to drain and exit; yields the seconds it took.
    Started again (same port) on the way out: one step of a rolling restart."""
    started = time.monotonic()
    process.signal(signal.SIGTERM)
    if process.process is not None:
        process.process.wait(timeout=grace)
    try:
        yield time.monotonic() - started
    finally:
        process.start()


@contextmanager
def slow_backend(backend: ServiceProcess, seconds: float) -> Iterator[None]:
    """The backend delays every echo by ``seconds`` (its health check stays fast)."""
    response = httpx.put(
        f"{backend.url}/__backend/faults", json={"latency_ms": seconds * 1000}, timeout=5
    )
    response.raise_for_status()
    try:
        yield
    finally:
        httpx.post(f"{backend.url}/__backend/reset", timeout=5).raise_for_status()
