"""Signing in and out over plain HTTP: cookie flags, CSRF refusals, form messages."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from accounts_ui.stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack, csrf_token, sign_in


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.ui.url, timeout=10) as client:
        yield client


def _flags(response: httpx.Response, name: str) -> tuple[str, set[str]]:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(headers) == 1, response.headers.get_list("set-cookie")
    parts = [p.strip() for p in headers[0].split(";")]
    return parts[0].split("=", 1)[1], {p.lower() for p in parts[1:]}


def test_sign_in_sets_an_httponly_strict_session_cookie(client: httpx.Client) -> None:
    response = sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/accounts_page"
    token, flags = _flags(response, "gatehouse_session")
    assert token.count(".") == 2  # the auth service's JWT, kept as is
    assert {"httponly", "samesite=strict", "path=/accounts_page"} <= flags
    assert "secure" not in flags  # plain HTTP: a Secure cookie would never come back
    _, csrf_flags = _flags(response, "gatehouse_csrf")  # a fresh nonce after sign-in
    assert {"httponly", "samesite=strict", "path=/accounts_page"} <= csrf_flags
    page = client.get("/accounts_page")
    assert page.status_code == 200
    assert 'id="accounts"' in page.text


def test_cookies_are_secure_when_the_request_came_over_tls(stack: Stack) -> None:
    tls = {"X-Forwarded-Proto": "https"}
    form = httpx.get(f"{stack.page_url}", headers=tls)
    nonce, nonce_flags = _flags(form, "gatehouse_csrf")
    assert "secure" in nonce_flags
    assert form.headers["strict-transport-security"].startswith("max-age=")
    # A client over plain HTTP keeps Secure cookies to itself, so send it by hand.
    response = httpx.post(
        f"{stack.page_url}/login",
        data={
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "csrf_token": csrf_token(form.text),
        },
        headers={**tls, "Cookie": f"gatehouse_csrf={nonce}"},
    )
    assert response.status_code == 303
    _, flags = _flags(response, "gatehouse_session")
    assert {"secure", "httponly", "samesite=strict"} <= flags


def test_wrong_password_shows_the_form_again_with_a_message(client: httpx.Client) -> None:
    response = sign_in(client, ADMIN_EMAIL, "not-the-password")
    assert response.status_code == 401
    assert "Email or password is incorrect." in response.text
    assert f'value="{ADMIN_EMAIL}"' in response.text  # the email is kept, the password not
    assert "gatehouse_session" not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize("email", ["nobody@example.com", "not-an-email"])
def test_unknown_email_gets_the_same_message(client: httpx.Client, email: str) -> None:
    response = sign_in(client, email, "whatever-password")
    assert response.status_code == 401
    assert "Email or password is incorrect." in response.text


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("", "x", "Enter your email and password."),
        (ADMIN_EMAIL, "", "Enter your email and password."),
        ("a" * 400 + "@example.com", "x", "Email or password is too long."),
    ],
)
def test_bad_sign_in_input_is_answered_on_the_form(
    client: httpx.Client, email: str, password: str, message: str
) -> None:
    response = sign_in(client, email, password)
    assert response.status_code == 400
    assert message in response.text


def test_hostile_email_is_echoed_escaped(client: httpx.Client) -> None:
    hostile = '"><script>alert(1)</script>'
    response = sign_in(client, hostile, "password-1")
    assert response.status_code == 401  # the auth service takes any string as an email
    assert "<script>alert(1)" not in response.text
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


def test_login_without_a_csrf_token_is_refused(client: httpx.Client) -> None:
    client.get("/accounts_page")  # has the nonce cookie, but posts no token
    response = client.post(
        "/accounts_page/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 403
    assert "security token is missing or out of date" in response.text
    assert "gatehouse_session" not in response.headers.get("set-cookie", "")


def test_login_with_a_wrong_token_is_refused(client: httpx.Client) -> None:
    token = csrf_token(client.get("/accounts_page").text)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = client.post(
        "/accounts_page/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": forged},
    )
    assert response.status_code == 403


def test_a_token_without_its_cookie_is_refused(stack: Stack) -> None:
    """The attacker's own valid pair is no use without planting the cookie too."""
    with httpx.Client(base_url=stack.ui.url) as attacker:
        token = csrf_token(attacker.get("/accounts_page").text)
    with httpx.Client(base_url=stack.ui.url) as victim:
        response = victim.post(
            "/accounts_page/login",
            data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token},
        )
    assert response.status_code == 403


def test_a_token_for_another_nonce_is_refused(stack: Stack) -> None:
    with httpx.Client(base_url=stack.ui.url) as attacker:
        token = csrf_token(attacker.get("/accounts_page").text)
    with httpx.Client(base_url=stack.ui.url) as victim:
        victim.get("/accounts_page")  # the victim has a nonce of its own
        response = victim.post(
            "/accounts_page/login",
            data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token},
        )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1.evil.example"],
)
def test_a_foreign_origin_is_refused_even_with_a_valid_token(
    client: httpx.Client, origin: str
) -> None:
    token = csrf_token(client.get("/accounts_page").text)
    response = client.post(
        "/accounts_page/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token},
        headers={"Origin": origin},
    )
    assert response.status_code == 403
    assert "posted from another site" in response.text


def test_the_pages_own_origin_is_accepted(stack: Stack, client: httpx.Client) -> None:
    token = csrf_token(client.get("/accounts_page").text)
    response = client.post(
        "/accounts_page/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token},
        headers={"Origin": stack.ui.url},
    )
    assert response.status_code == 303


def test_an_oversized_form_is_refused_unread(client: httpx.Client) -> None:
    token = csrf_token(client.get("/accounts_page").text)
    response = client.post(
        "/accounts_page/login",
        data={"email": ADMIN_EMAIL, "password": "p" * 100_000, "csrf_token": token},
    )
    assert response.status_code == 413


def test_a_form_of_unstated_length_is_refused(client: httpx.Client) -> None:
    token = csrf_token(client.get("/accounts_page").text)
    body = f"email=a%40b.c&password=x&csrf_token={token}".encode()

    def chunks() -> Iterator[bytes]:
        yield body  # a generator body goes out chunked, with no Content-Length

    response = client.post(
        "/accounts_page/login",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 411
    assert "must state its length" in response.text


def test_logout_needs_the_token_and_then_forgets_the_session(client: httpx.Client) -> None:
    assert sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 303
    page = client.get("/accounts_page")
    refused = client.post("/accounts_page/logout", data={})
    assert refused.status_code == 403
    assert 'id="accounts"' in client.get("/accounts_page").text  # still signed in
    response = client.post("/accounts_page/logout", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 303
    assert response.headers["location"] == "/accounts_page?notice=signed_out"
    value, flags = _flags(response, "gatehouse_session")
    assert value in ("", '""')
    assert "max-age=0" in flags
    after = client.get(response.headers["location"])
    assert "You have signed out." in after.text
    assert 'id="accounts"' not in after.text


@pytest.mark.parametrize("path", ["/accounts_page/login", "/accounts_page/logout"])
def test_loading_a_form_address_goes_to_the_page_and_does_nothing(
    client: httpx.Client, path: str
) -> None:
    assert sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 303
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == "/accounts_page"
    assert "set-cookie" not in response.headers  # a GET never signs out
    assert 'id="accounts"' in client.get("/accounts_page").text


def test_sign_in_through_the_gateway_accepts_the_gateways_origin(stack: Stack) -> None:
    """Behind the gateway the browser's origin is the gateway's, not the page's own port."""
    with httpx.Client(base_url=stack.gateway.url, timeout=10) as client:
        form = client.get("/accounts_page")
        assert form.status_code == 200
        data = {
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "csrf_token": csrf_token(form.text),
        }
        foreign = client.post(
            "/accounts_page/login", data=data, headers={"Origin": "http://evil.example"}
        )
        assert foreign.status_code == 403
        response = client.post(
            "/accounts_page/login", data=data, headers={"Origin": stack.gateway.url}
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/accounts_page"
        page = client.get("/accounts_page")
    assert page.status_code == 200
    assert f"{stack.total} total" in page.text
