"""The server comparison (``--servers``): the same bare app under each candidate server.

Which HTTP server the gateway runs on is chosen by measurement (issue 13):
uvicorn with the gatehouse edge protocol (as every service is served today),
granian's ASGI interface, and granian's RSGI interface, each serving
:mod:`gatehouse_loadtest.bare_app`'s "return 200", one worker. The gateway
itself under granian is a :class:`~gatehouse_loadtest.gateway.GatewaySetting`
with ``server="granian-asgi"``. They run in a venv of their own
(``.venv-bench-servers``: the gateway's dependencies plus granian), so granian
is never a dependency of the gateway's image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gatehouse_loadtest.gateway import granian_command
from gatehouse_loadtest.procs import ManagedProcess

LOADTEST = Path(__file__).resolve().parents[1]
BARE_MODULE = "gatehouse_loadtest.bare_app"


@dataclass(frozen=True)
class BareServer:
    description: str
    server: Literal["uvicorn-edge", "granian"]
    interface: Literal["asgi", "rsgi"] = "asgi"


BARE_SERVERS: dict[str, BareServer] = {
    "server-uvicorn-edge": BareServer(
        "bare 200 app, uvicorn + gatehouse edge protocol (uvloop), 1 worker", "uvicorn-edge"
    ),
    "server-granian-asgi": BareServer("bare 200 app, granian ASGI, 1 worker", "granian", "asgi"),
    "server-granian-rsgi": BareServer("bare 200 app, granian RSGI, 1 worker", "granian", "rsgi"),
}


def bare_server_command(name: str, python: str, port: int) -> list[str]:
    """The command line of the bare app under server ``name``."""
    spec = BARE_SERVERS[name]
    if spec.server == "uvicorn-edge":
        return [python, "-m", BARE_MODULE, "--port", str(port)]
    target = f"{BARE_MODULE}:{'rsgi_app' if spec.interface == 'rsgi' else 'app'}"
    return granian_command(python, spec.interface, target, port, factory=False)


def bare_server_env() -> dict[str, str]:
    """The harness is not installed: the server finds the bare app on PYTHONPATH."""
    inherited = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": f"{LOADTEST}{os.pathsep}{inherited}" if inherited else str(LOADTEST)}


def start_bare_server(name: str, *, python: str, port: int, workdir: Path) -> ManagedProcess:
    """Start the bare app under server ``name`` and wait until it answers."""
    return ManagedProcess(
        name,
        bare_server_command(name, str(Path(python).absolute()), port),
        log_path=workdir / f"{name}.log",
        env=bare_server_env(),
        cwd=LOADTEST,
    ).start_ready(f"http://127.0.0.1:{port}/")
