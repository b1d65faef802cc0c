"""The revocation list in process: what it refuses, what it ignores, Redis coming and going.

Revocations are written as auth writes them (:class:`support.revocations.Revoker`)
into the shared Redis under a prefix of the test's own, or into a redis-server
of the test's own when the test takes Redis away.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis
from prometheus_client import REGISTRY
from support.redis_server import RedisServer
from support.revocations import Revoker

from gatehouse_gateway.revocation import RevocationList


async def wait_for(check: Callable[[], bool], what: str, timeout: float = 5.0) -> float:
    """Poll ``check`` every 10 ms; the seconds it took, or fail naming ``what``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def store_up() -> float | None:
    return REGISTRY.get_sample_value("gatehouse_revocation_store_up")


def offline(clock: Callable[[], float] = time.time) -> RevocationList:
    return RevocationList(redis_url=None, prefix="", timeout=1, retry_interval=1, clock=clock)


@pytest.fixture
async def revocations(redis_url: str, redis_prefix: str) -> AsyncIterator[RevocationList]:
    listed = RevocationList(
        redis_url=redis_url, prefix=redis_prefix, timeout=0.5, retry_interval=0.2
    )
    await listed.start()
    yield listed
    await listed.close()


@pytest.fixture
def revoker(redis_url: str, redis_prefix: str) -> Revoker:
    return Revoker(redis.Redis.from_url(redis_url), redis_prefix)


def test_a_token_id_or_an_earlier_token_of_a_subject_is_revoked() -> None:
    listed = offline()
    listed.add_token("t1", time.time() + 60)
    listed.add_subject("7", 1000.5)
    assert listed.revoked_by("t1", "42", time.time()) == "token"
    assert listed.revoked_by("t2", "42", 10) is None
    assert listed.revoked_by("t2", "7", 1000) == "subject"
    # issued at or after the subject's "not before": a new sign-in, accepted
    assert listed.revoked_by("t2", "7", 1000.5) is None
    assert listed.revoked_by("t2", "7", 1001) is None
    # no iat: it cannot show it came after, so it is refused
    assert listed.revoked_by(None, "7", None) == "subject"


def test_a_later_not_before_wins_and_an_earlier_one_does_not_undo_it() -> None:
    listed = offline()
    listed.add_subject("7", 2000)
    listed.add_subject("7", 1000)
    assert listed.revoked_by(None, "7", 1500) == "subject"


def test_entries_are_forgotten_once_no_token_they_refuse_can_live() -> None:
    now = [10_000.0]
    listed = RevocationList(
        redis_url=None,
        prefix="",
        timeout=1,
        retry_interval=1,
        retention=60,
        max_token_lifetime=900,
        clock=lambda: now[0],
    )
    listed.add_token("t1", 10_030)
    listed.add_subject("7", 10_000)
    now[0] = 10_080
    listed.prune()
    assert listed.revoked_by("t1", "42", 1) == "token"
    now[0] = 10_100
    listed.prune()
    assert listed.revoked_by("t1", "42", 1) is None
    assert listed.revoked_by(None, "7", 9_999) == "subject"
    now[0] = 10_000 + 900 + 61
    listed.prune()
    assert listed.revoked_by(None, "7", 9_999) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"kind": "jti", "id": "t1"}',
        b'{"kind": "jti", "id": "t1", "exp": "soon"}',
        b'{"kind": "jti", "id": "t1", "exp": true}',
        b'{"kind": "jti", "id": "t1", "exp": NaN}',
        b'{"kind": "jti", "id": "t1", "exp": 1e999}',
        b'{"kind": "sub", "id": "", "nbf": 1}',
        b'{"kind": "sub", "id": 7, "nbf": 1}',
        b'{"kind": "everyone", "id": "7", "nbf": 1}',
        b"\xff\xfe",
    ],
)
def test_an_event_that_is_not_one_is_ignored(raw: bytes) -> None:
    listed = offline()
    assert listed.apply_event(raw) is False
    assert listed.snapshot()["tokens"] == listed.snapshot()["subjects"] == 0


async def test_an_event_reaches_the_list_within_a_second(
    revocations: RevocationList, revoker: Revoker
) -> None:
    assert revocations.state == "up"
    jti = uuid.uuid4().hex
    revoker.revoke_token(jti, time.time() + 600)
    took = await wait_for(lambda: revocations.revoked_by(jti, "42", 0) is not None, "the event")
    assert took < 1.0
    not_before = revoker.revoke_subject("7")
    await wait_for(lambda: revocations.revoked_by(None, "7", 0) is not None, "the subject")
    assert revocations.revoked_by(None, "7", not_before + 1) is None


async def test_start_reads_what_was_revoked_before(
    redis_url: str, redis_prefix: str, revoker: Revoker
) -> None:
    revoker.revoke_token("before", time.time() + 600, publish=False)
    revoker.revoke_subject("9", publish=False)
    listed = RevocationList(redis_url=redis_url, prefix=redis_prefix, timeout=0.5, retry_interval=1)
    await listed.start()
    try:
        assert listed.revoked_by("before", "42", 0) == "token"
        assert listed.revoked_by(None, "9", 0) == "subject"
    finally:
        await listed.close()


@pytest.mark.slow
async def test_redis_going_away_keeps_the_list_and_a_resync_catches_up(
    private_redis: RedisServer,
) -> None:
    """Stopped: the list stays and the metric says so. Back (empty, as a restarted Redis
    without persistence is): what was known stays known, and a revocation written while
    this list was not listening (never announced to it) arrives by the resync."""
    private_redis.start()
    listed = RevocationList(
        redis_url=private_redis.redis_url, prefix="t:", timeout=0.25, retry_interval=0.2
    )
    await listed.start()
    try:
        revoker = Revoker(private_redis.client(), "t:")
        revoker.revoke_token("old", time.time() + 600)
        await wait_for(lambda: listed.revoked_by("old", "42", 0) is not None, "the event")
        assert store_up() == 1
        private_redis.stop()
        await wait_for(lambda: listed.state == "unreachable", "the outage to be noticed")
        assert store_up() == 0
        assert listed.revoked_by("old", "42", 0) == "token"
        private_redis.start()
        # unannounced: only a resync can bring it
        Revoker(private_redis.client(), "t:").revoke_token(
            "while-away", time.time() + 600, publish=False
        )
        await wait_for(lambda: listed.state == "up", "the reconnect", timeout=10)
        assert listed.revoked_by("while-away", "42", 0) == "token"
        assert listed.revoked_by("old", "42", 0) == "token"
        assert store_up() == 1
    finally:
        await listed.close()


@pytest.mark.slow
async def test_a_frozen_redis_is_noticed(private_redis: RedisServer) -> None:
    """SIGSTOP keeps the socket open and silent: the list's own PING notices."""
    private_redis.start()
    listed = RevocationList(
        redis_url=private_redis.redis_url, prefix="t:", timeout=0.25, retry_interval=0.2
    )
    await listed.start()
    try:
        assert listed.state == "up"
        private_redis.freeze()
        await wait_for(lambda: listed.state == "unreachable", "the freeze to be noticed")
        private_redis.thaw()
        await wait_for(lambda: listed.state == "up", "the thaw", timeout=10)
    finally:
        private_redis.thaw()
        await listed.close()
