"""Helpers shared by the operator view's tests (issue 9): admin calls and a bounded load."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from support.processes import ServiceProcess

ADMIN = "/-/admin"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_state(gateway: ServiceProcess, token: str) -> dict[str, Any]:
    response = httpx.get(gateway.admin_url + ADMIN + "/state", headers=bearer(token), timeout=10)
    response.raise_for_status()
    state: dict[str, Any] = response.json()
    return state


def backend_of(state: dict[str, Any], route: str, backend: ServiceProcess) -> dict[str, Any]:
    """The admin state of ``backend`` (a process, named host:port) in ``route``."""
    name = f"127.0.0.1:{backend.port}"
    found = next(r for r in state["routes"] if r["name"] == route)
    view: dict[str, Any] = next(b for b in found["backends"] if b["name"] == name)
    return view


def drain_path(route: str, backend: ServiceProcess, action: str) -> str:
    return f"{ADMIN}/routes/{route}/backends/127.0.0.1:{backend.port}/{action}"


def wait_until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll ``check`` every 0.1 s; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Outcome:
    sent: float
    done: float
    gateway: str
    status: int
    instance: str


@dataclass
class Load:
    """Requests sent by a few threads until stopped (bounded), every outcome kept."""

    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def since(self, moment: float) -> list[Outcome]:
        with self.lock:
            return [o for o in self.outcomes if o.sent >= moment]


@contextmanager
def load(
    gateways: list[ServiceProcess],
    host: str,
    *,
    threads: int = 6,
    max_requests: int = 4000,
) -> Iterator[Load]:
    """GETs to each gateway in turn from ``threads`` threads, at most ``max_requests`` each."""
    result = Load()
    stop = threading.Event()

    def run(index: int) -> None:
        clients = [
            httpx.Client(base_url=g.url, headers={"Host": host}, timeout=30) for g in gateways
        ]
        try:
            for sent_count in range(max_requests):
                if stop.is_set():
                    return
                turn = (index + sent_count) % len(clients)
                sent = time.monotonic()
                try:
                    response = clients[turn].get(f"/load/{index}/{sent_count}")
                except httpx.HTTPError as exc:
                    result.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                result.record(
                    Outcome(
                        sent,
                        time.monotonic(),
                        gateways[turn].url,
                        response.status_code,
                        response.headers.get("x-backend-instance", ""),
                    )
                )
        finally:
            for client in clients:
                client.close()

    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield result
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
