"""The gateway as the benchmark runs it: a config file per setting, a process per config.

Config files follow ``services/gateway/config/demo.yaml``. The gateway is
started through its module entry (``python -m gatehouse_gateway``) with the
bench's own flags and environment (log level warning, no access log), or, for
the ``granian`` settings, by granian's command line on the same app factory;
the harness never imports it. :mod:`gatehouse_loadtest.user_gateway` starts it
the way a user does instead.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from gatehouse_loadtest.procs import ManagedProcess, free_port
from gatehouse_loadtest.tls import CertFiles

BENCH_HOST = "bench.gatehouse.test"
READY_PATH = "/-/healthz"
APP_FACTORY = "gatehouse_gateway.app:create_app"

# uvicorn: `python -m gatehouse_gateway` (uvicorn with the gatehouse edge protocol,
# as shipped); granian-asgi: granian's ASGI interface on the same app factory.
Server = Literal["uvicorn", "granian-asgi"]


@dataclass(frozen=True)
class GatewaySetting:
    """One way of running the gateway: the route's auth, the cursor's store, the workers."""

    auth: bool = False
    cursor: str = "local"
    workers: int = 1
    # REDIS_URL given to the process: a gateway without it loads no Redis client at all
    redis: bool = True
    extra_routes: Sequence[Mapping[str, object]] = field(default_factory=tuple)
    server: Server = "uvicorn"
    # a TLS listener (config ``listeners:``) with this certificate; wrk is sent there
    tls: CertFiles | None = None
    # the bench route's ``rate_limits:`` (services/gateway/README.md, "Rate limits")
    rate_limits: Sequence[Mapping[str, object]] = field(default_factory=tuple)


class GatewayUnavailable(RuntimeError):
    """This gateway cannot run the setting (its config check refused it); the reason."""


def gateway_config(
    setting: GatewaySetting,
    *,
    port: int,
    backends: Sequence[str],
    jwks_url: str,
    tls_port: int | None = None,
) -> dict[str, object]:
    """The YAML document (as a dict) for ``setting`` over ``backends``.

    With ``setting.tls``, one more listener on ``tls_port`` terminates TLS with
    that certificate (the gateway's ``listeners:`` section), beside the plain one.
    """
    bench_route: dict[str, object] = {
        "name": "bench",
        "hosts": [BENCH_HOST],
        "path_prefix": "/",
        "auth": "required" if setting.auth else "none",
        "strategy": "round_robin",
        "backends": [{"url": url} for url in backends],
        "health_check": {"path": "/", "interval": 5},
    }
    if setting.rate_limits:
        bench_route["rate_limits"] = [dict(limit) for limit in setting.rate_limits]
    document: dict[str, object] = {
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
    if setting.tls is not None:
        if tls_port is None:
            raise ValueError("a TLS setting needs a port for its listener")
        certificate = {"cert_file": str(setting.tls.cert), "key_file": str(setting.tls.key)}
        document["listeners"] = [
            {"address": "127.0.0.1", "port": tls_port, "tls": {"certificates": [certificate]}}
        ]
    return document


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
    wrapper: Sequence[str] = (),
    ready_timeout_s: float = 60.0,
) -> tuple[ManagedProcess, str]:
    """Write the config, start the gateway, wait for its health endpoint; (process, url).

    ``python`` is the interpreter of the environment the gateway runs in;
    ``wrapper`` goes before the command (``valgrind ...``: the process is then
    the wrapper's, which runs the gateway in its own pid).
    """
    port = free_port()
    admin_port = free_port()
    tls_port = free_port() if setting.tls is not None else None
    config_path = workdir / f"{name}.yaml"
    document = gateway_config(
        setting, port=port, backends=backends, jwks_url=jwks_url, tls_port=tls_port
    )
    config_path.write_text(yaml.safe_dump(document, sort_keys=False))
    if setting.tls is not None:
        check_config(python, config_path, repo_root)
    if setting.server == "uvicorn":
        command = uvicorn_command(python, config_path, port, admin_port, setting.workers)
        # the gateway's own endpoints answer on its admin listener only
        ready_url, ready_headers = f"http://127.0.0.1:{admin_port}{READY_PATH}", {}
    else:
        command = granian_command(python, "asgi", APP_FACTORY, port, setting.workers)
        # granian binds one socket: no admin listener, so ask the bench route itself
        ready_url, ready_headers = f"http://127.0.0.1:{port}/", {"Host": BENCH_HOST}
    process = ManagedProcess(
        name,
        [*wrapper, *command],
        log_path=workdir / f"{name}.log",
        env={
            "GATEHOUSE_CONFIG": str(config_path),
            # what `python -m gatehouse_gateway` sets for its workers; the app
            # factory reads its settings from the environment under granian too
            "GATEHOUSE_GATEWAY_PORT": str(port),
            "GATEHOUSE_GATEWAY_ADMIN_PORT": str(admin_port),
            "GATEHOUSE_GATEWAY_LOG_LEVEL": "warning",
            "FORWARDED_ALLOW_IPS": "",
            **env,
        },
        cwd=repo_root,
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(ready_url, timeout_s=ready_timeout_s, headers=ready_headers)
        if setting.tls is not None:
            url = f"https://127.0.0.1:{tls_port}"
            process.wait_http(
                url + "/", timeout_s=30, headers={"Host": BENCH_HOST}, ca_file=setting.tls.ca
            )
    except BaseException:
        process.stop()
        raise
    return process, url


def check_config(python: str, config_path: Path, repo_root: Path) -> None:
    """``gatehouse-gateway --check`` on the file; :class:`GatewayUnavailable` if refused.

    A gateway without a feature the setting needs (a TLS listener) refuses
    the key by name, and the bench reports the target as unavailable.
    """
    done = subprocess.run(
        [python, "-m", "gatehouse_gateway", "--config", str(config_path), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=repo_root,
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"--check exited {done.returncode}"
        # the report is committed: the run's temporary folder stays out of it
        raise GatewayUnavailable(reason.replace(str(config_path), config_path.name))


def uvicorn_command(
    python: str, config_path: Path, port: int, admin_port: int, workers: int
) -> list[str]:
    """``python -m gatehouse_gateway`` with the bench's flags (log level warning)."""
    return [
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
        str(workers),
        "--log-level",
        "warning",
    ]


def granian_command(
    python: str,
    interface: Literal["asgi", "rsgi"],
    target: str,
    port: int,
    workers: int = 1,
    *,
    factory: bool = True,
) -> list[str]:
    """granian serving ``target`` on ``port``: uvloop, one runtime thread, no WebSocket.

    One runtime thread per worker is granian's default; it is spelled out so
    a granian worker uses what a uvicorn worker does: one Python thread
    serving, Rust I/O beside it.
    """
    command = [
        python,
        "-m",
        "granian",
        "--interface",
        interface,
        "--loop",
        "uvloop",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--runtime-threads",
        "1",
        "--no-ws",
        "--log-level",
        "warning",
    ]
    if factory:
        command.append("--factory")
    return [*command, target]
