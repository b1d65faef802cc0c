"""Profiling a target under load with py-spy: where the gateway's CPU goes per request.

py-spy samples the running process from outside (no code change, no restart),
so the profile is of the gateway exactly as benchmarked. The raw output is
"collapsed stacks" (one line per distinct stack, with its sample count), the
input of flame-graph tools; :func:`summarize` reads it into the functions with
the most samples on top of the stack (self) and anywhere on it (inclusive).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Profile:
    samples: int
    self_counts: list[tuple[str, int]]
    inclusive_counts: list[tuple[str, int]]


def py_spy_binary() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: run `make venv`")
    return found


def start_py_spy(
    pid: int, seconds: float, output: Path, rate: int = 250
) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` and its children for ``seconds``; wait on the returned process."""
    command = [
        py_spy_binary(),
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--nonblocking",
        "--rate",
        str(rate),
        "--duration",
        str(max(1, round(seconds))),
        "--format",
        "raw",
        "--output",
        str(output),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _frame_name(frame: str) -> str:
    """``send (aiohttp/client.py:123)`` -> ``send (aiohttp/client.py)``: lines merged."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{name} ({file})" if file else name


def summarize(collapsed: str, top: int = 25) -> Profile:
    """Self and inclusive sample counts per function from collapsed stacks."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    return Profile(total, self_counts.most_common(top), inclusive.most_common(top))


def render_profile(profile: Profile, title: str) -> str:
    def rows(counts: list[tuple[str, int]]) -> list[str]:
        return [
            f"{count / profile.samples:6.1%}  {name}" for name, count in counts if profile.samples
        ]

    return "\n".join(
        [
            title,
            f"{profile.samples} samples",
            "",
            "self (on top of the stack):",
            *rows(profile.self_counts),
            "",
            "inclusive (anywhere on the stack):",
            *rows(profile.inclusive_counts),
            "",
        ]
    )
