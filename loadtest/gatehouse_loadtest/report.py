"""The benchmark's Markdown report: the machine, the table, the performance targets."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gatehouse_loadtest.memory import MIB, ConnectionsFigure, StreamFigure
from gatehouse_loadtest.rounds import LoadShape, Summary

# issue 13: RSS after the 1,000-connection run, per worker
RSS_TARGET_MB = 70


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


def baseline_name(target: str) -> str:
    """The nginx a target is compared with: over HTTPS, nginx over HTTPS."""
    return "nginx-tls" if target.endswith("-tls") else "nginx"


def performance_table(summaries: Sequence[Summary]) -> list[str]:
    by_name = {s.target.name: s for s in summaries}
    direct = by_name.get("direct")
    lines = [
        "| target | req/s | p50 ms | p99 ms | p99.9 ms | CPU µs/req | x nginx req/s"
        " | x nginx p99 | x direct req/s | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        nginx = by_name.get(baseline_name(s.target.name))
        to_nginx = f"{_ratio(s.rps, nginx.rps):.2f}" if nginx else "-"
        p99_nginx = f"{_ratio(s.p99_ms, nginx.p99_ms):.1f}" if nginx else "-"
        to_direct = f"{_ratio(s.rps, direct.rps):.2f}" if direct else "-"
        lines.append(
            f"| {s.target.description} | {s.rps:,.0f} | {s.p50_ms:.2f} | {s.p99_ms:.2f}"
            f" | {s.p999_ms:.2f} | {s.cpu_us:.0f} | {to_nginx} | {p99_nginx} | {to_direct}"
            f" | {s.errors} |"
        )
    return lines


# (candidate, what it is compared with) for the server comparison's table
SERVER_PAIRS = (
    ("server-granian-asgi", "server-uvicorn-edge"),
    ("server-granian-rsgi", "server-uvicorn-edge"),
    ("gateway-plain-granian", "gateway-plain"),
)


def server_table(summaries: Sequence[Summary]) -> list[str]:
    """Each granian figure against uvicorn with the edge protocol, from the same run."""
    by_name = {s.target.name: s for s in summaries}
    lines = []
    for candidate, base in SERVER_PAIRS:
        c, b = by_name.get(candidate), by_name.get(base)
        if c is None or b is None:
            continue
        lines.append(
            f"| {candidate} vs {base} | {_ratio(c.rps, b.rps):.2f}x req/s"
            f" | {_ratio(c.cpu_us, b.cpu_us):.2f}x CPU µs/req"
            f" | {_ratio(c.p99_ms, b.p99_ms):.2f}x p99 |"
        )
    if not lines:
        return []
    return ["| pair | req/s | CPU per request | p99 |", "|---|---:|---:|---:|", *lines]


def _rps_check(by_name: dict[str, Summary], name: str, figure: str, floor: float) -> list[Check]:
    target, nginx = by_name.get(name), by_name.get(baseline_name(name))
    if target is None or nginx is None:
        return []
    ratio = _ratio(target.rps, nginx.rps)
    return [Check(figure, f">= {floor:.2f}x {nginx.target.name}", f"{ratio:.2f}x", ratio >= floor)]


def paired_cost(feature: Summary, without: Summary) -> tuple[float, float]:
    """(req/s cost, CPU per request cost) of a feature: the median over rounds of
    each round's own ratio.

    The rounds are interleaved, so a round's two runs are back to back and share
    the host's load of that moment; the median of the per-round ratios drops the
    rounds a neighbour's burst hit one side of, where the ratio of the two medians
    can pair a quiet round of one target with a loaded one of the other.
    """
    pairs = list(zip(feature.samples, without.samples, strict=False))
    if not pairs:
        return 0.0, 0.0
    rps = statistics.median(1 - _ratio(f.result.rps, w.result.rps) for f, w in pairs)
    cpu = statistics.median(
        _ratio(f.cpu_us_per_request, w.cpu_us_per_request) - 1 for f, w in pairs
    )
    return rps, cpu


def performance_checks(summaries: Sequence[Summary]) -> list[Check]:
    """Issue 13's throughput and latency targets, as far as these runs cover them."""
    by_name = {s.target.name: s for s in summaries}
    checks = _rps_check(by_name, "gateway-production", "production req/s", 0.35)
    nginx = by_name.get("nginx")
    prod = by_name.get("gateway-production")
    local = by_name.get("gateway-production-local")
    if nginx and prod:
        p99 = _ratio(prod.p99_ms, nginx.p99_ms)
        checks.append(Check("production p99", "<= 3x nginx", f"{p99:.1f}x", p99 <= 3))
    checks += _rps_check(by_name, "gateway-plain", "plain route req/s", 0.45)
    checks += _rps_check(
        by_name, "gateway-user", "plain route req/s, started as a user starts it", 0.45
    )
    checks += _rps_check(by_name, "gateway-tls", "HTTPS req/s", 0.30)
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
    limited = by_name.get("gateway-production-ratelimited")
    if prod and limited:
        cost, cpu_cost = paired_cost(limited, prod)
        medians = 1 - _ratio(limited.rps, prod.rps)
        checks.append(
            Check(
                "rate limit cost",
                "<= 10% vs the same route without it (median of the rounds' ratios)",
                f"{cost:.1%} of req/s ({cpu_cost:+.1%} CPU per request;"
                f" {medians:.1%} between the medians)",
                cost <= 0.10,
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
                f"<= {RSS_TARGET_MB} MB per worker",
                f"{after:.1f} MiB (peak {connections.rss_peak / MIB:.1f},"
                f" {connections.rss_before / MIB:.1f} before; private (USS)"
                f" {connections.uss_after / MIB:.1f})",
                after <= RSS_TARGET_MB,
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
        " requests served; for `direct` it is the backend nginx's. Targets over HTTPS"
        " (`-tls`) are compared with nginx over HTTPS.",
        "",
        *performance_table(summaries),
    ]
    servers = server_table(summaries)
    if servers:
        lines += [
            "",
            "## Server comparison",
            "",
            "Side by side in this run: granian against uvicorn with the gatehouse edge"
            " protocol, the bare 200 app and the gateway's plain route.",
            "",
            *servers,
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
