"""The gateway as a process on free ports, its config documents and metrics.

:func:`gateway_process` builds one gateway (its admin listener on a port of
its own); :class:`Launcher` starts fake backends and gateways for a test and
stops them all after it (the ``launcher`` fixtures in tests/conftest.py).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from support.backends import fake_backend
from support.processes import ServiceProcess, free_port, gateway_command, stop_all

HOST = "app.gatehouse.test"


class GatewayProcess(ServiceProcess):
    """A running gateway plus the config file it reads."""

    config_path: Path

    def write_config(self, document: Mapping[str, Any]) -> None:
        write_yaml(self.config_path, document)

    def client(self, **kwargs: Any) -> httpx.Client:
        options: dict[str, Any] = {"timeout": 30, "headers": {"Host": HOST}, **kwargs}
        return httpx.Client(base_url=self.url, **options)

    def metrics(self) -> str:
        return httpx.get(self.admin_url + "/-/metrics", timeout=10).text


def gateway_process(
    config_path: Path,
    *,
    name: str = "gateway",
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    workers: int | None = None,
    ready_path: str = "/-/healthz",
) -> GatewayProcess:
    """A gateway (not started yet) reading ``config_path``, on ``port`` or a free one.

    Its admin listener (``/-/...``) gets a free port of its own; readiness is
    asked there. ``env`` is the whole of what the test sets (``REDIS_URL``
    included): nothing is added.
    """
    port = port or free_port()
    admin_port = free_port()
    command = gateway_command(config_path, port, admin_port)
    if workers is not None:
        command += ["--workers", str(workers)]
    process = GatewayProcess(
        name=name,
        command=command,
        port=port,
        admin_port=admin_port,
        ready_path=ready_path,
        env=dict(env or {}),
    )
    process.config_path = config_path
    return process


def write_yaml(path: Path, document: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(dict(document), sort_keys=False))
    tmp.replace(path)


def gateway_route(
    backends: Sequence[ServiceProcess | str],
    *,
    name: str = "app",
    hosts: Sequence[str] = (HOST,),
    **extra: Any,
) -> dict[str, Any]:
    """A route over ``backends`` (processes or URLs) for ``hosts``."""
    return {
        "name": name,
        "hosts": list(hosts),
        "backends": [{"url": b if isinstance(b, str) else b.url} for b in backends],
        **extra,
    }


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


class Launcher:
    """Starts fake backends (several at once) and gateways; :meth:`stop_all` ends them.

    Processes start in parallel because each takes a couple of seconds to
    import and bind, and the suite's time budget is shared.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[ServiceProcess] = []

    def backends(self, count: int, *args: str, prefix: str = "backend") -> list[ServiceProcess]:
        processes = [fake_backend(f"{prefix}-{index + 1}", *args) for index in range(count)]
        self.started.extend(processes)
        with ThreadPoolExecutor(max_workers=count) as pool:
            list(pool.map(ServiceProcess.start, processes))
        return processes

    def gateway(
        self,
        document: Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        workers: int = 1,
        name: str = "gateway",
        port: int | None = None,
    ) -> GatewayProcess:
        port = port or free_port()
        config_path = self.directory / f"{name}-{port}.yaml"
        write_yaml(config_path, document)
        process = gateway_process(
            config_path,
            name=name,
            port=port,
            workers=workers,
            env={"REDIS_URL": "", "GATEHOUSE_GATEWAY_LOG_LEVEL": "info", **(env or {})},
        )
        self.started.append(process)
        process.start()
        return process

    def stop_all(self) -> None:
        stop_all(self.started)
        self.started.clear()


class RawBackend:
    """A backend that answers every request with the same raw bytes, then hangs up.

    For responses the fake backend cannot make: chunked bodies, bodies cut
    short, odd framing.
    """

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(self.response)

    def close(self) -> None:
        self.sock.close()
