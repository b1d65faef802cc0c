"""Security headers on every kind of response the page sends."""

from __future__ import annotations

import httpx
import pytest
from accounts_ui.stack import Stack

from gatehouse_accounts_ui.headers import CONTENT_SECURITY_POLICY


def _assert_security_headers(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no CDN
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in response.headers  # plain HTTP


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/accounts_page", 200),
        ("GET", "/accounts_page?limit=abc", 400),
        ("POST", "/accounts_page/login", 403),
        ("POST", "/accounts_page/logout", 403),
        ("GET", "/accounts_page/nowhere", 404),
    ],
)
def test_pages_and_errors_carry_the_headers_and_are_never_stored(
    stack: Stack, method: str, path: str, status: int
) -> None:
    response = httpx.request(method, stack.ui.url + path)
    assert response.status_code == status
    _assert_security_headers(response)
    assert response.headers["cache-control"] == "no-store"


def test_static_assets_are_served_by_the_service_and_revalidated(stack: Stack) -> None:
    response = httpx.get(f"{stack.page_url}/static/style.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "etag" in response.headers
    assert response.headers["cache-control"] == "no-cache"
    _assert_security_headers(response)
    again = httpx.get(
        f"{stack.page_url}/static/style.css", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304


def test_static_paths_cannot_escape_the_asset_folder(stack: Stack) -> None:
    for path in ("/accounts_page/static/../app.py", "/accounts_page/static/%2e%2e/app.py"):
        response = httpx.get(stack.ui.url + path)
        assert response.status_code == 404
        assert "create_app" not in response.text


def test_the_page_links_only_to_its_own_prefix(stack: Stack) -> None:
    """One gateway route (/accounts_page) must cover every URL the page uses."""
    html = httpx.get(stack.page_url).text
    urls = [u for attr in ("href", "action", "src") for u in _attr_values(html, attr)]
    assert urls
    for url in urls:
        assert url.startswith("/accounts_page") or url == "data:,", url
    assert "<script" not in html and " style=" not in html  # nothing inline for the CSP to block


def _attr_values(html: str, attr: str) -> list[str]:
    marker = f' {attr}="'
    values = []
    for chunk in html.split(marker)[1:]:
        values.append(chunk.split('"', 1)[0])
    return values
