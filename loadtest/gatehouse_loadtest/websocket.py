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
  file descriptors (client and backend), so the open-files limit bounds it.
"""

from __future__ import annotations

import argparse
import asyncio
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gateway-python", default=sys.executable, help="interpreter of the gateway's venv"
    )
    parser.add_argument("--connections", type=int, default=50, help="echo sockets at once")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per echo run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--size", type=int, default=64, help="message bytes")
    parser.add_argument("--idle", type=int, default=10_000, help="idle sockets to hold")
    return parser


async def run(args: argparse.Namespace, workdir: Path, stack: ExitStack) -> str:
    backend, backend_url = start_backend(workdir, sys.executable)
    stack.callback(backend.stop)
    gateway, gateway_url = start_ws_gateway(workdir, args.gateway_python, backend_url)
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
        before, held, opened = await hold_idle(gateway_url, args.idle, gateway.pid)
        lines += [
            "",
            f"Idle sockets held by one gateway worker: {args.idle:,} opened in {opened:.1f}s; "
            f"worker RSS {before / MIB:.1f} MiB before, {held / MIB:.1f} MiB with them open "
            f"({(held - before) / args.idle / 1024:.1f} KiB per socket)",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    raise_open_files_limit()
    with tempfile.TemporaryDirectory(prefix="gatehouse-ws-bench-") as tmp, ExitStack() as stack:
        report = uvloop.run(run(args, Path(tmp), stack))
    print(report)
