"""Fault 5: a rolling restart, SIGTERM to one gateway at a time under load, then start it again.

The load reaches the gateways through :mod:`chaos.front`, which stands in
for the load balancer of a real deployment: it moves a request to the other
gateway only when the connection is refused. In-flight requests on the
terminated gateway must complete: uvicorn closes the listening socket, lets
them finish (up to the graceful timeout, 20 s) and only then exits.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import httpx

from chaos import faults
from chaos.load import BackgroundLoad
from chaos.profiles import Profile
from chaos.stack import DRAIN_HOST, DRAIN_LATENCY_MS, ChaosStack

IN_FLIGHT = 6
# seconds between sending the slow requests and the SIGTERM
SENT_AFTER = DRAIN_LATENCY_MS / 1000 / 2


def _slow_requests(
    pool: ThreadPoolExecutor, client: httpx.Client, url: str
) -> list[Future[httpx.Response]]:
    """Requests that take DRAIN_LATENCY_MS at the backend, each on its own connection."""

    def one(index: int) -> httpx.Response:
        return client.get(f"{url}/drain/{index}", headers={"Host": DRAIN_HOST})

    return [pool.submit(one, i) for i in range(IN_FLIGHT)]


def test_rolling_restart_of_both_gateways(
    stack: ChaosStack, profile: Profile, fault_report
) -> None:
    report = fault_report("SIGTERM each gateway in turn, start again")
    token = stack.user_token()
    in_flight: list[httpx.Response | BaseException] = []
    drains: list[float] = []
    back_at: dict[str, float] = {}
    # bounded: the load stops itself once both gateways are back and settled
    duration = 2 * profile.settle + 2 * 30.0
    with (
        BackgroundLoad(stack.chaos_load(token), rate=profile.rate, duration=duration) as load,
        ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool,
        httpx.Client(timeout=30, limits=httpx.Limits(max_connections=IN_FLIGHT)) as client,
    ):
        load.sleep_until(profile.settle)
        for gateway in stack.gateways:
            slow = _slow_requests(pool, client, gateway.url)
            time.sleep(SENT_AFTER)  # they have reached the backend
            with faults.terminated(gateway) as drain_seconds:
                drains.append(drain_seconds)
            back_at[gateway.url] = load.elapsed()
            for future in slow:
                try:
                    in_flight.append(future.result(timeout=30))
                except Exception as exc:  # reported below, with the rest
                    in_flight.append(exc)
            load.sleep_until(load.elapsed() + profile.settle)
        load.stop()
    result = report.load(load.result)

    report.check("zero failed requests", result.failed == 0, result.describe_failures())
    completed = [r for r in in_flight if isinstance(r, httpx.Response) and r.status_code == 200]
    report.check(
        f"all {len(in_flight)} in-flight requests completed (200)",
        len(completed) == len(in_flight) == IN_FLIGHT * len(stack.gateways),
        str([r.status_code if isinstance(r, httpx.Response) else repr(r) for r in in_flight]),
    )
    report.check(
        "each drained after its in-flight requests",
        all(DRAIN_LATENCY_MS / 1000 - SENT_AFTER - 0.2 < d < 25 for d in drains),
        f"drain seconds {[round(d, 2) for d in drains]}",
    )
    served = {
        url: sum(1 for o in result.outcomes if o.gateway == url and o.sent_at > at)
        for url, at in back_at.items()
    }
    report.check(
        "each serves the load again after its restart",
        all(count > 0 for count in served.values()),
        str(served),
    )
    report.verdict()
