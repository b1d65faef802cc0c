"""The background loop every periodic Redis job shares: failures, the stop, STOP.

In-process, with steps that fail on purpose: the jobs' behaviour on a real
Redis is tested by their own tests (canary, drains, quotas, rate limits,
cursor, revocations) and by the store outages of tests/chaos.
"""

from __future__ import annotations

import asyncio

import pytest

from gatehouse_common.redis_loop import LOOP_FAILURES, STOP, RedisLoop

pytestmark = pytest.mark.unit


class Unreachable(ConnectionError):
    """What a step raises for a Redis that does not answer."""


def failures(name: str) -> float:
    return LOOP_FAILURES.labels(loop=name)._value.get()


async def test_a_failed_round_is_counted_told_and_the_loop_goes_on() -> None:
    told: list[BaseException] = []
    outcomes: list[BaseException | None] = [Unreachable("down"), RuntimeError("bug"), None]
    done = asyncio.Event()

    async def step() -> object:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        done.set()
        return STOP

    loop = RedisLoop(
        "test-goes-on", step, interval=0, errors=(Unreachable,), on_failure=told.append
    )
    before = failures("test-goes-on")
    loop.start()
    await done.wait()
    await loop.stop()
    # The unreachable round counts and is told; the bug is only logged.
    assert failures("test-goes-on") - before == 1
    assert [type(exc) for exc in told] == [Unreachable]
    assert outcomes == []


async def test_any_error_fails_tells_of_an_unexpected_exception_too() -> None:
    told: list[BaseException] = []

    async def step() -> object:
        raise RuntimeError("bug")

    loop = RedisLoop("test-any", step, interval=0, on_failure=told.append, any_error_fails=True)
    assert await loop.once() is None
    assert [type(exc) for exc in told] == [RuntimeError]
    assert failures("test-any") == 0  # not an unreachable Redis


async def test_stop_ends_the_loop_and_start_runs_it_again() -> None:
    rounds = 0
    ran = asyncio.Event()

    async def step() -> None:
        nonlocal rounds
        rounds += 1
        ran.set()

    loop = RedisLoop("test-stop", step, interval=0)
    loop.start()
    await ran.wait()
    await loop.stop()
    assert not loop.running
    stopped_at = rounds
    await asyncio.sleep(0)
    assert rounds == stopped_at
    ran.clear()
    await loop.begin()  # one round now, then the loop again
    assert rounds == stopped_at + 1 and loop.running
    await loop.stop()
