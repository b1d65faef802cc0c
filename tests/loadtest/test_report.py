"""The report's ratios: each target against the right nginx, and the server comparison."""

from __future__ import annotations

from gatehouse_loadtest.report import (
    baseline_name,
    performance_checks,
    performance_table,
    server_table,
)
from gatehouse_loadtest.rounds import Sample, Summary, Target
from gatehouse_loadtest.wrk import WrkResult


def sample(rps: float, cpu_us: float = 50.0, p99_ms: float = 2.0) -> Sample:
    requests = int(rps * 10)
    result = WrkResult(
        requests=requests,
        duration_s=10.0,
        p50_ms=1.0,
        p90_ms=1.5,
        p99_ms=p99_ms,
        p999_ms=p99_ms * 2,
        max_ms=p99_ms * 3,
        socket_errors=0,
        status_errors=0,
    )
    return Sample(result, cpu_us * requests / 1e6)


def summary(name: str, rps: float, cpu_us: float = 50.0, p99_ms: float = 2.0) -> Summary:
    return Summary(Target(name, name, "http://x/"), [sample(rps, cpu_us, p99_ms)])


def rounds(name: str, *rps: float) -> Summary:
    return Summary(Target(name, name, "http://x/"), [sample(r) for r in rps])


def test_https_targets_are_compared_with_nginx_over_https() -> None:
    assert baseline_name("gateway-tls") == "nginx-tls"
    assert baseline_name("gateway-plain") == "nginx"
    rows = performance_table(
        [summary("nginx", 40_000), summary("nginx-tls", 20_000), summary("gateway-tls", 8_000)]
    )
    assert "| 0.40 |" in rows[-1]  # 8,000 against nginx-tls's 20,000, not nginx's 40,000


def test_issue_13_targets() -> None:
    checks = {
        c.name: c
        for c in performance_checks(
            [
                summary("nginx", 40_000, p99_ms=1.0),
                summary("gateway-production", 14_000, p99_ms=3.5),
                summary("gateway-plain", 18_000),
                summary("gateway-user", 17_000),
                summary("nginx-tls", 20_000),
                summary("gateway-tls", 6_000),
            ]
        )
    }
    assert checks["production req/s"].passed  # 0.35x
    assert not checks["production p99"].passed  # 3.5x > 3x
    assert checks["plain route req/s"].passed  # 0.45x
    assert not checks["plain route req/s, started as a user starts it"].passed  # 0.425x
    assert checks["HTTPS req/s"].target == ">= 0.30x nginx-tls"
    assert checks["HTTPS req/s"].passed


def test_rate_limit_cost_is_the_median_of_each_rounds_own_ratio() -> None:
    # the host's load swings from round to round; within a round both sides share it
    without = rounds("gateway-production", 6_000, 3_000, 5_000, 2_000, 4_000)
    limited = rounds("gateway-production-ratelimited", 5_700, 2_850, 3_000, 1_900, 3_800)
    check = next(c for c in performance_checks([without, limited]) if c.name == "rate limit cost")
    # per round 5%, 5%, 40% (a burst hit the limited run), 5%, 5%: median 5%;
    # the ratio of the medians (3,000 / 4,000) would say 25%
    assert check.passed
    assert check.reached.startswith("5.0% of req/s")
    assert "25.0% between the medians" in check.reached


def test_server_table_pairs_granian_with_uvicorn_from_the_same_run() -> None:
    rows = server_table(
        [
            summary("server-uvicorn-edge", 30_000, cpu_us=30),
            summary("server-granian-asgi", 39_000, cpu_us=24),
            summary("gateway-plain", 12_000),
        ]
    )
    assert rows[2] == (
        "| server-granian-asgi vs server-uvicorn-edge | 1.30x req/s"
        " | 0.80x CPU µs/req | 1.00x p99 |"
    )
    assert len(rows) == 3  # RSGI and the granian gateway did not run: no rows for them
    assert server_table([summary("nginx", 1)]) == []
