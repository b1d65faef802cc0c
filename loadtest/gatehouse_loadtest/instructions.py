"""Instructions per request, counted by callgrind: a figure a busy machine cannot move.

wrk's req/s and CPU time per request swing with the host's load; the number
of instructions a request costs does not. For each gateway setting asked for
(``make bench``'s, same config, same backends and token), one worker runs
under ``valgrind --tool=callgrind --instr-atstart=no``: the start and a
warm-up (CPython specialises its bytecode in the first requests) go
uncounted, then ``callgrind_control --instr=on``, ``--requests`` keep-alive
``GET /`` from one connection, ``--instr=off`` and a dump, whose total over
the requests is the first figure.

The gateway's timers (health checks, the Redis-backed loops, uvicorn's tick)
run meanwhile, and under valgrind a request takes about fifty times as long,
so they add far more per request than at full speed, and more the busier
the host. So ``--idle`` seconds with no request are counted too, and the
second figure takes that rate over the requests' wall time off: the one to
compare between settings and runs.

    make bench-instructions   # gateway-production gateway-production-ratelimited

``--keep DIR`` keeps each setting's dumps (``.1`` the requests, ``.2`` idle)
for ``callgrind_annotate``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from gatehouse_loadtest.bench import GATEWAY_SETTINGS, Bench
from gatehouse_loadtest.gateway import BENCH_HOST

logger = logging.getLogger("gatehouse_loadtest")

# a gateway starting under valgrind takes a minute or more on a busy host
_READY_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Count:
    """One setting's counted requests, the instructions they took, and the idle rate."""

    name: str
    requests: int
    instructions: int
    seconds: float
    # instructions per second with no request: the timers' work (health checks,
    # the rate limits' store round), which valgrind's slowness inflates per request
    idle_per_second: float

    @property
    def per_request(self) -> float:
        return self.instructions / self.requests

    @property
    def net_per_request(self) -> float:
        """Per request, less the idle rate over the counted requests' wall time."""
        return (self.instructions - self.idle_per_second * self.seconds) / self.requests


def callgrind_command(out_file: Path) -> list[str]:
    """valgrind before the gateway's command: callgrind, counting nothing until told."""
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_file}",
    ]


def control(pid: int, *options: str) -> None:
    subprocess.run(
        ["callgrind_control", *options, str(pid)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def read_total(dump: Path) -> int:
    """The ``Ir`` total of a callgrind dump (its ``totals:`` line)."""
    for line in reversed(dump.read_text(errors="replace").splitlines()):
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise ValueError(f"{dump}: no totals line")


def send(client: httpx.Client, url: str, count: int) -> None:
    for _ in range(count):
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}: {response.text[:300]}")


def counted(pid: int, out_file: Path, work: Callable[[], None]) -> tuple[int, float]:
    """(instructions, wall seconds) of ``pid`` while ``work`` runs; each call dumps once."""
    control(pid, "--instr=on")
    started = time.monotonic()
    work()
    seconds = time.monotonic() - started
    control(pid, "--instr=off")
    control(pid, "--dump")
    dumps = sorted(out_file.parent.glob(out_file.name + ".*"), key=lambda p: int(p.suffix[1:]))
    if not dumps:
        raise RuntimeError(f"callgrind wrote no dump next to {out_file}")
    return read_total(dumps[-1]), seconds


def count_instructions(
    name: str,
    pid: int,
    url: str,
    headers: Mapping[str, str],
    *,
    warmup: int,
    requests: int,
    idle_s: float,
    out_file: Path,
) -> Count:
    """Warm up uncounted, count ``requests`` keep-alive requests of one connection, then
    ``idle_s`` seconds of nothing."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(headers=dict(headers), limits=limits, timeout=60.0) as client:
        send(client, url, warmup)
        total, seconds = counted(pid, out_file, lambda: send(client, url, requests))
        idle, idle_seconds = counted(pid, out_file, lambda: time.sleep(idle_s))
    idle_rate = idle / idle_seconds if idle_seconds > 0 else 0.0
    return Count(name, requests, total, seconds, idle_rate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "settings",
        nargs="+",
        choices=list(GATEWAY_SETTINGS),
        help="the gateway settings to count (the first is the others' baseline)",
    )
    parser.add_argument("--warmup", type=int, default=300, help="uncounted requests first")
    parser.add_argument("--requests", type=int, default=2000, help="counted requests")
    parser.add_argument(
        "--idle", type=float, default=20.0, help="seconds of no request counted after them"
    )
    parser.add_argument("--keep", type=Path, help="copy each setting's dump into this folder")
    parser.add_argument(
        "--gateway-python",
        default=sys.executable,
        help="the Python the gateways run under (make bench-instructions: .venv-gateway's)",
    )
    return parser


def render(counts: Sequence[Count]) -> str:
    base = counts[0]
    lines = [
        "| setting | instructions per request | vs the first | idle per second"
        " | per request less idle | vs the first |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for count in counts:
        change = count.per_request / base.per_request - 1
        net_change = count.net_per_request / base.net_per_request - 1
        lines.append(
            f"| {count.name} | {count.per_request:,.0f} | {change:+.2%}"
            f" | {count.idle_per_second:,.0f} | {count.net_per_request:,.0f} | {net_change:+.2%} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> list[Count]:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    # Bench reads the interpreters from its own options; no granian setting is counted
    bench_args = argparse.Namespace(
        gateway_python=args.gateway_python, servers_python=args.gateway_python
    )
    workdir = Path(tempfile.mkdtemp(prefix="gatehouse-instructions-"))
    counts = []
    with ExitStack() as stack:
        bench = Bench(bench_args, stack, workdir)
        stack.callback(bench.forget_redis_keys)
        bench.start_backends()
        for name in args.settings:
            _, setting = GATEWAY_SETTINGS[name]
            out_file = workdir / f"callgrind.{name}"
            logger.info("%s: starting under callgrind", name)
            process, url = bench.start_gateway(
                name,
                setting,
                wrapper=callgrind_command(out_file),
                ready_timeout_s=_READY_TIMEOUT_S,
            )
            headers = {"Host": BENCH_HOST}
            if setting.auth:
                headers["Authorization"] = f"Bearer {bench.token}"
            logger.info("%s: %d requests to warm up, %d counted", name, args.warmup, args.requests)
            count = count_instructions(
                name,
                process.pid,
                url + "/",
                headers,
                warmup=args.warmup,
                requests=args.requests,
                idle_s=args.idle,
                out_file=out_file,
            )
            process.stop()
            logger.info("%s: %.0f instructions per request", name, count.per_request)
            counts.append(count)
            if args.keep is not None:
                args.keep.mkdir(parents=True, exist_ok=True)
                for dump in workdir.glob(out_file.name + ".*"):
                    shutil.copy(dump, args.keep / dump.name)
    shutil.rmtree(workdir, ignore_errors=True)
    return counts


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    print(render(run(args)))


if __name__ == "__main__":
    main()
