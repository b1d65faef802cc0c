"""Interleaved rounds: every target once per round, so drift hits all of them alike.

A machine's speed wanders over minutes (turbo, other tenants, page cache), so
running all of one target and then all of the next would bias the ratios. Each
round runs every target once, in the same order; the reported figure is the
median over rounds, per metric.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gatehouse_loadtest.procs import cpu_seconds, tls_verify
from gatehouse_loadtest.wrk import WrkResult, run_wrk

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """Something wrk is pointed at, and the processes whose CPU time it costs."""

    name: str
    description: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    cpu_pids: Sequence[int] = ()
    # an https target's certificate (self-signed by the run); wrk does not verify
    ca_file: Path | None = None


@dataclass(frozen=True)
class Sample:
    result: WrkResult
    cpu_s: float

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s / self.result.requests * 1e6 if self.result.requests else 0.0


@dataclass(frozen=True)
class Summary:
    """The median over rounds of each figure, and the error total."""

    target: Target
    samples: Sequence[Sample]

    def _median(self, pick: Callable[[Sample], float]) -> float:
        return statistics.median(pick(s) for s in self.samples)

    @property
    def rps(self) -> float:
        return self._median(lambda s: s.result.rps)

    @property
    def p50_ms(self) -> float:
        return self._median(lambda s: s.result.p50_ms)

    @property
    def p99_ms(self) -> float:
        return self._median(lambda s: s.result.p99_ms)

    @property
    def p999_ms(self) -> float:
        return self._median(lambda s: s.result.p999_ms)

    @property
    def cpu_us(self) -> float:
        return self._median(lambda s: s.cpu_us_per_request)

    @property
    def errors(self) -> int:
        return sum(s.result.errors for s in self.samples)

    @property
    def requests(self) -> int:
        return sum(s.result.requests for s in self.samples)


@dataclass(frozen=True)
class LoadShape:
    threads: int = 1
    connections: int = 50
    duration_s: float = 8.0
    warmup_s: float = 2.0


def check_target(target: Target) -> None:
    """One request first: a target that answers 401 or 404 would benchmark its error page."""
    response = httpx.get(
        target.url, headers=dict(target.headers), timeout=10.0, verify=tls_verify(target.ca_file)
    )
    if response.status_code != 200:
        raise RuntimeError(
            f"{target.name}: GET {target.url} answered {response.status_code}:"
            f" {response.text[:300]}"
        )


def measure(target: Target, shape: LoadShape, duration_s: float | None = None) -> Sample:
    """One wrk run against ``target`` with its CPU cost read around it."""
    before = cpu_seconds(target.cpu_pids)
    result, _ = run_wrk(
        target.url,
        threads=shape.threads,
        connections=shape.connections,
        duration_s=duration_s or shape.duration_s,
        headers=target.headers,
    )
    return Sample(result=result, cpu_s=cpu_seconds(target.cpu_pids) - before)


def run_rounds(
    targets: Sequence[Target],
    shape: LoadShape,
    rounds: int,
    *,
    progress: Callable[[str], None] = logger.info,
) -> list[Summary]:
    """Warm every target up, then ``rounds`` interleaved rounds; one Summary per target."""
    for target in targets:
        check_target(target)
        if shape.warmup_s > 0:
            measure(target, shape, duration_s=shape.warmup_s)
    samples: dict[str, list[Sample]] = {t.name: [] for t in targets}
    for number in range(1, rounds + 1):
        for target in targets:
            sample = measure(target, shape)
            samples[target.name].append(sample)
            progress(
                f"round {number}/{rounds} {target.name:<22} {sample.result.rps:>9,.0f} req/s"
                f"  p99 {sample.result.p99_ms:6.2f} ms  errors {sample.result.errors}"
            )
    return [Summary(target=t, samples=samples[t.name]) for t in targets]
