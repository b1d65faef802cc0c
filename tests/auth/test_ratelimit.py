"""Sliding windows (in Redis and in-process) and what the limiters make of them, live too."""

from __future__ import annotations

import concurrent.futures
import time
import uuid

import httpx
import pytest
import redis
from auth.conftest import RATE_PER_CLIENT, RATE_PER_EMAIL_CLIENT, RATE_WINDOW_SECONDS
from support.auth import PASSWORD, AuthService, new_account, signup
from support.databases import REDIS_URL, unique_redis_prefix
from support.processes import free_port

from gatehouse_auth.limits import LoginRateLimiter, SignupRateLimiter, client_scope
from gatehouse_auth.ratelimit import (
    LocalWindowStore,
    RedisWindowStore,
    Window,
    WindowStore,
    connect_redis,
)


@pytest.fixture
def redis_client(redis_prefix: str):
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture(params=["local", "redis"])
def store(request: pytest.FixtureRequest, redis_prefix: str):
    if request.param == "local":
        yield LocalWindowStore()
        return
    client = redis.Redis.from_url(REDIS_URL)
    yield RedisWindowStore(client)
    client.close()


def _exercise_window(store: WindowStore, key: str) -> None:
    first = store.hit(key, 2, 400, "a")
    assert (first.wait_ms, first.count) == (0, 1)
    assert store.hit(key, 2, 400, "b").count == 2
    refused = store.hit(key, 2, 400, "c")
    assert refused.refused and 0 < refused.wait_ms <= 400 and refused.count == 2
    assert not store.hit(key + "-other", 2, 400, "d").refused  # keys are independent
    time.sleep(refused.wait_ms / 1000 + 0.05)
    assert not store.hit(key, 2, 400, "e").refused  # released once the oldest left the window


@pytest.mark.unit
def test_local_window_engages_and_releases() -> None:
    _exercise_window(LocalWindowStore(), "k")


def test_redis_window_engages_and_releases(redis_client: redis.Redis, redis_prefix: str) -> None:
    _exercise_window(RedisWindowStore(redis_client), f"{redis_prefix}k")
    ttl = redis_client.pttl(f"{redis_prefix}k")
    assert 0 < ttl <= 400  # windows expire on their own


def test_forget_peek_delete_and_registries(store: WindowStore, redis_prefix: str) -> None:
    key, other = f"{redis_prefix}w", f"{redis_prefix}w2"
    store.hit(key, 2, 60_000, "one")
    store.hit(key, 2, 60_000, "two")
    full, empty = Window(key, 2, 60_000), Window(other, 2, 60_000)
    wait, nothing = store.peek([full, empty])
    assert 0 < wait <= 60_000 and nothing == 0
    store.forget(key, "two")  # a success takes its attempt back
    assert store.peek([full]) == [0]
    assert store.hit(key, 2, 60_000, "three").count == 2
    store.delete([key, other])
    assert store.peek([full]) == [0]
    registry = f"{redis_prefix}registry"
    store.note(registry, '["a@example.com", null]', 60_000)
    store.note(registry, '["b@example.com", "1.2.3.4"]', 60_000)
    assert store.entries(registry) == ['["a@example.com", null]', '["b@example.com", "1.2.3.4"]']
    store.unnote(registry, ['["a@example.com", null]'])
    assert store.entries(registry) == ['["b@example.com", "1.2.3.4"]']


@pytest.mark.unit
def test_local_windows_of_other_lengths_are_not_dropped_early() -> None:
    """Memory bounding drops idle windows by their own length, not the caller's."""
    store = LocalWindowStore()
    store.MAX_KEYS = 1  # type: ignore[misc]
    store.hit("hour", 1, 3_600_000, "a")
    time.sleep(0.02)
    store.hit("short-1", 5, 10, "b")
    store.hit("short-2", 5, 10, "c")
    assert store.hit("hour", 1, 3_600_000, "d").refused


def test_redis_window_is_shared_between_clients(redis_prefix: str) -> None:
    """Two replicas (two clients) see one window."""
    first, second = redis.Redis.from_url(REDIS_URL), redis.Redis.from_url(REDIS_URL)
    try:
        key = f"{redis_prefix}shared"
        assert not RedisWindowStore(first).hit(key, 1, 5000, "a").refused
        assert RedisWindowStore(second).hit(key, 1, 5000, "b").refused
    finally:
        first.close()
        second.close()


def _limiter(store: WindowStore, prefix: str = "p:", **limits: int) -> LoginRateLimiter:
    settings = {"per_client": 100, "per_email_client": 3, "per_email": 5, **limits}
    return LoginRateLimiter(
        store, prefix=prefix, window_seconds=60, email_window_seconds=3600, **settings
    )


def test_limiter_lets_attempts_through_when_redis_is_down() -> None:
    dead = connect_redis(f"redis://127.0.0.1:{free_port()}/0")
    limiter = _limiter(RedisWindowStore(dead), unique_redis_prefix(), per_email_client=1)
    signups = SignupRateLimiter(
        RedisWindowStore(dead), prefix="p:", per_client=1, window_seconds=60
    )
    try:
        for _ in range(2):
            attempt = limiter.check(email="a@example.com", client="127.0.0.1")
            assert attempt.wait == 0
            limiter.succeeded(attempt)
            assert signups.check(client="127.0.0.1") == 0
    finally:
        dead.close()


@pytest.mark.unit
def test_limiter_off_when_limits_are_zero() -> None:
    limiter = _limiter(LocalWindowStore(), per_client=0, per_email_client=0, per_email=0)
    assert all(limiter.check(email="a@b.c", client="x").wait == 0 for _ in range(50))
    signups = SignupRateLimiter(LocalWindowStore(), prefix="p:", per_client=0, window_seconds=60)
    assert all(signups.check(client="x") == 0 for _ in range(50))


def test_one_address_cannot_lock_an_email_for_the_others(
    store: WindowStore, redis_prefix: str
) -> None:
    limiter = _limiter(store, redis_prefix)
    email = f"victim.{uuid.uuid4().hex[:6]}@example.com"
    waits = [limiter.check(email=email, client="6.6.6.6").wait for _ in range(5)]
    assert [w > 0 for w in waits] == [False, False, False, True, True]
    assert limiter.check(email=email, client="198.51.100.7").wait == 0  # the owner is let in
    [lockout] = limiter.lockouts()
    assert (lockout.email, lockout.client) == (email, "6.6.6.6")
    assert 0 < lockout.retry_after <= 60


def test_the_per_email_ceiling_locks_the_account_for_everyone(
    store: WindowStore, redis_prefix: str
) -> None:
    limiter = _limiter(store, redis_prefix)
    email = f"victim.{uuid.uuid4().hex[:6]}@example.com"
    for n in range(5):  # five addresses, one failure each: the ceiling
        assert limiter.check(email=email, client=f"203.0.113.{n}").wait == 0
    assert limiter.check(email=email, client="198.51.100.7").wait > 3000  # the hour-long window
    assert {(lo.email, lo.client) for lo in limiter.lockouts()} == {(email, None)}
    assert limiter.lift(email) == 1
    assert limiter.lockouts() == []
    assert limiter.check(email=email, client="198.51.100.7").wait == 0
    assert limiter.lift(email) == 0  # nothing in force any more


def test_a_success_clears_that_addresss_failures(store: WindowStore, redis_prefix: str) -> None:
    limiter = _limiter(store, redis_prefix)
    email = f"owner.{uuid.uuid4().hex[:6]}@example.com"
    for _ in range(2):
        limiter.check(email=email, client="198.51.100.7")  # two typos
    limiter.succeeded(limiter.check(email=email, client="198.51.100.7"))
    waits = [limiter.check(email=email, client="198.51.100.7").wait for _ in range(4)]
    assert [w > 0 for w in waits] == [False, False, False, True]


def test_a_refused_attempt_does_not_count_against_the_ceiling(
    store: WindowStore, redis_prefix: str
) -> None:
    limiter = _limiter(store, redis_prefix, per_email_client=1, per_email=3)
    email = f"victim.{uuid.uuid4().hex[:6]}@example.com"
    assert limiter.check(email=email, client="6.6.6.6").wait == 0
    for _ in range(10):  # refused by the address window: never reach the email ceiling
        assert limiter.check(email=email, client="6.6.6.6").wait > 0
    assert limiter.check(email=email, client="6.6.6.7").wait == 0
    assert limiter.check(email=email, client="6.6.6.8").wait == 0
    assert limiter.check(email=email, client="6.6.6.9").wait > 0  # the third failure filled it


def _login(client: httpx.Client, email: str, password: str, **headers: str) -> httpx.Response:
    return client.post("/login", json={"email": email, "password": password}, headers=headers)


def _burst(url: str, bodies: list[dict[str, str]]) -> list[httpx.Response]:
    """Attempts sent at once, so they land in one window however slow the machine is."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(
            pool.map(lambda body: httpx.post(f"{url}/login", json=body, timeout=60), bodies)
        )


def _wait_for_window() -> None:
    time.sleep(RATE_WINDOW_SECONDS + 0.2)


def test_rate_limit_per_email_and_address_engages_and_releases(
    limited_service: AuthService,
) -> None:
    with limited_service.client() as client:
        account = signup(client)
        _wait_for_window()
        wrong = {"email": account["email"], "password": "wrong-password"}
        answers = _burst(limited_service.url, [wrong] * (RATE_PER_EMAIL_CLIENT + 1))
        assert sorted(r.status_code for r in answers) == [401] * RATE_PER_EMAIL_CLIENT + [429]
        refused = next(r for r in answers if r.status_code == 429)
        assert refused.json()["error"] == "rate_limited"
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= RATE_WINDOW_SECONDS + 1
        # another email from the same address is not blocked by this email's window
        assert _login(client, new_account()["email"], "whatever-pw").status_code == 401
        time.sleep(retry_after + 0.2)
        assert _login(client, account["email"], PASSWORD).status_code == 200
        rate_limited = [
            line
            for line in client.get("/metrics").text.splitlines()
            if line.startswith('logins_total{result="rate_limited"}')
        ]
        assert float(rate_limited[0].split()[-1]) >= 1


def test_rate_limit_per_client_engages_and_releases(limited_service: AuthService) -> None:
    with limited_service.client() as client:
        _wait_for_window()
        bodies = [
            {"email": new_account()["email"], "password": "whatever-pw"}
            for _ in range(RATE_PER_CLIENT + 1)
        ]
        answers = _burst(limited_service.url, bodies)
        assert sorted(r.status_code for r in answers) == [401] * RATE_PER_CLIENT + [429]
        refused = next(r for r in answers if r.status_code == 429)
        # behind the trusted proxy (loopback) another forwarded client has its own window
        forwarded = _login(
            client, new_account()["email"], "whatever-pw", **{"X-Forwarded-For": "203.0.113.9"}
        )
        assert forwarded.status_code == 401
        time.sleep(int(refused.headers["retry-after"]) + 0.2)
        assert _login(client, new_account()["email"], "whatever-pw").status_code == 401


def test_windows_live_in_redis_without_emails_in_keys(limited_service: AuthService) -> None:
    email = f"findme.{uuid.uuid4().hex[:8]}@example.com"
    with limited_service.client() as client:
        _login(client, email, "whatever-pw", **{"X-Forwarded-For": "192.0.2.77"})
    prefix = limited_service.env["GATEHOUSE_AUTH_REDIS_PREFIX"]
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [k.decode() for k in client.scan_iter(match=f"{prefix}*", count=500)]
    finally:
        client.close()
    assert any(":login:email:" in k for k in keys)
    assert any(":login:email-client:" in k for k in keys)
    assert any(":login:client:" in k for k in keys)
    assert not any("findme" in k or "192.0.2.77" in k for k in keys)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("client", "scope"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_ipv6_clients_count_by_their_64(client: str, scope: str) -> None:
    assert client_scope(client) == scope


def test_rotating_within_an_ipv6_64_does_not_help(store: WindowStore, redis_prefix: str) -> None:
    limiter = _limiter(store, redis_prefix, per_client=2)
    email = f"victim.{uuid.uuid4().hex[:6]}@example.com"
    waits = [limiter.check(email=email, client=f"2001:db8:7:7::{n:x}").wait for n in (1, 2, 3)]
    assert [w > 0 for w in waits] == [False, False, True]
    assert limiter.check(email=email, client="2001:db8:7:8::1").wait == 0  # another /64
    signups = SignupRateLimiter(store, prefix=redis_prefix, per_client=1, window_seconds=60)
    assert signups.check(client="2001:db8:9:9::1") == 0
    assert signups.check(client="2001:db8:9:9::ffff") > 0
