"""URLs naming the backend that answered are rewritten to the client's origin, nothing else."""

from __future__ import annotations

import pytest

from gatehouse_gateway.edge.rewrite import client_origin, url_header

pytestmark = pytest.mark.unit

BACKEND = "http://127.0.0.1:9001"
ORIGIN = b"https://app.example"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"http://127.0.0.1:9001/login?next=/x", b"https://app.example/login?next=/x"),
        (b"HTTP://127.0.0.1:9001/a", b"https://app.example/a"),
        (b"http://127.0.0.1:9001", b"https://app.example"),
        (b"http://127.0.0.1:9001?q", b"https://app.example?q"),
        (b"http://127.0.0.1:9001#f", b"https://app.example#f"),
        # not the backend that answered: passed on as sent
        (b"http://127.0.0.1:90011/a", b"http://127.0.0.1:90011/a"),
        (b"http://127.0.0.1:9002/a", b"http://127.0.0.1:9002/a"),
        (b"https://127.0.0.1:9001/a", b"https://127.0.0.1:9001/a"),
        (b"http://127.0.0.1:9001.evil.example/a", b"http://127.0.0.1:9001.evil.example/a"),
        (
            b"http://example.com/http://127.0.0.1:9001/",
            b"http://example.com/http://127.0.0.1:9001/",
        ),
        (b"/relative", b"/relative"),
        (b"", b""),
    ],
)
def test_location(value: bytes, expected: bytes) -> None:
    assert url_header(b"location", value, BACKEND, ORIGIN) == expected
    assert url_header(b"content-location", value, BACKEND, ORIGIN) == expected


@pytest.mark.parametrize(
    ("backend", "value"),
    [
        ("http://backend.internal", b"http://backend.internal:80/x"),
        ("http://backend.internal:80", b"http://Backend.Internal/x"),
        ("https://backend.internal", b"https://backend.internal:443/x"),
        ("http://[::1]:9001", b"http://[::1]:9001/x"),
    ],
)
def test_default_ports_case_and_ipv6(backend: str, value: bytes) -> None:
    assert url_header(b"location", value, backend, ORIGIN) == b"https://app.example/x"


def test_refresh_url_part() -> None:
    assert (
        url_header(b"refresh", b"5; url=http://127.0.0.1:9001/x", BACKEND, ORIGIN)
        == b"5; url=https://app.example/x"
    )
    assert (
        url_header(b"refresh", b"0;URL='http://127.0.0.1:9001/x'", BACKEND, ORIGIN)
        == b"0;URL='https://app.example/x'"
    )
    assert url_header(b"refresh", b"30", BACKEND, ORIGIN) == b"30"


def test_client_origin() -> None:
    assert client_origin({"scheme": "http"}, b"app.example:8080") == b"http://app.example:8080"
    assert client_origin({"scheme": "https"}, b"app.example") == b"https://app.example"
    # HTTP/1.0 without Host: the listener the client connected to
    scope = {"scheme": "http", "server": ("10.0.0.5", 8080)}
    assert client_origin(scope, b"") == b"http://10.0.0.5:8080"
