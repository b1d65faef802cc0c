"""The page over plain HTTP: listing, escaping, hostile query parameters, 403/503 pages."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest
from accounts_ui.stack import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    HOSTILE,
    HOSTILE_ROW_USERNAME,
    VIEWER_EMAIL,
    VIEWER_PASSWORD,
    Stack,
    admin_token,
    sign_in,
)

_USERNAMES = re.compile(r'<td data-label="Username" class="username">([^<]*)</td>')


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Iterator[httpx.Client]:
    """A client signed in as the admin, shared by the module's read-only tests."""
    with httpx.Client(base_url=stack.ui.url, timeout=10) as client:
        assert sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 303
        yield client


def usernames(html: str) -> list[str]:
    return _USERNAMES.findall(html)


def test_signed_out_visitors_get_the_sign_in_form(stack: Stack) -> None:
    response = httpx.get(stack.page_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'action="/accounts_page/login"' in response.text
    assert 'id="accounts"' not in response.text


def test_the_trailing_slash_serves_the_same_page(stack: Stack) -> None:
    response = httpx.get(f"{stack.page_url}/")
    assert response.status_code == 200
    assert 'action="/accounts_page/login"' in response.text


def test_admin_sees_the_newest_accounts_first_with_the_total(
    stack: Stack, admin: httpx.Client
) -> None:
    response = admin.get("/accounts_page", params={"limit": 10})
    assert response.status_code == 200
    assert f"{stack.total} total" in response.text
    names = usernames(response.text)
    # the hostile row was written last, then the seeds in reverse order
    assert names == [html.escape(HOSTILE_ROW_USERNAME), *reversed(stack.seeded[-9:])]
    assert f"1\u201310 of {stack.total}" in response.text
    assert 'rel="next" href="/accounts_page?limit=10&amp;offset=10"' in response.text


def test_pages_follow_each_other_without_gaps(stack: Stack, admin: httpx.Client) -> None:
    seen: list[str] = []
    for offset in range(0, stack.total, 10):
        seen += usernames(admin.get("/accounts_page", params={"limit": 10, "offset": offset}).text)
    assert len(seen) == stack.total == len(set(seen))
    assert seen[-2:] == ["viewer", "admin"]  # the first accounts come last


def test_search_narrows_the_list_and_keeps_the_page_size(admin: httpx.Client) -> None:
    response = admin.get("/accounts_page", params={"search": "seed-1", "limit": 25})
    names = usernames(response.text)
    assert sorted(names) == [f"seed-{i}" for i in range(10, 20)]
    assert "10 total" in response.text
    assert '<option value="25" selected>' in response.text
    assert 'value="seed-1"' in response.text


def test_no_match_shows_an_empty_state(admin: httpx.Client) -> None:
    response = admin.get("/accounts_page", params={"search": "no-such-account"})
    assert response.status_code == 200
    assert "No accounts match “no-such-account”." in response.text
    assert "0 total" in response.text


def test_an_offset_past_the_end_offers_the_first_page(admin: httpx.Client) -> None:
    response = admin.get("/accounts_page", params={"offset": 5000, "limit": 10})
    assert response.status_code == 200
    assert "There is nothing on this page." in response.text
    assert 'href="/accounts_page?limit=10"' in response.text


def test_hostile_values_are_escaped_everywhere(admin: httpx.Client) -> None:
    """The hostile email from the database and a hostile search both render as text."""
    listing = admin.get("/accounts_page", params={"search": HOSTILE})
    assert listing.status_code == 200
    assert "<script>" not in listing.text
    assert "<img" not in listing.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing.text
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;@example.com" in listing.text
    empty = admin.get("/accounts_page", params={"search": HOSTILE + "-nothing"})
    assert "<script>" not in empty.text
    assert "No accounts match “&lt;script&gt;alert(1)&lt;/script&gt;-nothing”." in empty.text


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        ({"limit": "-1"}, "limit must be a whole number from 1 to 100."),
        ({"limit": "0"}, "limit must be a whole number from 1 to 100."),
        ({"limit": str(10**9)}, "limit must be a whole number from 1 to 100."),
        ({"limit": "9" * 5000}, "limit must be a whole number from 1 to 100."),
        ({"limit": "1e3"}, "limit must be a whole number from 1 to 100."),
        ({"offset": "abc"}, "offset must be a whole number from 0 to 10000000."),
        ({"offset": "-5"}, "offset must be a whole number from 0 to 10000000."),
        ({"offset": "٣"}, "offset must be a whole number from 0 to 10000000."),  # a non-ASCII digit
        # (a request line over 8 KiB is the server's 414 before the page sees it)
        ({"search": "x" * 5000}, "search may be at most 100 characters."),
        ({"search": "a\x00b"}, "search may not contain control characters."),
    ],
)
def test_hostile_query_parameters_get_a_clear_400_page(
    admin: httpx.Client, params: dict[str, str], complaint: str
) -> None:
    response = admin.get("/accounts_page", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert complaint in response.text
    assert "Traceback" not in response.text


def test_odd_but_valid_parameters_are_accepted(admin: httpx.Client) -> None:
    response = admin.get("/accounts_page", params={"limit": "7", "search": "  seed  "})
    assert response.status_code == 200
    assert len(usernames(response.text)) == 7
    assert '<option value="7" selected>' in response.text  # an address-bar size is kept


def test_a_non_admin_gets_a_clear_403_page(stack: Stack) -> None:
    with httpx.Client(base_url=stack.ui.url) as client:
        assert sign_in(client, VIEWER_EMAIL, VIEWER_PASSWORD).status_code == 303
        response = client.get("/accounts_page")
    assert response.status_code == 403
    assert "Administrators only" in response.text
    assert "only administrators may see accounts" in response.text
    assert 'action="/accounts_page/logout"' in response.text  # a way out
    assert 'id="accounts"' not in response.text


def test_an_expired_token_sends_back_to_sign_in_with_a_message(stack: Stack) -> None:
    fresh = admin_token(stack.keys_dir, expires_in=600)
    assert 'id="accounts"' in httpx.get(stack.page_url, cookies={"gatehouse_session": fresh}).text
    expired = admin_token(stack.keys_dir, expires_in=-600)  # past the auth service's leeway
    response = httpx.get(stack.page_url, cookies={"gatehouse_session": expired})
    assert response.status_code == 200
    assert 'action="/accounts_page/login"' in response.text
    assert "Your session has expired. Please sign in again." in response.text
    assert 'id="accounts"' not in response.text
    assert 'gatehouse_session=""' in response.headers["set-cookie"]
    assert 'action="/accounts_page/logout"' not in response.text


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "x" * 9000])
def test_an_invalid_token_sends_back_to_sign_in(stack: Stack, token: str) -> None:
    response = httpx.get(stack.page_url, cookies={"gatehouse_session": token})
    assert response.status_code == 200
    assert 'action="/accounts_page/login"' in response.text
    if len(token) < 8192:  # a token the page would even send to the auth service
        assert "Your session has expired. Please sign in again." in response.text
        assert 'gatehouse_session=""' in response.headers["set-cookie"]


def test_auth_unreachable_gives_a_503_page_not_a_traceback(stack: Stack) -> None:
    response = httpx.get(
        f"{stack.ui_spare.url}/accounts_page", cookies={"gatehouse_session": "a.b.c"}
    )
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "Accounts unavailable" in response.text
    assert "The auth service cannot be reached right now." in response.text
    assert "Traceback" not in response.text and "httpx" not in response.text


def test_sign_in_with_auth_unreachable_gives_the_503_page(stack: Stack) -> None:
    with httpx.Client(base_url=stack.ui_spare.url) as client:
        response = sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert response.status_code == 503
    assert "The auth service cannot be reached right now." in response.text


def test_the_page_stays_ready_while_auth_is_down(stack: Stack) -> None:
    """Out of rotation, the page could not show its 503 page; the gateway's JSON would answer."""
    for ui in (stack.ui, stack.ui_spare):
        assert httpx.get(f"{ui.url}/readyz").status_code == 200
        assert httpx.get(f"{ui.url}/healthz").status_code == 200


def test_no_swagger_ui_that_the_csp_would_break(stack: Stack) -> None:
    assert httpx.get(f"{stack.ui.url}/docs").status_code == 404


def test_metrics_count_page_requests(stack: Stack) -> None:
    httpx.get(stack.page_url)
    metrics = httpx.get(f"{stack.ui.url}/metrics")
    assert metrics.status_code == 200
    assert 'http_requests_total{handler="/accounts_page"' in metrics.text


@pytest.mark.parametrize("path", ["/accounts_page/nowhere", "/accounts_page/a/b/c?x=<script>"])
def test_unknown_addresses_under_the_prefix_get_a_404_page(stack: Stack, path: str) -> None:
    response = httpx.get(stack.ui.url + path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text
    assert "<script>" not in response.text
