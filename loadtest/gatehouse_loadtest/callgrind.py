"""Instructions per request, counted by callgrind: the gateway's CPU cost without the host's noise.

Timed figures on a shared two-core host move by a third between runs; an
instruction count does not (the same build gives the same count within about
0.1%). One gateway worker runs under ``valgrind --tool=callgrind
--instr-atstart=no``, so its start is not counted; a single keep-alive
connection sends the warm-up requests (caches, specialised bytecode, pools
filled), then ``callgrind_control --instr=on``, the counted requests,
``--instr=off`` and ``--dump``. The dump's total divided by the counted
requests is the figure; the dump itself is kept for ``callgrind_annotate``.

The backends, JWKS and settings are ``make bench``'s (two nginx ``return 200``
backends, a signed token, the settings of
:data:`gatehouse_loadtest.bench.GATEWAY_SETTINGS`). Background work inside
the counted window (uvicorn's tick every 0.1 s) is counted with the requests,
as in a timed run, except the backends' health checks: their interval is set
to an hour, since how many fall inside the window depends on how fast the
host runs valgrind, not on the code.

One connection sends one request at a time, so the Redis cursor, which
coalesces the picks that arrive during its round trip into one ``INCRBY``,
makes one round trip per request here, where ``make bench``'s 50 connections
share one among about 20: the production count carries a whole Redis
command per request; ``production-local`` is the same route without it.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from gatehouse_loadtest.bench import GATEWAY_SETTINGS, REDIS_URL, REPO_ROOT, forget_redis_keys
from gatehouse_loadtest.gateway import BENCH_HOST, start_gateway
from gatehouse_loadtest.jwks import BenchKey
from gatehouse_loadtest.nginx import start_nginx
from gatehouse_loadtest.procs import ManagedProcess, free_port

# short names for the settings counted; the production one is what a deployment runs
SETTINGS = {
    "plain": "gateway-plain",
    "production": "gateway-production",
    "production-local": "gateway-production-local",
    "production-ratelimited": "gateway-production-ratelimited",
}
# no health check falls inside the counted window (the config's largest interval)
QUIET_HEALTH_INTERVAL_S = 3600.0
# the idle window after the counted one, for uvicorn's background share
IDLE_WINDOW_S = 5.0
# Python under callgrind starts some 50 times slower than natively
READY_TIMEOUT_S = 600.0
_RECV = 65536


@dataclass(frozen=True)
class Count:
    setting: str
    requests: int
    instructions: int
    dump: Path
    # how long the counted window lasted, and what the idle gateway ran per second
    seconds: float
    idle_per_second: float

    @property
    def per_request(self) -> float:
        return self.instructions / self.requests

    @property
    def net_per_request(self) -> float:
        """Less what the gateway runs when idle (uvicorn's tick every 0.1 s) for as
        long as the window lasted: that share grows with how slowly the host runs
        valgrind (+3% on a loaded host), not with the code."""
        return (self.instructions - self.idle_per_second * self.seconds) / self.requests


def valgrind_command(out_file: Path) -> list[str]:
    """callgrind with counting off until :func:`instrumentation` turns it on."""
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: apt-get install valgrind")
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_file}",
    ]


def instrumentation(pid: int, *options: str) -> None:
    """``callgrind_control`` on the running gateway (``--instr=on``, ``--dump`` ...)."""
    done = subprocess.run(
        ["callgrind_control", *options, str(pid)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"callgrind_control {' '.join(options)}: {done.stderr or done.stdout}")


def request_bytes(token: str | None) -> bytes:
    lines = ["GET / HTTP/1.1", f"Host: {BENCH_HOST}"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket, buffer: bytes) -> bytes:
    """Read one response with a Content-Length body; what follows it is returned."""
    while b"\r\n\r\n" not in buffer:
        buffer += _recv(sock)
    head, _, rest = buffer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    if status_line.split(b" ", 2)[1] != b"200":
        raise RuntimeError(f"the gateway answered {status_line!r}")
    length = None
    for line in header_lines:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise RuntimeError(f"a response without Content-Length: {head!r}")
    while len(rest) < length:
        rest += _recv(sock)
    return rest[length:]


def _recv(sock: socket.socket) -> bytes:
    data = sock.recv(_RECV)
    if not data:
        raise RuntimeError("the gateway closed the connection")
    return data


def send_requests(sock: socket.socket, request: bytes, count: int) -> None:
    """``count`` requests one after the other on the one keep-alive connection."""
    buffer = b""
    for _ in range(count):
        sock.sendall(request)
        buffer = read_response(sock, buffer)


def dump_total(path: Path) -> int:
    """The instruction total of a callgrind dump (its ``totals:`` or ``summary:`` line)."""
    for line in reversed(path.read_text(errors="replace").splitlines()):
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def wait_for_dump(workdir: Path, before: set[Path], timeout_s: float = 120.0) -> Path:
    """The dump file ``--dump`` wrote (callgrind names it ``<out file>.<n>``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        new = sorted(set(workdir.glob("callgrind.out*")) - before)
        for path in new:
            text = path.read_text(errors="replace")
            if "totals:" in text or "summary:" in text:
                return path
        time.sleep(0.5)
    raise TimeoutError("callgrind wrote no dump")


def count(
    name: str,
    *,
    gateway_python: str,
    warmup: int,
    requests: int,
    workdir: Path,
    stack: ExitStack,
) -> Count:
    """Start ``name``'s gateway under callgrind and count ``requests`` after ``warmup``."""
    key = BenchKey.generate()
    backend_ports = (free_port(), free_port())
    jwks_port = free_port()
    backends = [f"http://127.0.0.1:{p}" for p in backend_ports]
    jwks_url = f"http://127.0.0.1:{jwks_port}/.well-known/jwks.json"
    values = {
        "BACKEND_A_PORT": backend_ports[0],
        "BACKEND_B_PORT": backend_ports[1],
        "JWKS_PORT": jwks_port,
        "JWKS_JSON": key.jwks_json(),
    }
    nginx: ManagedProcess = start_nginx("backends", "backends.conf", values, workdir=workdir)
    stack.callback(nginx.stop)
    for url in [*backends, jwks_url]:
        nginx.wait_http(url, timeout_s=10)
    _, setting = GATEWAY_SETTINGS[SETTINGS[name]]
    # the counted window lasts as long as the host makes it: a check every 5 s
    # would add a load-dependent share to a count that should not depend on it
    setting = dataclasses.replace(setting, health_interval=QUIET_HEALTH_INTERVAL_S)
    redis_prefix = f"gatehouse-callgrind:{uuid.uuid4().hex[:10]}:"
    if setting.redis:
        stack.callback(forget_redis_keys, redis_prefix)
    out_file = workdir / "callgrind.out"
    process, url = start_gateway(
        f"gateway-{name}",
        setting,
        workdir=workdir,
        backends=backends,
        jwks_url=jwks_url,
        env={
            "REDIS_URL": REDIS_URL if setting.redis else "",
            "GATEHOUSE_GATEWAY_REDIS_PREFIX": redis_prefix,
            "GATEHOUSE_GATEWAY_ACCESS_LOG": "false",
            # str hashes pick dict slots and type-cache entries: with a random seed
            # per process the same build varied by 2% from run to run
            "PYTHONHASHSEED": "0",
        },
        repo_root=REPO_ROOT,
        python=gateway_python,
        wrapper=valgrind_command(out_file),
        ready_timeout_s=READY_TIMEOUT_S,
    )
    stack.callback(process.stop)
    request = request_bytes(key.token() if setting.auth else None)
    host, _, port = url.removeprefix("http://").partition(":")
    with socket.create_connection((host, int(port)), timeout=120) as sock:
        send_requests(sock, request, warmup)
        started = time.monotonic()
        instrumentation(process.pid, "--instr=on")
        send_requests(sock, request, requests)
        instrumentation(process.pid, "--instr=off")
        seconds = time.monotonic() - started
        dump = dump_now(process.pid, workdir)
        started = time.monotonic()
        instrumentation(process.pid, "--instr=on")
        time.sleep(IDLE_WINDOW_S)
        instrumentation(process.pid, "--instr=off")
        idle_seconds = time.monotonic() - started
        idle = dump_total(dump_now(process.pid, workdir))
    return Count(name, requests, dump_total(dump), dump, seconds, idle / idle_seconds)


def dump_now(pid: int, workdir: Path) -> Path:
    """``callgrind_control --dump``: the new dump's path (counters start again at 0)."""
    before = set(workdir.glob("callgrind.out*"))
    instrumentation(pid, "--dump")
    return wait_for_dump(workdir, before)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "settings", nargs="*", choices=list(SETTINGS), default=["plain", "production"]
    )
    parser.add_argument("--warmup", type=int, default=300, help="requests before counting")
    parser.add_argument("--requests", type=int, default=2000, help="requests counted")
    parser.add_argument(
        "--gateway-python",
        default=sys.executable,
        help="the interpreter of the venv the gateway runs in (make callgrind: .venv-gateway)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="copy each dump here as callgrind.<setting>.out, for callgrind_annotate",
    )
    return parser.parse_args(argv)


def _exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    # SystemExit unwinds the ExitStack: the gateway under valgrind and nginx stop too
    sys.exit(143)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    for name in args.settings:
        with ExitStack() as stack:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="callgrind-")))
            result = count(
                name,
                gateway_python=args.gateway_python,
                warmup=args.warmup,
                requests=args.requests,
                workdir=workdir,
                stack=stack,
            )
            kept = ""
            if args.keep is not None:
                args.keep.mkdir(parents=True, exist_ok=True)
                target = args.keep / f"callgrind.{name}.out"
                shutil.copyfile(result.dump, target)
                kept = f" (dump: {target})"
            print(
                f"{name}: {result.per_request:,.0f} instructions per request"
                f" ({result.instructions:,} over {result.requests} requests"
                f" after {args.warmup}, {result.seconds:.1f} s); less the idle"
                f" gateway's {result.idle_per_second:,.0f} per second:"
                f" {result.net_per_request:,.0f}{kept}",
                flush=True,
            )
