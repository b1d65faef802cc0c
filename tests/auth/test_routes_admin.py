"""Account administration over HTTP: disable/enable, role, sign out everywhere, the last admin,
and hostile callers and inputs. PostgreSQL and Redis; each change checked for its audit row
and its revocation (this service refuses the token, and the subject is published)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from auth.admin_support import (
    AdminStack,
    account_id,
    admin_headers,
    admin_stack,
    audit_rows,
    bearer,
    login,
    next_second,
    tokens,
)
from support.auth import ADMIN_EMAIL, ADMIN_PASSWORD, signup

ACTIONS = [
    ("POST", "/disable", None),
    ("POST", "/enable", None),
    ("PUT", "/role", {"role": "user"}),
    ("POST", "/sign-out", None),
    ("POST", "/password-reset", None),
]


def _user(api: httpx.Client) -> tuple[dict[str, str], dict[str, object], int]:
    account = signup(api)
    issued = tokens(api, account["email"])
    return account, issued, account_id(api, issued["access_token"])


@pytest.mark.parametrize(("method", "path", "body"), ACTIONS)
def test_admin_actions_refuse_non_admins_and_anonymous_callers(
    api: httpx.Client, method: str, path: str, body: dict[str, str] | None
) -> None:
    _, issued, target = _user(api)
    url = f"/accounts/{target}{path}"
    user = bearer(str(issued["access_token"]))
    assert api.request(method, url, json=body, headers=user).status_code == 403
    assert api.request(method, url, json=body).status_code == 401
    garbage = bearer("not.a.token")
    assert api.request(method, url, json=body, headers=garbage).status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), ACTIONS)
@pytest.mark.parametrize(
    ("account", "status"),
    [("999999", 404), ("0", 422), ("-1", 422), ("2147483648", 422), ("abc", 422), ("1e3", 422)],
)
def test_admin_actions_answer_unknown_and_odd_ids(
    api: httpx.Client,
    admin: dict[str, str],
    method: str,
    path: str,
    body: dict[str, str] | None,
    account: str,
    status: int,
) -> None:
    response = api.request(method, f"/accounts/{account}{path}", json=body, headers=admin)
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    "body",
    [{}, {"role": "root"}, {"role": "ADMIN"}, {"role": None}, {"role": "user", "x": 1}, [], "x"],
)
def test_bad_role_bodies_are_422(api: httpx.Client, admin: dict[str, str], body: object) -> None:
    _, _, target = _user(api)
    response = api.put(f"/accounts/{target}/role", json=body, headers=admin)
    assert response.status_code == 422, response.text


def test_a_huge_role_body_is_413(api: httpx.Client, admin: dict[str, str]) -> None:
    _, _, target = _user(api)
    body = b'{"role":"user","pad":"' + b"x" * 100_000 + b'"}'
    response = api.put(
        f"/accounts/{target}/role",
        content=body,
        headers={**admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_disable_refuses_login_revokes_tokens_and_enable_restores(
    admin_stack: AdminStack, api: httpx.Client, admin: dict[str, str]
) -> None:
    account, issued, target = _user(api)
    response = api.post(f"/accounts/{target}/disable", headers=admin)
    assert response.status_code == 200
    assert response.json()["disabled"] is True
    # Its token, its refresh token and its password all stop working.
    assert api.get("/me", headers=bearer(str(issued["access_token"]))).status_code == 401
    refreshed = api.post("/token/refresh", json={"refresh_token": issued["refresh_token"]})
    assert refreshed.status_code == 401
    refused = login(api, account["email"])
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_credentials"
    assert str(target) in admin_stack.revoked_subjects()
    listed = api.get("/accounts", params={"search": account["email"]}, headers=admin).json()
    assert listed["items"][0]["disabled"] is True
    # Disabling again changes nothing and records nothing.
    assert api.post(f"/accounts/{target}/disable", headers=admin).status_code == 200
    rows = audit_rows(api, admin, target=account["email"], action="account_disabled")
    assert len(rows) == 1
    assert rows[0]["actor_email"] == ADMIN_EMAIL
    assert rows[0]["detail"] == {"account_id": target}
    assert rows[0]["client_address"] == "127.0.0.1"
    failed = audit_rows(api, admin, target=account["email"], action="login_failed")
    assert failed[0]["detail"] == {"reason": "account_disabled"}

    enabled = api.post(f"/accounts/{target}/enable", headers=admin)
    assert enabled.status_code == 200
    assert enabled.json()["disabled"] is False
    next_second()
    again = tokens(api, account["email"])
    assert api.get("/me", headers=bearer(again["access_token"])).status_code == 200
    assert audit_rows(api, admin, target=account["email"], action="account_enabled")


def test_a_role_change_revokes_tokens_so_the_new_role_applies_at_once(
    admin_stack: AdminStack, api: httpx.Client, admin: dict[str, str]
) -> None:
    account, issued, target = _user(api)
    promoted = api.put(f"/accounts/{target}/role", json={"role": "admin"}, headers=admin)
    assert promoted.status_code == 200
    assert promoted.json()["role"] == "admin"
    assert api.get("/me", headers=bearer(str(issued["access_token"]))).status_code == 401
    assert str(target) in admin_stack.revoked_subjects()
    next_second()
    as_admin = bearer(tokens(api, account["email"])["access_token"])
    assert api.get("/accounts", headers=as_admin).status_code == 200

    demoted = api.put(f"/accounts/{target}/role", json={"role": "user"}, headers=admin)
    assert demoted.status_code == 200
    assert api.get("/accounts", headers=as_admin).status_code == 401
    rows = audit_rows(api, admin, target=account["email"], action="role_changed")
    assert [row["detail"] for row in rows] == [
        {"account_id": target, "from": "admin", "to": "user"},
        {"account_id": target, "from": "user", "to": "admin"},
    ]


def test_sign_out_everywhere_ends_every_session(
    admin_stack: AdminStack, api: httpx.Client, admin: dict[str, str]
) -> None:
    account, first, target = _user(api)
    second = tokens(api, account["email"])
    assert api.post(f"/accounts/{target}/sign-out", headers=admin).status_code == 204
    for issued in (first, second):
        assert api.get("/me", headers=bearer(str(issued["access_token"]))).status_code == 401
        refresh = api.post("/token/refresh", json={"refresh_token": issued["refresh_token"]})
        assert refresh.status_code == 401
    assert str(target) in admin_stack.revoked_subjects()
    assert audit_rows(api, admin, target=account["email"], action="signed_out_everywhere")
    # The password still works: signing out is not disabling.
    next_second()
    assert login(api, account["email"]).status_code == 200


def test_the_last_enabled_admin_cannot_be_disabled_or_demoted(tmp_path: Path) -> None:
    with admin_stack(tmp_path, "last-admin") as stack, stack.client() as api:
        admin = admin_headers(api)
        me = account_id(api, admin["Authorization"].split()[1])
        disable = api.post(f"/accounts/{me}/disable", headers=admin)
        assert disable.status_code == 409
        assert disable.json()["error"] == "last_admin"
        demote = api.put(f"/accounts/{me}/role", json={"role": "user"}, headers=admin)
        assert demote.status_code == 409
        assert api.get("/me", headers=admin).json()["role"] == "admin"
        # A second admin makes it possible; then that one is the last.
        other, issued, other_id = _user(api)
        assert (
            api.put(f"/accounts/{other_id}/role", json={"role": "admin"}, headers=admin)
        ).status_code == 200
        assert (
            api.put(f"/accounts/{me}/role", json={"role": "user"}, headers=admin).status_code == 200
        )
        next_second()
        other_admin = bearer(tokens(api, other["email"])["access_token"])
        last = api.post(f"/accounts/{other_id}/disable", headers=other_admin)
        assert last.status_code == 409
        # A disabled admin does not count as one.
        assert (
            api.put(f"/accounts/{me}/role", json={"role": "admin"}, headers=other_admin)
        ).status_code == 200
        assert api.post(f"/accounts/{me}/disable", headers=other_admin).status_code == 200
        assert api.post(f"/accounts/{other_id}/disable", headers=other_admin).status_code == 409
        refused = login(api, ADMIN_EMAIL, ADMIN_PASSWORD)
        assert refused.status_code == 401
        assert issued  # the first token of the new admin was only a user's


def _disable_at_once(stack: AdminStack, calls: list[tuple[int, dict[str, str]]]) -> list[int]:
    """POST /accounts/{id}/disable for each (id, headers), released together."""
    barrier = threading.Barrier(len(calls))

    def disable(call: tuple[int, dict[str, str]]) -> int:
        target, headers = call
        with stack.client() as own:
            barrier.wait(timeout=30)
            return own.post(f"/accounts/{target}/disable", headers=headers).status_code

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(disable, calls, timeout=60))


def test_two_admins_disabling_each_other_at_once_leave_one(tmp_path: Path) -> None:
    """The admin rows are locked while the last-admin rule is decided: without the lock both
    requests see two enabled admins, both succeed, and nobody can administer any more."""
    with admin_stack(tmp_path, "admin-race") as stack, stack.client() as api:
        first = admin_headers(api)
        first_id = account_id(api, first["Authorization"].split()[1])
        for _ in range(5):
            other, _, other_id = _user(api)
            promoted = api.put(f"/accounts/{other_id}/role", json={"role": "admin"}, headers=first)
            assert promoted.status_code == 200
            next_second()
            second = bearer(tokens(api, other["email"])["access_token"])
            answers = sorted(_disable_at_once(stack, [(other_id, first), (first_id, second)]))
            assert answers in ([200, 401], [200, 409]), answers
            enabled = stack.sql(
                "SELECT count(*) FROM accounts WHERE role = 'admin' AND NOT disabled"
            )
            assert enabled == [(1,)]
            # Whoever is left carries on with the next round.
            if stack.sql("SELECT disabled FROM accounts WHERE id = %s", first_id) == [(True,)]:
                first_id, first = other_id, second
