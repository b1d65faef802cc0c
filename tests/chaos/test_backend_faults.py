"""Faults 1 and 6: a backend killed with SIGKILL, and a backend that answers in 2 s."""

from __future__ import annotations

from chaos import faults
from chaos.front import get_load
from chaos.load import BackgroundLoad
from chaos.profiles import Profile
from chaos.report import FaultReportFactory, seconds
from chaos.stack import (
    CONSECUTIVE_FAILURES,
    HEALTH_INTERVAL,
    HEALTHY_THRESHOLD,
    SLOW_HOST,
    SLOW_READ_TIMEOUT,
    UNHEALTHY_THRESHOLD,
    ChaosStack,
    backend_label,
)

# Active checks mark a backend down after UNHEALTHY_THRESHOLD failed checks
# HEALTH_INTERVAL apart (each may wait its 0.5 s timeout); passive ejection is
# quicker still under load. The margin is for a busy two-core machine.
EJECT_BOUND = UNHEALTHY_THRESHOLD * HEALTH_INTERVAL + 0.5 + 2.0
# Back in after HEALTHY_THRESHOLD good checks; a passive ejection may hold it
# out for up to max_ejection_time (4 s) first.
TAKE_BACK_BOUND = HEALTHY_THRESHOLD * HEALTH_INTERVAL + 4.0 + 2.0


def test_kill_9_one_backend_then_restart(
    stack: ChaosStack, profile: Profile, fault_report: FaultReportFactory
) -> None:
    report = fault_report("kill -9 one backend, restart it")
    victim = stack.backends[0]
    up = {"route": "chaos", "backend": backend_label(victim)}
    token = stack.user_token()
    duration = profile.settle + profile.backend_down + TAKE_BACK_BOUND + profile.settle
    with BackgroundLoad(stack.chaos_load(token), rate=profile.rate, duration=duration) as load:
        load.sleep_until(profile.settle)
        killed_at = load.elapsed()
        with faults.killed(victim):
            ejected = faults.wait_until(
                lambda: all(v == 0 for v in stack.metric("gateway_backend_up", up)),
                timeout=profile.backend_down,
            )
            load.sleep_until(killed_at + profile.backend_down)
        restarted_at = load.elapsed()
        taken_back = faults.wait_until(
            lambda: all(v == 1 for v in stack.metric("gateway_backend_up", up)),
            timeout=TAKE_BACK_BOUND,
        )
        back_at = load.elapsed()
        load.sleep_until(back_at + profile.settle)
        load.stop()
    result = report.load(load.result)
    ejections = sum(stack.metric("gateway_ejections_total", up))

    report.check("zero failed GETs", result.failed == 0, result.describe_failures())
    report.check(
        f"ejected on both gateways in {seconds(ejected)} (bound {EJECT_BOUND:g}s)",
        ejected is not None and ejected <= EJECT_BOUND,
        f"took {ejected}s (passive: {CONSECUTIVE_FAILURES} failures; ejections {ejections:g})",
    )
    report.check(
        "nothing answered by it while dead",
        result.by_backend(killed_at + 0.05, restarted_at)[victim.name] == 0,
        str(result.by_backend(killed_at + 0.05, restarted_at)),
    )
    served_after = result.by_backend(back_at)[victim.name]
    report.check(
        f"taken back {seconds(taken_back)} after restart, {served_after} answers since",
        taken_back is not None and served_after > 0,
        f"up after {taken_back}s; {served_after} answers after",
    )
    report.verdict()


def test_a_backend_answering_in_2s(
    stack: ChaosStack, profile: Profile, fault_report: FaultReportFactory
) -> None:
    report = fault_report(f"one backend answers in {profile.slow_latency:g}s (least_requests)")
    victim = stack.backends[3]
    others = {b.name for b in stack.backends if b is not victim}
    load_factory = get_load(stack.gateway_urls, "/slow", headers={"Host": SLOW_HOST})
    with (
        faults.slow_backend(victim, profile.slow_latency),
        BackgroundLoad(
            load_factory,
            rate=profile.rate,
            duration=profile.outage + profile.settle,
            ok_statuses=frozenset({200, 504}),
        ) as load,
    ):
        pass
    result = report.load(load.result)
    timeouts = [o for o in result.outcomes if o.status == 504]
    answered = [o for o in result.outcomes if o.status == 200]
    bound = SLOW_READ_TIMEOUT + 1.0

    report.check("only 200 or 504", result.failed == 0, result.describe_failures())
    report.check(
        f"{len(timeouts)}x 504 JSON within the {SLOW_READ_TIMEOUT:g}s timeout (+1s)",
        bool(timeouts)
        and all(o.latency <= bound and o.detail not in (None, "not-json") for o in timeouts),
        f"max {max((o.latency for o in timeouts), default=0):.2f}s; "
        f"codes {sorted({str(o.detail) for o in timeouts})}",
    )
    report.check(
        "other backends unaffected: every 200 from them",
        {o.backend for o in answered} == others,
        str(result.by_backend()),
    )
    share = len(timeouts) / max(result.sent, 1)
    report.check(
        "least_requests steered away: slow one got < 1/8",
        share < 0.125,
        f"{share:.1%} of requests reached it (fair share 25%)",
    )
    report.verdict()
