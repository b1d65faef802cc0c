"""The client-side front: it fails over on a refused connection, and on nothing else."""

from __future__ import annotations

import signal

from support.processes import ServiceProcess

from chaos.front import get_load
from chaos.load import BackgroundLoad


def test_a_stopped_target_is_skipped_without_a_failure(start_fake_backend) -> None:
    first: ServiceProcess = start_fake_backend(name="front-a")
    second: ServiceProcess = start_fake_backend(name="front-b")
    with BackgroundLoad(get_load([first.url, second.url]), rate=100, duration=3.0) as load:
        load.sleep_until(1.0)
        first.stop()  # SIGTERM: uvicorn drains, then the port refuses
        stopped_at = load.elapsed()
    result = load.result
    assert result is not None
    assert result.failed == 0, result.describe_failures()
    after = result.by_backend(start=stopped_at + 0.1)
    assert set(after) == {"front-b"}
    before = result.by_backend(end=1.0)
    assert before["front-a"] > 0 and before["front-b"] > 0


def test_a_crash_mid_load_shows_as_failures(start_fake_backend) -> None:
    """With no second target there is nowhere to fail over: the harness must see it."""
    only: ServiceProcess = start_fake_backend(name="front-only")
    with BackgroundLoad(get_load([only.url]), rate=100, duration=2.0) as load:
        load.sleep_until(0.8)
        only.signal(signal.SIGKILL)
        killed_at = load.elapsed()
    result = load.result
    assert result is not None
    late = [o for o in result.outcomes if o.sent_at > killed_at + 0.1]
    assert late and all(o.status is None for o in late)
    assert result.failed >= len(late)
