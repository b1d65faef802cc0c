"""A bounded, open-loop load driver: a fixed request rate for a fixed time.

Request ``i`` is due at ``start + i / rate`` whatever happened to the earlier
ones, so a stalled server cannot slow the load down and hide its own latency
(coordinated omission); ``lag`` records how late the driver itself was. Every
request's outcome is kept, so a check can look at any window of the run.

The load runs on its own event loop in a thread (:class:`BackgroundLoad`),
leaving the test's thread free to kill, stop and restart processes meanwhile.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace

# Hard bounds, whatever a profile asks for: the load stays a load, never a flood.
MAX_RATE = 2000.0
MAX_DURATION = 600.0


@dataclass(frozen=True)
class Outcome:
    """One request: when it was sent (seconds since the load began) and how it ended."""

    index: int
    sent_at: float
    latency: float
    status: int | None = None
    error: str | None = None
    backend: str | None = None
    gateway: str | None = None
    lag: float = 0.0
    # what the request was, when a load mixes kinds (e.g. "signup:<name>", "login")
    label: str | None = None
    # for an error status: the JSON body's "error" code, or "not-json"
    detail: str | None = None

    @property
    def done_at(self) -> float:
        return self.sent_at + self.latency


Sender = Callable[[int], Awaitable[Outcome]]
SenderFactory = Callable[[], AbstractAsyncContextManager[Sender]]


def percentile(values: Iterable[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1); 0.0 for no values."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


@dataclass
class LoadResult:
    """Every outcome of one run, and the figures the report shows."""

    outcomes: list[Outcome]
    ok_statuses: frozenset[int] = frozenset({200})

    def is_ok(self, outcome: Outcome) -> bool:
        return outcome.status in self.ok_statuses

    @property
    def sent(self) -> int:
        return len(self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not self.is_ok(o)]

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def p99(self) -> float:
        return percentile((o.latency for o in self.outcomes), 0.99)

    @property
    def max_latency(self) -> float:
        return max((o.latency for o in self.outcomes), default=0.0)

    def statuses(self) -> Counter[int | str]:
        return Counter(
            o.status if o.status is not None else f"error:{o.error}" for o in self.outcomes
        )

    def by_backend(self, start: float = 0.0, end: float = math.inf) -> Counter[str | None]:
        """How many requests each backend answered among those sent in [start, end)."""
        return Counter(o.backend for o in self.outcomes if start <= o.sent_at < end)

    def window(self, start: float, end: float = math.inf) -> list[Outcome]:
        return [o for o in self.outcomes if start <= o.sent_at < end]

    def describe_failures(self, limit: int = 5) -> str:
        shown = ", ".join(
            f"#{o.index}@{o.sent_at:.2f}s {o.status or o.error}" for o in self.failures[:limit]
        )
        return f"{self.failed} failed ({dict(self.statuses())}): {shown}"


async def drive(
    sender: Sender, *, rate: float, duration: float, stop: threading.Event | None = None
) -> list[Outcome]:
    """Send ``rate * duration`` requests at a fixed rate; return every outcome, in order.

    A request that raises is recorded as an error outcome, never lost.
    """
    if not (0 < rate <= MAX_RATE) or not (0 < duration <= MAX_DURATION):
        raise ValueError(f"rate must be in (0, {MAX_RATE}], duration in (0, {MAX_DURATION}]")
    loop = asyncio.get_running_loop()
    started = loop.time()
    total = round(rate * duration)

    async def one(index: int, due: float) -> Outcome:
        lag = max(0.0, loop.time() - due)
        sent = time.monotonic()
        try:
            outcome = await sender(index)
        except Exception as exc:  # every failure is an outcome to report
            return Outcome(
                index=index,
                sent_at=due - started,
                latency=time.monotonic() - sent,
                error=type(exc).__name__,
                lag=lag,
            )
        return replace(outcome, index=index, sent_at=due - started, lag=lag)

    tasks: list[asyncio.Task[Outcome]] = []
    for index in range(total):
        if stop is not None and stop.is_set():
            break
        due = started + index / rate
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(index, due)))
    return list(await asyncio.gather(*tasks))


@dataclass
class BackgroundLoad:
    """Run :func:`drive` in a thread of its own while the caller injects a fault.

    ``with BackgroundLoad(factory, rate=100, duration=10) as load:`` starts it;
    leaving the block waits for the last request (bounded by the duration plus
    ``grace``); ``load.result`` then holds every outcome. ``load.elapsed()``
    says where in the run the caller is, to line up a fault with the outcomes.
    """

    factory: SenderFactory
    rate: float
    duration: float
    ok_statuses: frozenset[int] = frozenset({200})
    grace: float = 60.0
    result: LoadResult | None = None
    _thread: threading.Thread | None = None
    _started: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _t0: float = 0.0
    _error: BaseException | None = None

    def stop(self) -> None:
        """Send no more requests (those in flight still complete and are kept)."""
        self._stop.set()

    def _run(self) -> None:
        async def main() -> list[Outcome]:
            async with self.factory() as sender:
                self._t0 = time.monotonic()
                self._started.set()
                return await drive(sender, rate=self.rate, duration=self.duration, stop=self._stop)

        try:
            outcomes = asyncio.run(main())
            self.result = LoadResult(outcomes, self.ok_statuses)
        except BaseException as exc:  # handed to the caller's thread in __exit__
            self._error = exc
        finally:
            self._started.set()

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def sleep_until(self, moment: float) -> None:
        """Block until ``moment`` seconds into the run."""
        remaining = moment - self.elapsed()
        if remaining > 0:
            time.sleep(remaining)

    def __enter__(self) -> BackgroundLoad:
        self._thread = threading.Thread(target=self._run, name="chaos-load", daemon=True)
        self._thread.start()
        self._started.wait(timeout=30)
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.duration + self.grace)
            if self._thread.is_alive():
                raise TimeoutError("the load did not finish in time")
        if self._error is not None and exc_type is None:
            raise RuntimeError("the load driver failed") from self._error
