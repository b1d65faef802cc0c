"""CORS config and decisions: hostile origins never pass, hostile config never loads."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gatehouse_gateway.config.cors import CorsConfig
from gatehouse_gateway.policy.cors import MAX_REQUEST_HEADERS_BYTES, CorsPolicy

pytestmark = pytest.mark.unit

ALLOWED = b"https://example.com"


def policy(**config: Any) -> CorsPolicy:
    return CorsPolicy(CorsConfig.model_validate({"allow_origins": [ALLOWED.decode()], **config}))


@pytest.mark.parametrize(
    "origin",
    [
        b"https://evil-example.com",  # suffix match
        b"https://example.com.evil.net",  # prefix match
        b"https://sub.example.com",
        b"https://EXAMPLE.com",  # case trick: not how a browser sends it
        b"HTTPS://example.com",
        b"https://example.com/",  # a path
        b"https://example.com/app",
        b"https://example.com:443",  # the default port written out
        b"http://example.com",  # another scheme is another origin
        b"null",  # sandboxed frames, file://
        b"",  # a repeated Origin reads as empty
        b"https://example.com\x00",
    ],
)
def test_only_the_exact_origin_is_allowed(origin: bytes) -> None:
    cors = policy(allow_credentials=True)
    assert cors.allow_origin(origin) is None
    assert cors.answer_headers(origin) == [(b"vary", b"Origin")]
    assert cors.preflight(origin, b"GET", None).status == 403
    assert not cors.allows_handshake(origin)  # no WebSocket from it either


def test_a_handshake_passes_from_a_listed_origin_any_on_star_or_none_at_all() -> None:
    assert policy().allows_handshake(ALLOWED)
    # no Origin: no browser sent it (every browser does on a WebSocket handshake)
    assert policy().allows_handshake(None)
    anyone = CorsPolicy(CorsConfig(allow_origins=["*"]))
    assert anyone.allows_handshake(b"https://anyone.example") and anyone.allows_handshake(b"null")


def test_allowed_origin_is_echoed_with_credentials_and_expose() -> None:
    cors = policy(allow_credentials=True, expose_headers=["X-Total"])
    assert cors.answer_headers(ALLOWED) == [
        (b"access-control-allow-origin", ALLOWED),
        (b"access-control-allow-credentials", b"true"),
        (b"access-control-expose-headers", b"x-total"),
        (b"vary", b"Origin"),
    ]
    # no Origin at all (same-origin or not a browser): nothing but Vary
    assert cors.answer_headers(None) == [(b"vary", b"Origin")]


def test_any_origin_answers_star_and_never_credentials() -> None:
    cors = CorsPolicy(CorsConfig(allow_origins=["*"]))
    assert cors.allow_origin(b"https://anyone.example") == b"*"
    headers = dict(cors.answer_headers(b"null"))
    assert headers[b"access-control-allow-origin"] == b"*"
    assert b"access-control-allow-credentials" not in headers


def test_preflight_allows_listed_method_and_headers() -> None:
    cors = policy(
        allow_methods=["GET", "PUT"], allow_headers=["Content-Type", "X-Trace"], max_age=600
    )
    answer = cors.preflight(ALLOWED, b"PUT", b"content-type, X-Trace")
    assert answer.status == 204
    headers = dict(answer.headers)
    assert headers[b"access-control-allow-origin"] == ALLOWED
    assert headers[b"access-control-allow-methods"] == b"GET, PUT"
    assert headers[b"access-control-allow-headers"] == b"content-type, x-trace"
    assert headers[b"access-control-max-age"] == b"600"
    assert b"Origin" in headers[b"vary"]
    assert cors.preflight(ALLOWED, b"DELETE", None).status == 403
    assert cors.preflight(ALLOWED, b"put", None).status == 403  # methods are case-sensitive
    assert cors.preflight(ALLOWED, b"PUT", b"content-type, x-other").status == 403


def test_preflight_bounds_the_requested_headers() -> None:
    cors = policy(allow_headers=["*"])
    assert cors.preflight(ALLOWED, b"GET", b"a, b").status == 204
    huge = b",".join(b"x-h%d" % n for n in range(2000))
    assert len(huge) > MAX_REQUEST_HEADERS_BYTES
    assert cors.preflight(ALLOWED, b"GET", huge).status == 403
    many = b",".join(b"h%d" % n for n in range(65))
    assert cors.preflight(ALLOWED, b"GET", many).status == 403
    assert cors.preflight(ALLOWED, b"GET", b"x-ok, bad header").status == 403
    assert cors.preflight(ALLOWED, b"GET", b"x\r\ny").status == 403


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"allow_origins": ["*"], "allow_credentials": True}, "every site"),
        ({"allow_origins": ["*", "https://a.example"]}, "alone"),
        ({"allow_origins": []}, "at least 1"),
        ({"allow_origins": ["null"]}, "sandboxed"),
        ({"allow_origins": ["https://a.example/"]}, "no path"),
        ({"allow_origins": ["https://a.example/app"]}, "no path"),
        ({"allow_origins": ["https://A.example"]}, "write 'https://a.example'"),
        ({"allow_origins": ["https://a.example:443"]}, "write 'https://a.example'"),
        ({"allow_origins": ["https://*.a.example"]}, "no wildcards"),
        ({"allow_origins": ["a.example"]}, "http:// or https://"),
        ({"allow_origins": ["ftp://a.example"]}, "http:// or https://"),
        ({"allow_origins": ["https://user@a.example"]}, "user info"),
        ({"allow_origins": ["https://a.example:99999"]}, "port"),
        ({"allow_origins": ["https://a.example"], "allow_methods": ["get"]}, "upper-case"),
        ({"allow_origins": ["https://a.example"], "allow_methods": ["TRACE"]}, "never"),
        ({"allow_origins": ["https://a.example"], "allow_headers": ["bad name"]}, "header"),
        ({"allow_origins": ["https://a.example"], "allow_headers": ["Host"]}, "never"),
        ({"allow_origins": ["https://a.example"], "allow_headers": ["*", "x"]}, "alone"),
        ({"allow_origins": ["https://a.example"], "max_age": -1}, "greater than"),
        ({"allow_origins": ["https://a.example"], "max_age": 10**9}, "less than"),
        ({"allow_origins": ["https://a.example"], "origins": ["x"]}, "Extra inputs"),
    ],
)
def test_hostile_config_is_refused(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        CorsConfig.model_validate(config)
    assert message in str(refused.value)
