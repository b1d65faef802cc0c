"""Fixtures of the chaos suite: the profile, the running stack, the result table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.processes import ARTIFACTS

from chaos import profiles
from chaos.report import FaultReport, FaultReportFactory, markdown_table
from chaos.stack import ChaosStack, missing_services, running_stack

REPORTS: list[FaultReport] = []
REPORT_PATH = ARTIFACTS / "chaos-report.md"


@pytest.fixture(scope="session")
def profile() -> profiles.Profile:
    return profiles.current()


@pytest.fixture(scope="package")
def chaos_stack() -> Iterator[ChaosStack]:
    """The whole system, once for this folder (stopped when its last test is done,
    not left idling through the rest of the suite); each fault puts back what it broke."""
    missing = missing_services()
    if missing:
        pytest.skip(f"not built yet: {', '.join(missing)}")
    with running_stack() as stack:
        yield stack


@pytest.fixture
def stack(chaos_stack: ChaosStack) -> ChaosStack:
    """The stack, refused if an earlier fault left a process dead."""
    dead = chaos_stack.dead()
    if dead:
        pytest.fail(f"an earlier fault left these down: {dead}", pytrace=False)
    return chaos_stack


@pytest.fixture
def fault_report() -> FaultReportFactory:
    """``fault_report("name")`` starts this fault's row in the result table."""

    def start(fault: str) -> FaultReport:
        report = FaultReport(fault)
        REPORTS.append(report)
        return report

    return start


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORTS:
        return
    table = markdown_table(REPORTS, profiles.current().name)
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    REPORT_PATH.write_text(table)
    terminalreporter.write_sep("=", "chaos")
    terminalreporter.write_line(table)
    terminalreporter.write_line(f"(also in {REPORT_PATH.relative_to(ARTIFACTS.parent.parent)})")
