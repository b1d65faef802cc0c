"""The gateway as the benchmark runs it: a config file per setting, a process per config.

Config files follow ``services/gateway/config/demo.yaml``. The gateway is
started through its console entry (``python -m gatehouse_gateway``) exactly as
an operator would, with its own log file; the harness never imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gatehouse_loadtest.procs import ManagedProcess, free_port

BENCH_HOST = "bench.gatehouse.test"
READY_PATH = "/-/healthz"


@dataclass(frozen=True)
class GatewaySetting:
    """One way of running the gateway: the route's auth, the cursor's store, the workers."""

    auth: bool = False
    cursor: str = "local"
    workers: int = 1
    # REDIS_URL given to the process: a gateway without it loads no Redis client at all
    redis: bool = True
    extra_routes: Sequence[Mapping[str, object]] = field(default_factory=tuple)


def gateway_config(
    setting: GatewaySetting,
    *,
    port: int,
    backends: Sequence[str],
    jwks_url: str,
) -> dict[str, object]:
    """The YAML document (as a dict) for ``setting`` over ``backends``."""
    bench_route: dict[str, object] = {
        "name": "bench",
        "hosts": [BENCH_HOST],
        "path_prefix": "/",
        "auth": "required" if setting.auth else "none",
        "strategy": "round_robin",
        "backends": [{"url": url} for url in backends],
        "health_check": {"path": "/", "interval": 5},
    }
    return {
        "listen": {"address": "127.0.0.1", "port": port},
        "auth": {
            "jwks_url": jwks_url,
            "issuer": "gatehouse-auth",
            "audience": "gatehouse",
            "algorithms": ["EdDSA"],
        },
        "cursor": {"store": setting.cursor},
        "routes": [*setting.extra_routes, bench_route],
    }


def start_gateway(
    name: str,
    setting: GatewaySetting,
    *,
    workdir: Path,
    backends: Sequence[str],
    jwks_url: str,
    env: Mapping[str, str],
    repo_root: Path,
    python: str = sys.executable,
    tls: tuple[Path, Path] | None = None,
) -> tuple[ManagedProcess, str]:
    """Write the config, start the gateway, wait for its health endpoint; (process, url).

    ``python`` is the interpreter of the environment the gateway runs in.
    ``tls`` (certificate chain, key) adds a TLS listener (``--tls-port``, HTTP/2
    by ALPN) and the url returned is its https one; the main port still
    answers plain HTTP. ``gatehouse_common.devcerts.ensure_local_tls`` makes
    such files (and the CA a client needs to trust them).
    """
    port = free_port()
    admin_port = free_port()
    config_path = workdir / f"{name}.yaml"
    document = gateway_config(setting, port=port, backends=backends, jwks_url=jwks_url)
    config_path.write_text(yaml.safe_dump(document, sort_keys=False))
    command = [
        python,
        "-m",
        "gatehouse_gateway",
        "--config",
        str(config_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--admin-port",
        str(admin_port),
        "--workers",
        str(setting.workers),
        "--log-level",
        "warning",
    ]
    tls_port = free_port() if tls is not None else None
    if tls is not None:
        command += [
            "--tls-port",
            str(tls_port),
            "--tls-cert",
            str(tls[0]),
            "--tls-key",
            str(tls[1]),
        ]
    process = ManagedProcess(
        name,
        command,
        log_path=workdir / f"{name}.log",
        env={"GATEHOUSE_CONFIG": str(config_path), **env},
        cwd=repo_root,
    ).start()
    url = f"http://127.0.0.1:{port}" if tls_port is None else f"https://127.0.0.1:{tls_port}"
    try:
        # the gateway's own endpoints answer on its admin listener only
        process.wait_http(f"http://127.0.0.1:{admin_port}{READY_PATH}", timeout_s=60)
    except BaseException:
        process.stop()
        raise
    return process, url
