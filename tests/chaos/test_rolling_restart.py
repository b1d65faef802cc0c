"""Fault 5: a rolling restart, SIGTERM to one gateway at a time under load, then start it again.

The load reaches the gateways through :mod:`chaos.front`, which stands in
for the load balancer of a real deployment: it moves a request to the other
gateway only when the connection is refused. In-flight requests on the
terminated gateway must complete: uvicorn closes the listening socket, lets
them finish (up to the graceful timeout, 20 s) and only then exits.
"""

from __future__ import annotations

import socket
import time

from chaos import faults
from chaos.load import BackgroundLoad
from chaos.profiles import Profile
from chaos.report import FaultReportFactory, seconds
from chaos.stack import DRAIN_HOST, DRAIN_LATENCY_MS, ChaosStack

IN_FLIGHT = 6
# seconds between sending the slow requests and the SIGTERM
SENT_AFTER = DRAIN_LATENCY_MS / 1000 / 4


def _send_slow_requests(port: int) -> list[socket.socket]:
    """Requests that take DRAIN_LATENCY_MS at the backend, each on its own connection,
    written out completely before this returns (raw sockets: nothing is left
    queued in a client library when the SIGTERM comes)."""
    sockets = []
    for index in range(IN_FLIGHT):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        request = f"GET /drain/{index} HTTP/1.1\r\nHost: {DRAIN_HOST}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        sockets.append(sock)
    return sockets


def _status(sock: socket.socket) -> int | str:
    """The status of the one response on ``sock`` (read to the end), or what went wrong."""
    data = b""
    try:
        with sock:
            while chunk := sock.recv(65536):
                data += chunk
    except OSError as exc:
        return repr(exc)
    head = data.split(b"\r\n", 1)[0].split()
    return int(head[1]) if len(head) > 1 and head[1].isdigit() else f"no response: {data[:80]!r}"


def test_rolling_restart_of_both_gateways(
    stack: ChaosStack, profile: Profile, fault_report: FaultReportFactory
) -> None:
    report = fault_report("SIGTERM each gateway in turn, start again")
    token = stack.user_token()
    in_flight: list[int | str] = []
    drains: list[float] = []
    back_at: dict[str, float] = {}
    # bounded: the load stops itself once both gateways are back and settled
    duration = 2 * profile.settle + 2 * 30.0
    with BackgroundLoad(stack.chaos_load(token), rate=profile.rate, duration=duration) as load:
        load.sleep_until(profile.settle)
        for gateway in stack.gateways:
            slow = _send_slow_requests(gateway.port)
            time.sleep(SENT_AFTER)  # accepted and passed on to the backend
            with faults.terminated(gateway) as drain_seconds:
                drains.append(drain_seconds)
            back_at[gateway.url] = load.elapsed()
            in_flight += [_status(sock) for sock in slow]
            load.sleep_until(load.elapsed() + profile.settle)
        load.stop()
    result = report.load(load.result)

    report.check("zero failed requests", result.failed == 0, result.describe_failures())
    report.check(
        f"all {len(in_flight)} in-flight requests completed (200)",
        in_flight == [200] * IN_FLIGHT * len(stack.gateways),
        str(in_flight),
    )
    report.check(
        f"each drained its in-flight requests, then exited ({', '.join(map(seconds, drains))})",
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
