"""The load driver against a real fake backend: the rate, the count, every outcome kept."""

from __future__ import annotations

import asyncio

import pytest
from support.processes import ServiceProcess, free_port

from chaos.front import get_load
from chaos.load import BackgroundLoad, LoadResult, Outcome, drive, percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([5.0], 0.99) == 5.0
    assert percentile([], 0.99) == 0.0


@pytest.mark.parametrize(("rate", "duration"), [(0, 1), (-1, 1), (10, 0), (10, 10_000), (1e6, 1)])
async def test_unbounded_loads_are_refused(rate: float, duration: float) -> None:
    async def never(index: int) -> Outcome:
        raise AssertionError("no request may be sent")

    with pytest.raises(ValueError, match="rate must be"):
        await drive(never, rate=rate, duration=duration)


async def test_requests_are_sent_at_the_fixed_rate_and_errors_are_kept() -> None:
    async def flaky(index: int) -> Outcome:
        if index % 10 == 3:
            raise ConnectionResetError("boom")
        await asyncio.sleep(0.3 if index == 5 else 0)  # a slow one holds nothing back
        return Outcome(index=-1, sent_at=-1, latency=0.001, status=200)

    outcomes = await drive(flaky, rate=50, duration=1.0)
    assert [o.index for o in outcomes] == list(range(50))
    assert [round(o.sent_at, 3) for o in outcomes] == [round(i / 50, 3) for i in range(50)]
    errors = [o.index for o in outcomes if o.error]
    assert errors == [3, 13, 23, 33, 43]
    assert all(o.error == "ConnectionResetError" for o in outcomes if o.error)
    result = LoadResult(outcomes)
    assert result.sent == 50
    assert result.failed == 5
    assert result.statuses()[200] == 45


def test_background_load_through_a_real_backend(start_fake_backend) -> None:
    backend: ServiceProcess = start_fake_backend(name="chaos-load-target")
    with BackgroundLoad(get_load([backend.url]), rate=100, duration=2.0) as load:
        pass
    result = load.result
    assert result is not None
    assert result.sent == 200
    assert result.failed == 0, result.describe_failures()
    assert result.by_backend() == {"chaos-load-target": 200}
    assert 0 < result.p99 <= result.max_latency


def test_a_refused_connection_is_a_failure_not_a_lost_request() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with BackgroundLoad(get_load([nowhere]), rate=50, duration=0.5) as load:
        pass
    result = load.result
    assert result is not None
    assert result.sent == 25
    assert result.failed == 25
    assert {o.error for o in result.outcomes} == {"ClientConnectorError"}
