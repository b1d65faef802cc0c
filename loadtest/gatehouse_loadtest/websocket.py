"""``make bench-ws``: WebSocket through the gateway beside nginx, and idle sockets' memory.

One fake backend (its echo at ``/ws``) is proxied by one gateway worker and by
one nginx worker (``loadtest/nginx/websocket.conf``). Two figures:

- echo messages per second: ``--connections`` sockets each send a message and
  wait for its echo, in a loop, for ``--duration`` seconds; against the
  backend directly, through nginx and through the gateway, interleaved over
  ``--rounds`` rounds (medians). The client and the backend are Python too, so
  the ratio to nginx, not the absolute rate, is the figure to read;
- idle sockets: ``--idle`` sockets opened through the gateway and held; the
  worker's RSS before and with them open. Each socket costs the gateway two
  file descriptors (client and backend), so the open-files limit bounds it:
  the harness raises its own soft limit to the hard one (children inherit it)
  and holds at most what that allows, saying so.

``--idle-only`` measures the idle sockets alone (no echo, no nginx), once per
``--gateway-python`` given (several: side by side in one run, over the same
backend), e.g. a checkout before a change and after it.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import uvloop
import yaml
from websockets.asyncio.client import ClientConnection, connect

from gatehouse_loadtest.gateway import BENCH_HOST, READY_PATH
from gatehouse_loadtest.nginx import start_nginx
from gatehouse_loadtest.procs import ManagedProcess, free_port, raise_open_files_limit, rss_bytes

REPO_ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
MAX_IDLE = 50_000
# descriptors a gateway worker needs besides its sockets (listeners, logs, the loop's own)
_SPARE_FDS = 100


def _open(url: str, timeout: float = 60) -> connect:
    port = int(url.rsplit(":", 1)[1])
    return connect(
        f"ws://{BENCH_HOST}/ws",
        host="127.0.0.1",
        port=port,
        proxy=None,
        compression=None,
        open_timeout=timeout,
        ping_interval=None,
    )


async def _echo_loop(url: str, payload: bytes, until: float, counts: list[int]) -> None:
    async with _open(url) as socket:
        await socket.recv()  # the backend's greeting
        sent = 0
        while time.monotonic() < until:
            await socket.send(payload)
            await socket.recv()
            sent += 1
        counts.append(sent)


async def echo_rate(url: str, connections: int, seconds: float, size: int) -> float:
    """Echoed messages per second over ``connections`` sockets (request, then its echo)."""
    payload = b"x" * size
    counts: list[int] = []
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(*(_echo_loop(url, payload, until, counts) for _ in range(connections)))
    return sum(counts) / (time.monotonic() - started)


async def hold_idle(url: str, count: int, pid: int) -> tuple[int, int, float]:
    """Open ``count`` sockets and hold them: (RSS before, RSS with them open, seconds to open)."""
    before = sum(rss_bytes(pid))
    sockets: list[ClientConnection] = []
    limit = asyncio.Semaphore(200)

    async def one() -> None:
        async with limit:
            socket = await _open(url, timeout=120)
            await socket.recv()
            sockets.append(socket)

    started = time.monotonic()
    try:
        await asyncio.gather(*(one() for _ in range(count)))
        opened = time.monotonic() - started
        await asyncio.sleep(2)
        held = sum(rss_bytes(pid))
    finally:
        await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    return before, held, opened


def start_backend(workdir: Path, python: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    process = ManagedProcess(
        "ws-backend",
        [python, "-m", "gatehouse_fake_backend", "--port", str(port), "--log-level", "warning"],
        log_path=workdir / "ws-backend.log",
        env={
            "GATEHOUSE_FAKE_BACKEND_MAX_CONNECTIONS": "30000",
            "GATEHOUSE_FAKE_BACKEND_WS_PING_INTERVAL": "0",
        },
        cwd=REPO_ROOT,
    ).start()
    url = f"http://127.0.0.1:{port}"
    process.wait_http(url + "/healthz")
    return process, url


def start_ws_gateway(workdir: Path, python: str, backend: str) -> tuple[ManagedProcess, str]:
    port, admin = free_port(), free_port()
    config = workdir / "ws-gateway.yaml"
    document = {
        "listen": {"address": "127.0.0.1", "port": port},
        "cursor": {"store": "local"},
        "routes": [{"name": "ws", "hosts": [BENCH_HOST], "backends": [{"url": backend}]}],
    }
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    process = ManagedProcess(
        "ws-gateway",
        [python, "-m", "gatehouse_gateway", "--config", str(config), "--admin-port", str(admin),
         "--log-level", "warning"],
        log_path=workdir / "ws-gateway.log",
        env={
            "GATEHOUSE_CONFIG": str(config),
            "REDIS_URL": "",
            "GATEHOUSE_GATEWAY_MAX_CONNECTIONS": "30000",
            "GATEHOUSE_GATEWAY_WS_PING_INTERVAL": "0",
        },
        cwd=REPO_ROOT,
    ).start()  # fmt: skip
    process.wait_http(f"http://127.0.0.1:{admin}{READY_PATH}", timeout_s=60)
    return process, f"http://127.0.0.1:{port}"


def idle_capacity(open_files: int) -> int:
    """Sockets one gateway worker can hold under ``open_files`` (two descriptors each)."""
    return max(0, (open_files - _SPARE_FDS) // 2)


def _idle_count(text: str) -> int:
    count = int(text)
    if not 0 <= count <= MAX_IDLE:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_IDLE}")
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gateway-python",
        action="append",
        help="interpreter of the gateway's venv (default: this one); with --idle-only it "
        "may be given several times, each measured in turn",
    )
    parser.add_argument(
        "--idle-only", action="store_true", help="only the idle sockets' memory, no echo"
    )
    parser.add_argument("--connections", type=int, default=50, help="echo sockets at once")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per echo run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--size", type=int, default=64, help="message bytes")
    parser.add_argument(
        "--idle", type=_idle_count, default=10_000, help=f"idle sockets to hold (<= {MAX_IDLE})"
    )
    return parser


def _idle_line(label: str, asked: int, held_count: int, figures: tuple[int, int, float]) -> str:
    before, held, opened = figures
    per_socket = (held - before) / held_count / 1024 if held_count else 0.0
    return (
        f"| {label} | {held_count:,} of {asked:,} | {opened:.1f} | {before / MIB:.1f} "
        f"| {held / MIB:.1f} | {per_socket:.1f} |"
    )


async def run_idle_only(args: argparse.Namespace, workdir: Path, stack: ExitStack) -> str:
    """Each ``--gateway-python`` in turn holds the idle sockets over one backend."""
    open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    count = min(args.idle, idle_capacity(open_files))
    backend, backend_url = start_backend(workdir, sys.executable)
    stack.callback(backend.stop)
    lines = [
        f"Idle WebSockets held by one gateway worker (open-files limit {open_files:,}: at most "
        f"{idle_capacity(open_files):,} sockets, two descriptors each)",
        "",
        "| gateway python | sockets | seconds to open | RSS before MiB | RSS held MiB "
        "| KiB per socket |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for python in args.gateway_python or [sys.executable]:
        with ExitStack() as one:
            gateway, gateway_url = start_ws_gateway(workdir, python, backend_url)
            one.callback(gateway.stop)
            figures = await hold_idle(gateway_url, count, gateway.pid)
        lines.append(_idle_line(python, args.idle, count, figures))
    return "\n".join(lines)


async def run(args: argparse.Namespace, workdir: Path, stack: ExitStack) -> str:
    if args.idle_only:
        return await run_idle_only(args, workdir, stack)
    backend, backend_url = start_backend(workdir, sys.executable)
    stack.callback(backend.stop)
    pythons = args.gateway_python or [sys.executable]
    if len(pythons) > 1:
        raise SystemExit("several --gateway-python values are for --idle-only")
    gateway, gateway_url = start_ws_gateway(workdir, pythons[0], backend_url)
    stack.callback(gateway.stop)
    nginx_port = free_port()
    nginx = start_nginx(
        "ws-nginx",
        "websocket.conf",
        {"PROXY_PORT": nginx_port, "BACKEND_PORT": backend_url.rsplit(":", 1)[1]},
        workdir=workdir,
    )
    stack.callback(nginx.stop)
    nginx_url = f"http://127.0.0.1:{nginx_port}"
    targets = {"direct": backend_url, "nginx": nginx_url, "gateway": gateway_url}
    await asyncio.sleep(1)
    rates: dict[str, list[float]] = {name: [] for name in targets}
    for url in targets.values():  # warm-up
        await echo_rate(url, args.connections, 1.0, args.size)
    for _ in range(args.rounds):
        for name, url in targets.items():
            rates[name].append(await echo_rate(url, args.connections, args.duration, args.size))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    lines = [
        f"WebSocket echo: {args.connections} sockets, {args.size}-byte messages, "
        f"{args.rounds} rounds of {args.duration:g}s (median messages/s)",
        "",
        "| target | messages/s | vs nginx |",
        "|---|---:|---:|",
    ]
    for name, rate in medians.items():
        lines.append(f"| {name} | {rate:,.0f} | {rate / medians['nginx']:.2f}x |")
    if args.idle:
        count = min(args.idle, idle_capacity(resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
        before, held, opened = await hold_idle(gateway_url, count, gateway.pid)
        lines += [
            "",
            f"Idle sockets held by one gateway worker: {count:,} (of {args.idle:,} asked; the "
            f"open-files limit bounds it) opened in {opened:.1f}s; worker RSS "
            f"{before / MIB:.1f} MiB before, {held / MIB:.1f} MiB with them open "
            f"({(held - before) / max(1, count) / 1024:.1f} KiB per socket)",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    raise_open_files_limit()
    with tempfile.TemporaryDirectory(prefix="gatehouse-ws-bench-") as tmp, ExitStack() as stack:
        report = uvloop.run(run(args, Path(tmp), stack))
    print(report)
