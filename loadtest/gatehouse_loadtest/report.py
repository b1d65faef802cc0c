"""The benchmark's Markdown report: the machine, the table, the performance targets."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gatehouse_loadtest.memory import MIB, ConnectionsFigure, StreamFigure
from gatehouse_loadtest.rounds import LoadShape, Summary


def _first_line(command: Sequence[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def _memory_total() -> str:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return "unknown"
    match = re.search(r"^MemTotal:\s*(\d+) kB", text, re.MULTILINE)
    return f"{int(match.group(1)) / (1 << 20):.1f} GiB" if match else "unknown"


def machine_description(repo_root: Path) -> list[tuple[str, str]]:
    """What the figures were measured on, as (name, value) rows."""
    return [
        ("CPUs (nproc)", str(os.cpu_count())),
        ("CPU model", _cpu_model()),
        ("memory", _memory_total()),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("nginx", _first_line(["nginx", "-v"])),
        ("wrk", _first_line(["wrk", "-v"]).split(" Copyright")[0]),
        ("redis-server", _first_line(["redis-server", "--version"])),
        ("commit", _first_line(["git", "-C", str(repo_root), "rev-parse", "--short", "HEAD"])),
    ]


@dataclass(frozen=True)
class Check:
    name: str
    target: str
    reached: str
    passed: bool


def _ratio(value: float, base: float) -> float:
    return value / base if base else 0.0


def performance_table(summaries: Sequence[Summary]) -> list[str]:
    by_name = {s.target.name: s for s in summaries}
    nginx = by_name.get("nginx")
    direct = by_name.get("direct")
    lines = [
        "| target | req/s | p50 ms | p99 ms | p99.9 ms | CPU µs/req | x nginx req/s"
        " | x nginx p99 | x direct req/s | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        to_nginx = f"{_ratio(s.rps, nginx.rps):.2f}" if nginx else "-"
        p99_nginx = f"{_ratio(s.p99_ms, nginx.p99_ms):.1f}" if nginx else "-"
        to_direct = f"{_ratio(s.rps, direct.rps):.2f}" if direct else "-"
        lines.append(
            f"| {s.target.description} | {s.rps:,.0f} | {s.p50_ms:.2f} | {s.p99_ms:.2f}"
            f" | {s.p999_ms:.2f} | {s.cpu_us:.0f} | {to_nginx} | {p99_nginx} | {to_direct}"
            f" | {s.errors} |"
        )
    return lines


def performance_checks(summaries: Sequence[Summary]) -> list[Check]:
    """Issue 5's throughput and latency targets, as far as these runs cover them."""
    by_name = {s.target.name: s for s in summaries}
    checks: list[Check] = []
    nginx = by_name.get("nginx")
    prod = by_name.get("gateway-production")
    plain = by_name.get("gateway-plain")
    local = by_name.get("gateway-production-local")
    if nginx and prod:
        ratio = _ratio(prod.rps, nginx.rps)
        checks.append(Check("production req/s", ">= 0.20x nginx", f"{ratio:.2f}x", ratio >= 0.20))
        p99 = _ratio(prod.p99_ms, nginx.p99_ms)
        checks.append(Check("production p99", "<= 15x nginx", f"{p99:.1f}x", p99 <= 15))
    if nginx and plain:
        ratio = _ratio(plain.rps, nginx.rps)
        checks.append(Check("plain route req/s", ">= 0.25x nginx", f"{ratio:.2f}x", ratio >= 0.25))
    if prod and local:
        cost = 1 - _ratio(prod.rps, local.rps)
        cpu_cost = _ratio(prod.cpu_us, local.cpu_us) - 1
        checks.append(
            Check(
                "Redis cursor cost",
                "<= 15% vs local cursor",
                f"{cost:.1%} of req/s ({cpu_cost:+.1%} CPU per request)",
                cost <= 0.15,
            )
        )
    return checks


def memory_checks(
    connections: ConnectionsFigure | None, streams: Sequence[StreamFigure]
) -> list[Check]:
    checks = []
    if connections is not None:
        after = connections.rss_after / MIB
        checks.append(
            Check(
                f"RSS after {connections.seconds:.0f} s at {connections.connections} connections",
                "<= 100 MB per worker",
                f"{after:.1f} MiB (peak {connections.rss_peak / MIB:.1f},"
                f" {connections.rss_before / MIB:.1f} before; private (USS)"
                f" {connections.uss_after / MIB:.1f})",
                after <= 100,
            )
        )
    for figure in streams:
        growth = figure.growth / MIB
        checks.append(
            Check(
                f"RSS growth, {figure.size // MIB} MiB {figure.direction}",
                "<= 20 MB",
                f"{growth:.1f} MiB ({figure.rss_before / MIB:.1f} -> {figure.rss_peak / MIB:.1f},"
                f" {figure.size / MIB / figure.seconds:.0f} MiB/s)",
                growth <= 20,
            )
        )
    return checks


def render_report(
    *,
    title: str,
    machine: Sequence[tuple[str, str]],
    shape: LoadShape,
    rounds: int,
    summaries: Sequence[Summary],
    checks: Sequence[Check],
    connections: ConnectionsFigure | None,
    notes: Sequence[str] = (),
) -> str:
    lines = [f"# {title}", "", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in machine]
    lines += [
        "",
        "## Throughput and latency",
        "",
        f"wrk -t{shape.threads} -c{shape.connections} -d{shape.duration_s:.0f}s, {rounds}"
        " interleaved rounds, median per figure; two nginx `return 200` backends."
        " CPU µs/req is the CPU time of the proxy's processes (all workers) over the"
        " requests served; for `direct` it is the backend nginx's.",
        "",
        *performance_table(summaries),
    ]
    if connections is not None:
        r = connections.result
        lines += [
            "",
            f"1,000-connection run: wrk -t2 -c{connections.connections}"
            f" -d{connections.seconds:.0f}s on the {connections.setting} setting"
            f"{' (gateway and wrk pinned to separate CPUs)' if connections.pinned else ''}:"
            f" {r.rps:,.0f} req/s,"
            f" p99 {r.p99_ms:.1f} ms, errors: {r.describe_errors()} (wrk gives up on a request"
            " after 5 s: a timeout is a request still queued then, not a refused one).",
        ]
    if checks:
        lines += ["", "## Targets", "", "| figure | target | reached | met |"]
        lines.append("|---|---|---|---|")
        lines += [
            f"| {c.name} | {c.target} | {c.reached} | {'yes' if c.passed else 'NO'} |"
            for c in checks
        ]
    if notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"
