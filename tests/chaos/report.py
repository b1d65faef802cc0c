"""The result table: one row per fault, with the figures and the checks made after it.

A test records a :class:`FaultReport`, makes its checks through it (each one
is listed in the table, passed or not) and calls :meth:`FaultReport.verdict`
last, which fails the test if any check failed. The session prints the table
at the end and writes it to ``tests/artifacts/chaos-report.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from chaos.load import LoadResult


def seconds(value: float | None) -> str:
    """A measured time for a check's name: ``1.2s``, or ``never`` when it did not happen."""
    return "never" if value is None else f"{value:.1f}s"


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class FaultReport:
    fault: str
    sent: int = 0
    failed: int = 0
    p99: float = 0.0
    max_latency: float = 0.0
    checks: list[Check] = field(default_factory=list)

    def load(self, result: LoadResult) -> LoadResult:
        """Add a load run's figures (several runs add up; latencies take the worst)."""
        self.sent += result.sent
        self.failed += result.failed
        self.p99 = max(self.p99, result.p99)
        self.max_latency = max(self.max_latency, result.max_latency)
        return result

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        """Record one check; the test goes on so every check shows in the table."""
        self.checks.append(Check(name, bool(passed), detail))
        return bool(passed)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks) and bool(self.checks)

    def verdict(self) -> None:
        failed = [c for c in self.checks if not c.passed]
        if failed:
            pytest.fail(
                f"{self.fault}: " + "; ".join(f"FAILED {c.name}: {c.detail}" for c in failed),
                pytrace=False,
            )
        if not self.checks:
            pytest.fail(f"{self.fault}: no check was made", pytrace=False)


FaultReportFactory = Callable[[str], FaultReport]

HEADER = ("fault", "sent", "failed", "p99 ms", "max ms", "checked after", "result")


def _row(report: FaultReport) -> tuple[str, ...]:
    checks = "; ".join(c.name + ("" if c.passed else " (FAILED)") for c in report.checks)
    return (
        report.fault,
        str(report.sent),
        str(report.failed),
        f"{report.p99 * 1000:.0f}",
        f"{report.max_latency * 1000:.0f}",
        checks or "-",
        "pass" if report.passed else "FAIL",
    )


def markdown_table(reports: list[FaultReport], profile: str) -> str:
    """The table as Markdown (reads fine in a terminal too)."""
    rows = [HEADER, *(_row(r) for r in reports)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [line(rows[0]), rule, *(line(r) for r in rows[1:])]
    return f"Chaos results ({profile} profile)\n\n" + "\n".join(body) + "\n"
