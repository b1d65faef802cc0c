"""Password changes over HTTP: one-time reset links (issued by an admin, used once, expiring,
superseded) and a user changing their own password (other sessions end). PostgreSQL, Redis."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from auth.admin_support import (
    PUBLIC_URL,
    AdminStack,
    account_id,
    audit_rows,
    bearer,
    login,
    next_second,
    tokens,
)
from support.auth import PASSWORD, signup

NEW_PASSWORD = "violet anchor tundra 42"


def _reset_token(api: httpx.Client, admin: dict[str, str], target: int) -> str:
    response = api.post(f"/accounts/{target}/password-reset", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    url = urlsplit(body["reset_url"])
    assert f"{url.scheme}://{url.netloc}" == PUBLIC_URL
    assert url.path == "/accounts_page/password-reset"
    assert body["expires_at"]
    return parse_qs(url.query)["token"][0]


def test_a_reset_link_works_once_and_signs_the_account_out(
    admin_stack: AdminStack, api: httpx.Client, admin: dict[str, str]
) -> None:
    account = signup(api)
    issued = tokens(api, account["email"])
    target = account_id(api, issued["access_token"])
    token = _reset_token(api, admin, target)
    # A refused password leaves the link usable.
    weak = api.post("/password/reset", json={"token": token, "new_password": "password1"})
    assert weak.status_code == 422
    assert weak.json()["fields"][0]["type"] == "password_too_common"
    used = api.post("/password/reset", json={"token": token, "new_password": NEW_PASSWORD})
    assert used.status_code == 204
    replayed = api.post("/password/reset", json={"token": token, "new_password": NEW_PASSWORD})
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_reset_token"
    assert api.get("/me", headers=bearer(issued["access_token"])).status_code == 401
    refresh = api.post("/token/refresh", json={"refresh_token": issued["refresh_token"]})
    assert refresh.status_code == 401
    assert str(target) in admin_stack.revoked_subjects()
    assert login(api, account["email"]).status_code == 401
    next_second()
    assert login(api, account["email"], NEW_PASSWORD).status_code == 200
    assert audit_rows(api, admin, target=account["email"], action="password_reset_issued")
    used_rows = audit_rows(api, admin, target=account["email"], action="password_reset_used")
    assert len(used_rows) == 1 and used_rows[0]["actor"] is None


def test_a_newer_link_supersedes_an_older_one(api: httpx.Client, admin: dict[str, str]) -> None:
    account = signup(api)
    target = account_id(api, tokens(api, account["email"])["access_token"])
    first = _reset_token(api, admin, target)
    second = _reset_token(api, admin, target)
    old = api.post("/password/reset", json={"token": first, "new_password": NEW_PASSWORD})
    assert old.status_code == 400
    new = api.post("/password/reset", json={"token": second, "new_password": NEW_PASSWORD})
    assert new.status_code == 204


def test_an_expired_link_is_refused(
    admin_stack: AdminStack, api: httpx.Client, admin: dict[str, str]
) -> None:
    account = signup(api)
    target = account_id(api, tokens(api, account["email"])["access_token"])
    token = _reset_token(api, admin, target)
    admin_stack.sql(
        "UPDATE password_resets SET expires_at = now() - interval '1 second' WHERE account_id = %s",
        target,
    )
    expired = api.post("/password/reset", json={"token": token, "new_password": NEW_PASSWORD})
    assert expired.status_code == 400
    assert login(api, account["email"]).status_code == 200


def test_reset_tokens_are_stored_hashed(
    admin_stack: AdminStack, api: httpx.Client, admin: dict[str, str]
) -> None:
    account = signup(api)
    target = account_id(api, tokens(api, account["email"])["access_token"])
    token = _reset_token(api, admin, target)
    stored = admin_stack.sql("SELECT token_hash FROM password_resets WHERE account_id = %s", target)
    assert stored and all(token not in row[0] for row in stored)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": "x"},
        {"new_password": NEW_PASSWORD},
        {"token": "", "new_password": NEW_PASSWORD},
        {"token": "x" * 129, "new_password": NEW_PASSWORD},
        {"token": "x", "new_password": "short"},
        {"token": "x", "new_password": "é" * 40},
        {"token": 5, "new_password": NEW_PASSWORD},
        {"token": "x", "new_password": NEW_PASSWORD, "extra": 1},
        [],
    ],
)
def test_bad_reset_bodies_are_422(api: httpx.Client, body: object) -> None:
    assert api.post("/password/reset", json=body).status_code == 422


# JSON string literals, escapes as sent: NUL and a lone surrogate cannot be stored or hashed.
@pytest.mark.parametrize(
    "token", ['"x"', '"\\u0000"', '"\\ud800"', '"\' OR 1=1 --"', '"' + "a" * 128 + '"']
)
def test_unknown_reset_tokens_are_400_or_422_never_500(api: httpx.Client, token: str) -> None:
    body = '{"token": ' + token + ', "new_password": "' + NEW_PASSWORD + '"}'
    response = api.post(
        "/password/reset", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text


def test_changing_your_password_ends_your_other_sessions(
    api: httpx.Client, admin: dict[str, str]
) -> None:
    account = signup(api)
    here = tokens(api, account["email"])
    elsewhere = tokens(api, account["email"])
    me = bearer(here["access_token"])
    wrong = api.put(
        "/account/password",
        json={"current_password": "not-it-at-all", "new_password": NEW_PASSWORD},
        headers=me,
    )
    assert wrong.status_code == 403
    assert wrong.json()["error"] == "wrong_password"
    weak = api.put(
        "/account/password",
        json={"current_password": PASSWORD, "new_password": account["email"]},
        headers=me,
    )
    assert weak.status_code == 422
    changed = api.put(
        "/account/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=me,
    )
    assert changed.status_code == 204
    # This session goes on; the other one is over.
    assert api.get("/me", headers=me).status_code == 200
    assert (
        api.post("/token/refresh", json={"refresh_token": here["refresh_token"]}).status_code == 200
    )
    assert api.get("/me", headers=bearer(elsewhere["access_token"])).status_code == 401
    other = api.post("/token/refresh", json={"refresh_token": elsewhere["refresh_token"]})
    assert other.status_code == 401
    assert login(api, account["email"]).status_code == 401
    assert login(api, account["email"], NEW_PASSWORD).status_code == 200
    rows = audit_rows(api, admin, target=account["email"], action="password_changed")
    assert len(rows) == 1 and rows[0]["actor_email"] == account["email"]
    failed = audit_rows(api, admin, target=account["email"], action="login_failed")
    reasons = [row["detail"]["reason"] for row in failed]
    assert reasons == ["invalid_credentials", "wrong_current_password"]


def test_wrong_current_passwords_are_rate_limited(api: httpx.Client) -> None:
    account = signup(api)
    me = bearer(tokens(api, account["email"])["access_token"])
    body = {"current_password": "guess-guess", "new_password": NEW_PASSWORD}
    answers = [api.put("/account/password", json=body, headers=me).status_code for _ in range(5)]
    assert answers == [403, 403, 403, 429, 429]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"current_password": PASSWORD},
        {"current_password": "", "new_password": NEW_PASSWORD},
        {"current_password": "x" * 1025, "new_password": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": "x" * 73},
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "role": "admin"},
    ],
)
def test_bad_password_change_bodies_are_422_and_anonymous_401(
    api: httpx.Client, body: dict[str, str]
) -> None:
    account = signup(api)
    me = bearer(tokens(api, account["email"])["access_token"])
    assert api.put("/account/password", json=body, headers=me).status_code == 422
    assert api.put("/account/password", json=body).status_code == 401
