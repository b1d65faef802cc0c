"""POST /login over HTTP: tokens, one answer for every failure, hostile input."""

from __future__ import annotations

import httpx
import pytest
from support.auth import PASSWORD, new_account, signup


def test_login_returns_a_bearer_token(client: httpx.Client) -> None:
    account = signup(client)
    response = client.post("/login", json={"email": account["email"], "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "token",
        "refresh_token",
        "refresh_expires_in",
    }
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["refresh_expires_in"] == 14 * 86_400
    assert len(body["refresh_token"]) >= 43 and "." not in body["refresh_token"]
    assert body["token"] == body["access_token"]
    assert body["access_token"].count(".") == 2


def test_login_email_is_case_insensitive(client: httpx.Client) -> None:
    account = signup(client)
    response = client.post(
        "/login", json={"email": "  " + account["email"].upper() + " ", "password": PASSWORD}
    )
    assert response.status_code == 200


def _comparable(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "x-request-id")}
    return response.status_code, response.content, headers


def test_unknown_email_and_wrong_password_get_the_same_answer(client: httpx.Client) -> None:
    account = signup(client)
    wrong_password = client.post(
        "/login", json={"email": account["email"], "password": "nope-nope"}
    )
    unknown_email = client.post(
        "/login", json={"email": new_account()["email"], "password": "nope-nope"}
    )
    malformed_email = client.post("/login", json={"email": "' OR 1=1 --", "password": "nope-nope"})
    too_long = client.post(
        "/login", json={"email": account["email"], "password": PASSWORD + "x" * 80}
    )
    assert wrong_password.status_code == 401
    assert wrong_password.json() == {
        "error": "invalid_credentials",
        "detail": "the email or password is incorrect",
    }
    assert wrong_password.headers["www-authenticate"] == "Bearer"
    expected = _comparable(wrong_password)
    for other in (unknown_email, malformed_email, too_long):
        assert _comparable(other) == expected


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "a@example.com"},
        {"password": "something"},
        {"email": 42, "password": "something"},
        {"email": "a@example.com", "password": ["list"]},
        {"email": "", "password": "something"},
        {"email": "a@example.com", "password": ""},
        {"email": "a@example.com", "password": "x" * 1025},
        {"email": "a@example.com", "password": "something", "extra": True},
    ],
)
def test_bad_login_bodies_are_422(client: httpx.Client, body: dict) -> None:
    response = client.post("/login", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert "something" not in response.text  # passwords are never echoed back


def test_oversized_login_is_413(client: httpx.Client) -> None:
    response = client.post("/login", json={"email": "a@example.com", "password": "x" * 20_000})
    assert response.status_code == 413


def test_login_metrics_count_results(client: httpx.Client) -> None:
    account = signup(client)
    client.post("/login", json={"email": account["email"], "password": PASSWORD})
    client.post("/login", json={"email": account["email"], "password": "wrong-password"})
    metrics = client.get("/metrics").text
    assert 'logins_total{result="success"}' in metrics
    assert 'logins_total{result="invalid_credentials"}' in metrics
    assert 'logins_total{result="rate_limited"}' in metrics
    created = [line for line in metrics.splitlines() if line.startswith("accounts_created_total ")]
    assert created and float(created[0].split()[1]) >= 1
    assert "http_requests_total" in metrics


@pytest.mark.parametrize(
    "raw",
    [
        b'{"email": "a\\u0000b@example.com", "password": "whatever-pw"}',
        b'{"email": "a@example.com", "password": "\\udc00\\ud800-lone"}',
        b'{"email": "\\ud83d@example.com", "password": "whatever-pw"}',
    ],
)
def test_unstorable_text_in_login_is_422_not_500(client: httpx.Client, raw: bytes) -> None:
    response = client.post("/login", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text


def test_nul_in_a_password_is_just_a_character(client: httpx.Client) -> None:
    account = signup(client, password="before\x00after-nul")
    ok = client.post("/login", json={"email": account["email"], "password": "before\x00after-nul"})
    assert ok.status_code == 200
    cut = client.post("/login", json={"email": account["email"], "password": "before\x00"})
    assert cut.status_code == 401  # nothing after the NUL is ignored
