"""Starting the real services as processes on free ports, and stopping them cleanly.

Every end-to-end test talks HTTP to processes started here. Each process's
output goes to a log file under ``tests/artifacts/logs`` so a failure can be
read after the fact; the process group is killed at teardown so nothing is
left behind, whatever the test did.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
LOGS = ARTIFACTS / "logs"


def _ephemeral_floor() -> int:
    """The lowest port the kernel picks for outgoing connections (32768 if unknown)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORT_FLOOR = 15000
_port_ceiling = _ephemeral_floor()
_next_port = _PORT_FLOOR + (os.getpid() * 7919) % max(1, _port_ceiling - _PORT_FLOOR)
_handed_out: set[int] = set()


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port nothing listens on now, never handed out before in this run.

    The kernel's own pick (bind to port 0) is not enough: two calls in a row
    may get the same port back (a gateway once got its admin port equal to
    its main port), and a port from the ephemeral range can be taken by any
    outgoing connection between the pick and the service's bind. So ports
    come from below that range, walked in turn from a per-run offset, each
    checked bindable and each given once.
    """
    global _next_port
    span = _port_ceiling - _PORT_FLOOR
    for _ in range(max(span, 0)):
        port = _next_port
        _next_port = _PORT_FLOOR + (_next_port + 1 - _PORT_FLOOR) % span
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    while True:  # no room below the ephemeral range: the kernel's pick, never twice
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def python_module(module: str, *args: str) -> list[str]:
    """The command line that runs ``python -m module args`` in this venv."""
    return [sys.executable, "-m", module, *args]


def gateway_command(config: Path | str, port: int, admin_port: int) -> list[str]:
    """The command line of a gateway on ``port`` with its admin listener on ``admin_port``."""
    return python_module(
        "gatehouse_gateway",
        "--config",
        str(config),
        "--port",
        str(port),
        "--admin-port",
        str(admin_port),
    )


# A refused connection costs next to nothing, so readiness is asked often: every
# start waits half of this on average after the service is up.
READY_POLL_SECONDS = 0.02


def _probe(port: int, path: str) -> tuple[int, str]:
    """One GET of ``path`` on 127.0.0.1:``port``: its status and the start of its body.

    Plain ``http.client``, not ``httpx.get``: each httpx client builds a TLS
    context from the CA bundle (~50 ms of CPU), which a poll every few
    milliseconds would take from the very process it waits for on two cores.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        connection.request("GET", path or "/")
        response = connection.getresponse()
        return response.status, response.read(200).decode(errors="replace")
    finally:
        connection.close()


@dataclass
class ServiceProcess:
    """One running service. Use as a context manager, or call start/stop."""

    name: str
    command: Sequence[str]
    port: int
    ready_path: str = "/healthz"
    env: Mapping[str, str] = field(default_factory=dict)
    ready_timeout: float = 30.0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # A second listener for the service's own endpoints (the gateway's /-/...);
    # readiness is asked there when it is set.
    admin_port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        if self.admin_port is None:
            raise RuntimeError(f"{self.name} has no admin listener")
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self) -> ServiceProcess:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{self.name}-{self.port}.log"
        log = self.log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.process = subprocess.Popen(
            list(self.command),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
        log.close()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        last_error = "never answered"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            port = self.port if self.admin_port is None else self.admin_port
            try:
                status, text = _probe(port, self.ready_path)
                if status < 500:
                    return
                last_error = f"{status} {text[:200]}"
            except (OSError, http.client.HTTPException) as exc:
                last_error = repr(exc)
            time.sleep(READY_POLL_SECONDS)
        self.stop()
        raise TimeoutError(f"{self.name} not ready on {self.url}: {last_error}\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash would."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait, then SIGKILL whatever is left of the group."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # workers that outlived their parent
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.returncode

    def restart(self) -> ServiceProcess:
        self.stop()
        return self.start()

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_all(processes: Sequence[ServiceProcess]) -> None:
    """Start the processes side by side (none needs another to come up).

    On a busy two-core machine this roughly halves the wait for a stack.
    """
    with ThreadPoolExecutor(max(1, len(processes))) as pool:
        for started in [pool.submit(p.start) for p in processes]:
            started.result()


def stop_all(processes: Iterable[ServiceProcess]) -> None:
    """Stop the processes side by side: each graceful shutdown takes a few tenths
    of a second, most of it waiting, and a test's teardown waits for them all."""
    stopping = list(processes)
    with ThreadPoolExecutor(max(1, len(stopping))) as pool:
        list(pool.map(lambda process: process.stop(), stopping))


@contextlib.contextmanager
def started_together(*processes: ServiceProcess) -> Iterator[None]:
    """:func:`start_all`, then stop them all after, whatever happened."""
    try:
        start_all(processes)
        yield
    finally:
        stop_all(processes)
