"""Fuzzing the gateway's upstream client with hostile backend responses.

A backend sends generated responses (:mod:`hostile_responses`), one per
request, sometimes keeping the connection for the next. Whatever it sends,
the client of the gateway gets, within the route's timeouts plus a margin:

- exactly the backend's status and body, complete, when the response is one
  that h11 and httptools both read alike (:func:`reference`);
- otherwise a complete 502/504 JSON answer, or a streamed answer cut short,
  or what a lenient parser (httptools) reads, complete;
- never a 500, never nothing at all; and the gateway's memory stays bounded.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from adversarial.backends import read_head
from adversarial.fuzz.budget import budget
from adversarial.fuzz.hostile_responses import Reading, ResponseCase, generate, reference
from adversarial.fuzz.hostile_responses import _httptools as lenient_reading
from adversarial.raw import NoResponse, RawResponse, get, rss_bytes
from adversarial.support import route
from support.gateway import GatewayProcess, Launcher
from support.socket_server import ThreadedSocketServer

HOST = "up.fuzz.test"
READ_TIMEOUT = 2.0
MARGIN = 12.0
MAX_RSS_GROWTH = 64 * 1024 * 1024
MAX_FAILURES = 3


class MutatingBackend(ThreadedSocketServer):
    """Answers every request with the current case; the test sets it before each request."""

    def __init__(self) -> None:
        self.case = ResponseCase()
        super().__init__()

    def handle(self, conn: socket.socket) -> None:  # type: ignore[override]
        # "keep" and "hold" both serve the next request on the connection; "hold"
        # closes it after 2 s idle, as a server's keep-alive timeout would.
        with conn, contextlib.suppress(OSError):
            conn.settimeout(15)
            while b"\r\n\r\n" in read_head(conn):
                case = self.case
                for pause, piece in case.pieces:
                    time.sleep(pause)
                    conn.sendall(piece)
                if case.after == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if case.after == "close":
                    return
                conn.settimeout(2 if case.after == "hold" else 15)


@pytest.fixture(scope="module")
def backend() -> Iterator[MutatingBackend]:
    started = MutatingBackend()
    yield started
    started.close()


@pytest.fixture(scope="module")
def gateway(module_launcher: Launcher, backend: MutatingBackend) -> GatewayProcess:
    upstream = route(
        "up",
        [backend.url],
        [HOST],
        timeouts={"connect": 2, "read": READ_TIMEOUT},
        retries={"attempts": 0},
        passive_health={"enabled": False},
    )
    return module_launcher.gateway({"routes": [upstream]})


def _judge(got: RawResponse, case: ResponseCase) -> str | None:
    """Why ``got`` is not an acceptable answer to ``case``, or None."""
    if got.status == 500:
        return f"the gateway answered 500: {got.describe()[:200]}"
    if case.must_fail:
        if (
            got.status in (502, 504)
            and got.complete
            and got.header("content-type") == ("application/json")
        ):
            return None
        return f"{case.must_fail}: expected a 502/504 JSON, got {got.describe()[:200]}"
    expected: Reading = reference(case, READ_TIMEOUT)
    if expected.error is None:
        if got.status != expected.status or not got.complete or got.body != expected.body:
            return (
                f"a well-formed {expected.status} ({len(expected.body)} bytes) reached the client "
                f"as {got.status} ({len(got.body)} bytes, complete={got.complete})"
            )
        return None
    if got.status in (502, 504):
        if not got.complete:
            return f"the gateway's own {got.status} was cut short"
        try:
            if got.json().get("error"):
                return None
        except ValueError:
            pass
        return f"a {got.status} that is not the gateway's JSON: {got.describe()[:200]}"
    if not got.complete:
        return None  # a streamed body broke off: a cut connection is the honest signal
    if (
        got.status in (204, 304)
        and not got.body
        and case.data.startswith(b"HTTP/1.1 %d " % got.status)
    ):
        return None  # a status without a body: whatever follows its head is not part of it
    lenient = lenient_reading(case.data, closes=case.after != "keep")
    if lenient.error is None and (lenient.status, lenient.body) == (got.status, got.body):
        return None
    return (
        f"a broken response ({expected.error}) reached the client as {got.status} "
        f"({len(got.body)} bytes)"
    )


def test_hostile_backend_responses_end_as_a_response_or_a_502(
    gateway: GatewayProcess, backend: MutatingBackend
) -> None:
    plan = budget()
    rng = random.Random(plan.seed)
    failures: list[str] = []
    baseline = rss_bytes(gateway.pid)
    count = 0
    for index in plan.cases():
        count += 1
        case = generate(rng)
        backend.case = case
        bound = READ_TIMEOUT + 2 + case.pauses + MARGIN
        started = time.monotonic()
        try:
            got = get(gateway.url, f"/case/{index}", HOST, timeout=bound)
            problem = _judge(got, case)
        except NoResponse as exc:
            waited = time.monotonic() - started
            problem = f"no answer after {waited:.1f}s: {exc}"
        if problem:
            failures.append(
                f"case {index} (FUZZ_SEED={plan.seed}) {case.note}\n"
                f"  backend sent: {case.data[:400]!r}{'...' if len(case.data) > 400 else ''}\n"
                f"  -> {problem}\n"
            )
            if len(failures) >= MAX_FAILURES:
                break
    growth = rss_bytes(gateway.pid) - baseline
    assert gateway.process is not None and gateway.process.poll() is None, "the gateway died"
    assert not failures, f"{len(failures)} violation(s) in {count} cases:\n" + "\n".join(failures)
    assert growth < MAX_RSS_GROWTH, f"gateway RSS grew {growth / 2**20:.1f} MiB over {count} cases"
