"""The gateway as a user starts it: ``gatehouse-gateway --config <file>``, every default.

The other gateway targets run with the bench's own flags and environment
(``--log-level warning``, a config in the gateway's own format with health
checks and a local cursor named). A user who reads the README runs the
console script on a config in the original app's format and sets nothing
else; this target does exactly that, so ``make bench`` also shows what they
get. The one setting it adds is a free port for the admin listener (the
default, 9901, may be taken by a demo on the same machine), which changes no
request's path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from gatehouse_loadtest.gateway import BENCH_HOST, READY_PATH
from gatehouse_loadtest.procs import ManagedProcess, free_port

CONSOLE_SCRIPT = "gatehouse-gateway"


def original_config(port: int, backends: Sequence[str], *, auth: bool = False) -> dict[str, object]:
    """The bench route in the original (Flask) app's config format.

    The gateway maps it (``gatehouse_gateway/config/original.py``): the
    service becomes a round-robin route, ``/metrics`` answers on the public
    port, the auth and accounts-page routes are added, and the JWKS is looked
    for at the auth service's default address.
    """
    hosts = []
    for url in backends:
        parts = urlsplit(url)
        hosts.append({"address": parts.hostname, "port": parts.port})
    return {
        "proxy": {
            "listen": {"address": "127.0.0.1", "port": port},
            "auth": auth,
            "services": [
                {
                    "name": "bench",
                    "domain": BENCH_HOST,
                    "loadbalancing": "roundrobin",
                    "hosts": hosts,
                }
            ],
        }
    }


def console_script(python: str) -> Path:
    """The ``gatehouse-gateway`` script installed beside ``python`` in its venv."""
    return Path(python).absolute().parent / CONSOLE_SCRIPT


def start_user_gateway(
    name: str,
    *,
    python: str,
    workdir: Path,
    backends: Sequence[str],
    env: Mapping[str, str] | None = None,
) -> tuple[ManagedProcess, str]:
    """Write the original-format config, run the console script on it; (process, url)."""
    port = free_port()
    admin_port = free_port()
    config_path = workdir / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(original_config(port, backends), sort_keys=False))
    process = ManagedProcess(
        name,
        [str(console_script(python)), "--config", str(config_path)],
        log_path=workdir / f"{name}.log",
        env={"GATEHOUSE_GATEWAY_ADMIN_PORT": str(admin_port), **(env or {})},
        cwd=workdir,
    ).start_ready(f"http://127.0.0.1:{admin_port}{READY_PATH}")
    return process, f"http://127.0.0.1:{port}"
