"""The CSRF token and Origin rules, as plain functions."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from gatehouse_accounts_ui import csrf

pytestmark = pytest.mark.unit

KEY = b"k" * 32


def test_a_token_signs_exactly_its_nonce_under_exactly_its_key() -> None:
    nonce = csrf.new_nonce()
    token = csrf.sign(KEY, nonce)
    assert csrf.token_matches(KEY, nonce, token)
    assert not csrf.token_matches(b"other-key" * 4, nonce, token)
    assert not csrf.token_matches(KEY, csrf.new_nonce(), token)
    assert not csrf.token_matches(KEY, nonce, token[:-1])
    assert not csrf.token_matches(KEY, nonce, "")
    assert not csrf.token_matches(KEY, None, token)


def test_nonces_are_random_and_well_formed() -> None:
    nonces = {csrf.new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(csrf.valid_nonce(n) for n in nonces)


@pytest.mark.parametrize("nonce", ["", "short", "x" * 44, "a" * 42 + "!", "é" * 43])
def test_malformed_nonces_are_not_accepted(nonce: str) -> None:
    assert not csrf.valid_nonce(nonce)
    assert not csrf.token_matches(KEY, nonce, csrf.sign(KEY, nonce))


def test_an_oversized_token_is_refused_without_comparing() -> None:
    nonce = csrf.new_nonce()
    assert not csrf.token_matches(KEY, nonce, csrf.sign(KEY, nonce) + "A" * 200)


@pytest.mark.parametrize(
    ("origin", "headers", "allowed"),
    [
        ("http://127.0.0.1:8002", {"host": "127.0.0.1:8002"}, True),
        ("http://LOCALHOST:8080", {"host": "localhost:8080"}, True),
        ("http://example.com", {"host": "example.com:80"}, True),
        ("https://example.com", {"host": "example.com:443"}, True),
        # behind the gateway: Host names the backend, X-Forwarded-Host the browser's view
        (
            "http://localhost:8080",
            {"host": "127.0.0.1:8002", "x-forwarded-host": "localhost:8080"},
            True,
        ),
        ("https://gw.example", {"host": "ui:8002", "x-forwarded-host": "a, gw.example"}, True),
        ("http://127.0.0.1:8003", {"host": "127.0.0.1:8002"}, False),
        ("http://evil.example", {"host": "127.0.0.1:8002"}, False),
        ("http://127.0.0.1:8002.evil.example", {"host": "127.0.0.1:8002"}, False),
        ("null", {"host": "127.0.0.1:8002"}, False),
        ("file://", {"host": "127.0.0.1:8002"}, False),
        ("http://127.0.0.1:8002/path", {"host": "127.0.0.1:8002"}, False),
        ("http://127.0.0.1:99999", {"host": "127.0.0.1:99999"}, False),
        ("http://a", {}, False),
    ],
)
def test_origin_must_be_the_pages_own(origin: str, headers: dict[str, str], allowed: bool) -> None:
    assert csrf.origin_allowed(origin, Headers(headers), trusted=[]) is allowed


def test_an_explicitly_trusted_origin_is_allowed() -> None:
    headers = Headers({"host": "127.0.0.1:8002"})
    assert csrf.origin_allowed("https://accounts.example", headers, ["https://accounts.example"])
    assert not csrf.origin_allowed("https://other.example", headers, ["https://accounts.example"])
