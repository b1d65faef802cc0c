"""Running wrk and reading its figures.

wrk's ``--latency`` table stops at p99, so every run also loads
``loadtest/wrk/report.lua``, whose ``done()`` hook prints one line with exact
counts and the p99.9. That line is what :func:`parse_wrk_output` reads; the
human table wrk prints above it is kept for the log only.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPORT_SCRIPT = Path(__file__).resolve().parents[1] / "wrk" / "report.lua"
_LINE = re.compile(r"^GATEHOUSE-WRK (?P<fields>.*)$", re.MULTILINE)
_FIELDS = (
    "requests",
    "duration_us",
    "bytes",
    "p50_us",
    "p90_us",
    "p99_us",
    "p999_us",
    "max_us",
    "connect",
    "read",
    "write",
    "status",
    "timeout",
)


class WrkError(RuntimeError):
    """wrk failed to run, or printed no report line."""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run. Latencies in milliseconds; errors are wrk's socket and status counts."""

    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    socket_errors: int
    status_errors: int
    error_kinds: tuple[tuple[str, int], ...] = ()

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.status_errors

    def describe_errors(self) -> str:
        """``0``, or the total with its kinds, e.g. ``156 (timeout 150, read 6)``."""
        if not self.errors:
            return "0"
        kinds = ", ".join(f"{kind} {count}" for kind, count in self.error_kinds)
        return f"{self.errors} ({kinds})"


def parse_wrk_output(text: str) -> WrkResult:
    """The figures from wrk's stdout, read from the report script's line."""
    match = _LINE.search(text)
    if match is None:
        raise WrkError(f"no report line in wrk's output:\n{text[-2000:]}")
    values: dict[str, int] = {}
    for pair in match.group("fields").split():
        key, _, raw = pair.partition("=")
        if key in _FIELDS:
            values[key] = int(raw)
    missing = [f for f in _FIELDS if f not in values]
    if missing:
        raise WrkError(f"wrk's report line lacks {missing}: {match.group(0)}")
    return WrkResult(
        requests=values["requests"],
        duration_s=values["duration_us"] / 1e6,
        p50_ms=values["p50_us"] / 1e3,
        p90_ms=values["p90_us"] / 1e3,
        p99_ms=values["p99_us"] / 1e3,
        p999_ms=values["p999_us"] / 1e3,
        max_ms=values["max_us"] / 1e3,
        socket_errors=values["connect"] + values["read"] + values["write"] + values["timeout"],
        status_errors=values["status"],
        error_kinds=tuple(
            (kind, values[kind])
            for kind in ("connect", "read", "write", "timeout", "status")
            if values[kind]
        ),
    )


def wrk_command(
    url: str,
    *,
    threads: int,
    connections: int,
    duration_s: float,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 5.0,
) -> list[str]:
    """The wrk command line for one run (``--latency``, the report script, headers)."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "--latency",
        "-s",
        str(REPORT_SCRIPT),
    ]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    return command


def run_wrk(
    url: str,
    *,
    threads: int,
    connections: int,
    duration_s: float,
    headers: Mapping[str, str] | None = None,
    cpus: set[int] | None = None,
) -> tuple[WrkResult, str]:
    """Run wrk to completion; the parsed result and wrk's full output.

    ``cpus`` pins wrk to those CPUs (``None``: wherever the scheduler puts it).
    """
    command = wrk_command(
        url, threads=threads, connections=connections, duration_s=duration_s, headers=headers
    )
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
        check=False,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise WrkError(f"{' '.join(command)} exited {done.returncode}:\n{output[-2000:]}")
    return parse_wrk_output(output), output
