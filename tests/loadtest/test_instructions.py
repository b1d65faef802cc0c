"""The callgrind harness's arithmetic: the dump's total, the idle rate taken off."""

from __future__ import annotations

from pathlib import Path

from gatehouse_loadtest.instructions import Count, callgrind_command, read_total, render


def test_the_total_is_the_dumps_totals_line_not_its_summary(tmp_path: Path) -> None:
    dump = tmp_path / "callgrind.gateway-production.1"
    # callgrind 3.19 writes "summary: 0" when instrumentation started switched off
    dump.write_text("events: Ir\nsummary: 0\n\nfn=(1) f\n0 12\n\ntotals: 1655443512\n")
    assert read_total(dump) == 1_655_443_512


def test_the_idle_rate_over_the_counted_seconds_is_taken_off_per_request() -> None:
    count = Count("x", requests=2000, instructions=1_800_000_000, seconds=100.0,
                  idle_per_second=2_000_000.0)  # fmt: skip
    assert count.per_request == 900_000
    assert count.net_per_request == 800_000
    table = render([count, Count("y", 2000, 1_800_000_000, 100.0, 1_000_000.0)])
    assert "| y | 900,000 | +0.00% | 1,000,000 | 850,000 | +6.25% |" in table


def test_nothing_is_counted_until_the_harness_says_so(tmp_path: Path) -> None:
    command = callgrind_command(tmp_path / "out")
    assert "--instr-atstart=no" in command and command[0] == "valgrind"
