"""Login rate limiting: the sliding window stores, and the limit engaging and releasing live."""

from __future__ import annotations

import concurrent.futures
import time
import uuid

import httpx
import pytest
import redis
from auth.conftest import RATE_PER_CLIENT, RATE_PER_EMAIL, RATE_WINDOW_SECONDS
from auth.factories import PASSWORD, AuthService, new_account, signup
from support.databases import REDIS_URL, unique_redis_prefix
from support.processes import free_port

from gatehouse_auth.ratelimit import (
    LocalWindowStore,
    LoginRateLimiter,
    RedisWindowStore,
    WindowStore,
    connect_redis,
)


@pytest.fixture
def redis_client(redis_prefix: str):
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def _exercise_window(store: WindowStore, key: str) -> None:
    assert store.hit(key, 2, 400) == 0
    assert store.hit(key, 2, 400) == 0
    wait_ms = store.hit(key, 2, 400)
    assert 0 < wait_ms <= 400
    assert store.hit(key + "-other", 2, 400) == 0  # keys are independent
    time.sleep(wait_ms / 1000 + 0.05)
    assert store.hit(key, 2, 400) == 0  # released once the oldest left the window


def test_local_window_engages_and_releases() -> None:
    _exercise_window(LocalWindowStore(), "k")


def test_redis_window_engages_and_releases(redis_client: redis.Redis, redis_prefix: str) -> None:
    _exercise_window(RedisWindowStore(redis_client), f"{redis_prefix}k")
    ttl = redis_client.pttl(f"{redis_prefix}k")
    assert 0 < ttl <= 400  # windows expire on their own


def test_redis_window_is_shared_between_clients(redis_prefix: str) -> None:
    """Two replicas (two clients) see one window."""
    first, second = redis.Redis.from_url(REDIS_URL), redis.Redis.from_url(REDIS_URL)
    try:
        key = f"{redis_prefix}shared"
        assert RedisWindowStore(first).hit(key, 1, 5000) == 0
        assert RedisWindowStore(second).hit(key, 1, 5000) > 0
    finally:
        first.close()
        second.close()


def test_limiter_lets_attempts_through_when_redis_is_down() -> None:
    dead = connect_redis(f"redis://127.0.0.1:{free_port()}/0")
    limiter = LoginRateLimiter(
        RedisWindowStore(dead),
        prefix=unique_redis_prefix(),
        window_seconds=60,
        per_email=1,
        per_client=1,
    )
    try:
        assert limiter.check(email="a@example.com", client="127.0.0.1") == 0
        assert limiter.check(email="a@example.com", client="127.0.0.1") == 0
    finally:
        dead.close()


def test_limiter_off_when_limits_are_zero() -> None:
    limiter = LoginRateLimiter(
        LocalWindowStore(), prefix="p:", window_seconds=60, per_email=0, per_client=0
    )
    assert all(limiter.check(email="a@b.c", client="x") == 0 for _ in range(50))


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


def test_rate_limit_per_email_engages_and_releases(limited_service: AuthService) -> None:
    with limited_service.client() as client:
        account = signup(client)
        _wait_for_window()
        wrong = {"email": account["email"], "password": "wrong-password"}
        answers = _burst(limited_service.url, [wrong] * (RATE_PER_EMAIL + 1))
        assert sorted(r.status_code for r in answers) == [401] * RATE_PER_EMAIL + [429]
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
        _login(client, email, "whatever-pw")
    prefix = limited_service.env["GATEHOUSE_AUTH_REDIS_PREFIX"]
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [k.decode() for k in client.scan_iter(match=f"{prefix}*", count=500)]
    finally:
        client.close()
    assert any(":login:email:" in k for k in keys)
    assert any(":login:client:" in k for k in keys)
    assert not any("findme" in k for k in keys)
