"""Whose address a login counts against, in a real process: X-Forwarded-For cannot be rotated.

uvicorn has its own X-Forwarded-For handling (``FORWARDED_ALLOW_IPS``, 127.0.0.1
by default); the service turns it off so ``GATEHOUSE_AUTH_TRUSTED_PROXIES``
alone decides, and these tests drive the service from 127.0.0.1, the address
uvicorn would have trusted.
"""

from __future__ import annotations

from pathlib import Path

from support.auth import AuthService, StartAuth, auth_env, new_account, run_cli

PER_CLIENT = 3


def _attempts(service: AuthService, headers: list[list[tuple[str, str]]]) -> list[int]:
    statuses = []
    with service.client() as client:
        for lines in headers:
            body = {"email": new_account()["email"], "password": "whatever-pw"}
            statuses.append(client.post("/login", json=body, headers=lines).status_code)
    return statuses


def _limited(start_auth: StartAuth, **settings: str) -> AuthService:
    return start_auth(
        redis=False,
        rate_limit_per_client=str(PER_CLIENT),
        rate_limit_window_seconds="600",
        **settings,
    )


def test_forwarded_for_from_an_untrusted_peer_is_not_believed(start_auth: StartAuth) -> None:
    """Trusting no proxy, a rotated X-Forwarded-For still counts against the peer."""
    service = _limited(start_auth, trusted_proxies="[]")
    rotated = [[("X-Forwarded-For", f"203.0.113.{n}")] for n in range(PER_CLIENT + 1)]
    assert _attempts(service, rotated) == [401] * PER_CLIENT + [429]


def test_rotating_the_left_of_the_chain_does_not_help(start_auth: StartAuth) -> None:
    """Behind the trusted proxy, the hop it added (the rightmost untrusted) is the client,
    whether the proxy extends the client's header or adds a line of its own."""
    service = _limited(start_auth)  # the default: loopback is the trusted proxy
    extended = [[("X-Forwarded-For", f"203.0.113.{n}, 198.51.100.7")] for n in range(PER_CLIENT)]
    added_line = [[("X-Forwarded-For", "203.0.113.99"), ("X-Forwarded-For", "198.51.100.7")]]
    assert _attempts(service, extended + added_line) == [401] * PER_CLIENT + [429]
    # another client behind the same proxy has a window of its own
    assert _attempts(service, [[("X-Forwarded-For", "198.51.100.8")]]) == [401]


def test_comma_separated_trusted_proxies(start_auth: StartAuth) -> None:
    """The setting also takes a plain comma-separated list; 127.0.0.1 left out is not trusted."""
    service = _limited(start_auth, trusted_proxies="10.0.0.0/8, ::1/128")
    rotated = [[("X-Forwarded-For", f"203.0.113.{n}")] for n in range(PER_CLIENT + 1)]
    assert _attempts(service, rotated) == [401] * PER_CLIENT + [429]


def test_bad_trusted_proxies_stop_the_start(tmp_path: Path) -> None:
    env = auth_env(tmp_path, database_url=None, redis_prefix=None, trusted_proxies="not-a-network")
    result = run_cli(env, "migrate", check=False)
    assert result.returncode != 0
    assert "trusted_proxies" in result.stderr
