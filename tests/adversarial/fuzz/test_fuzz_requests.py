"""Differential fuzzing of the gateway's request handling, against a recording backend.

Hostile requests (:mod:`hostile_requests`) go raw to a gateway whose two
routes end in :class:`RecordingBackend` sockets that keep the exact bytes
the gateway sent. For every case:

- the gateway never answers 500, and answers (or closes) within its timeouts;
- every backend connection holds exactly one request, framed the same way by
  httptools and h11, with nothing after it (no request smuggled through);
- the backend got no more requests than the client got answers;
- the Host (as X-Forwarded-Host) and path a backend got agree with the route
  that sent it there, and the path is normalised (no dot segments, no ``//``).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from adversarial.fuzz.budget import budget
from adversarial.fuzz.framing import cut_short, disagreement, httptools_framing
from adversarial.fuzz.hostile_requests import ALPHA, BETA, Case, generate
from adversarial.fuzz.recorder import Recorded, RecordingBackend
from adversarial.raw import NoResponse, RawResponse, Reader, connect, read_response
from adversarial.support import route
from support.gateway import GatewayProcess, Launcher

# Header and body idle timeouts of 1 s, connect and read of 2 s: no honest
# answer takes longer than their sum, so this bound (with a wide margin) is a hang.
BOUND = 15.0
MAX_FAILURES = 3


@pytest.fixture(scope="module")
def recorders() -> Iterator[dict[str, RecordingBackend]]:
    started = {"alpha": RecordingBackend("alpha"), "beta": RecordingBackend("beta")}
    yield started
    for backend in started.values():
        backend.close()


@pytest.fixture(scope="module")
def gateway(module_launcher: Launcher, recorders: dict[str, RecordingBackend]) -> GatewayProcess:
    common: dict[str, Any] = {
        "timeouts": {"connect": 2, "read": 2},
        "retries": {"attempts": 0},
        "passive_health": {"enabled": False},
    }
    document = {
        "routes": [
            route("alpha", [recorders["alpha"].url], [ALPHA], **common),
            route("beta", [recorders["beta"].url], [BETA], path_prefix="/beta", **common),
        ]
    }
    env = {
        "GATEHOUSE_GATEWAY_HEADER_TIMEOUT": "1",
        "GATEHOUSE_GATEWAY_BODY_IDLE_TIMEOUT": "1",
    }
    return module_launcher.gateway(document, env=env)


def _client_side(gateway: GatewayProcess, case: Case) -> tuple[list[RawResponse], str | None]:
    """The answers the client got, and a violation if it waited past the bound."""
    method = case.data.split(b" ", 1)[0].decode("latin-1")
    answers: list[RawResponse] = []
    with connect(gateway.url, timeout=BOUND) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(case.data)
        reader = Reader(sock, BOUND)
        try:
            answers.append(read_response(reader, method=method))
        except NoResponse as exc:
            if not reader.eof:
                return answers, f"no answer and no close within {BOUND:.0f}s ({exc})"
            return answers, None
        # Anything more on this connection: a second answer means a second request.
        reader.deadline = time.monotonic() + (BOUND if case.closes else 0.3)
        while True:
            try:
                answers.append(read_response(reader, method=method))
            except (NoResponse, ValueError):
                break
    return answers, None


def _host_key(value: bytes) -> str:
    host = value.decode("latin-1").strip().lower()
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host.rstrip(".")


def _backend_side(record: Recorded, refused: bool) -> list[str]:
    """What is wrong with what one backend got; ``refused``: the client got a 4xx or nothing."""
    problems = []
    why = disagreement(record.data)
    if why and refused and cut_short(record.data):
        return []  # the gateway gave up on the client's body and closed: no second request
    if why:
        problems.append(f"{record.backend} got ambiguous bytes: {why}")
        return problems
    framing = httptools_framing(record.data)
    headers = dict(framing.headers[0])
    _, target, _ = framing.requests[0]
    path = target.split(b"?", 1)[0].decode("latin-1")
    forwarded_host = _host_key(headers.get(b"x-forwarded-host", b""))
    wanted = ALPHA if record.backend == "alpha" else BETA
    if forwarded_host != wanted:
        problems.append(f"{record.backend} got X-Forwarded-Host {forwarded_host!r}")
    if record.backend == "beta" and not (path == "/beta" or path.startswith("/beta/")):
        problems.append(f"beta got path {path!r}, outside its /beta prefix")
    segments = path.split("/")[1:]
    if any(s in (".", "..", "") for s in segments[:-1]) or segments[-1:] in ([".."], ["."]):
        problems.append(f"{record.backend} got a path that is not normalised: {path!r}")
    if any(s.lower() in ("%2e", "%2e%2e", ".%2e", "%2e.") for s in segments):
        problems.append(f"{record.backend} got an encoded dot segment: {path!r}")
    if "\\" in path or "%2f" in path.lower() or "%5c" in path.lower():
        problems.append(f"{record.backend} got an encoded or back slash: {path!r}")
    return problems


def test_hostile_requests_are_framed_routed_and_answered_sanely(
    gateway: GatewayProcess, recorders: dict[str, RecordingBackend]
) -> None:
    plan = budget()
    rng = random.Random(plan.seed)
    failures: list[str] = []
    count = 0
    for index in plan.cases():
        count += 1
        case = generate(rng)
        marks = {name: backend.count() for name, backend in recorders.items()}
        answers, hang = _client_side(gateway, case)
        records = [
            record
            for name, backend in recorders.items()
            for record in backend.taken_since(marks[name])
        ]
        for record in records:
            record.done.wait(5)
        problems = [hang] if hang else []
        problems += [
            f"the gateway answered 500: {a.describe()[:200]}" for a in answers if a.status == 500
        ]
        forwarded = [r for r in records if httptools_framing(r.data).requests]
        if len(forwarded) > len(answers):
            problems.append(
                f"{len(forwarded)} requests reached backends for {len(answers)} answers"
            )
        refused = all(400 <= a.status < 500 for a in answers)
        for record in records:
            problems += _backend_side(record, refused)
        if problems:
            failures.append(
                f"case {index} (FUZZ_SEED={plan.seed}) {case.note}\n"
                f"  sent: {case.data[:600]!r}\n"
                f"  answers: {[a.status for a in answers]}\n"
                + "".join(f"  backend {r.backend} got: {r.data[:600]!r}\n" for r in records)
                + "".join(f"  -> {p}\n" for p in problems)
            )
            if len(failures) >= MAX_FAILURES:
                break
    assert gateway.process is not None and gateway.process.poll() is None, "the gateway died"
    assert not failures, f"{len(failures)} violation(s) in {count} cases:\n" + "\n".join(failures)
