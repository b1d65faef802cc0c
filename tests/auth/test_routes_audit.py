"""The audit log over HTTP: rows for security events, filters and pages, operator actions from
the gateway (POST /audit), hostile input, and never a secret in it. PostgreSQL and Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from auth.admin_support import (
    PER_EMAIL_CLIENT,
    AdminStack,
    account_id,
    audit_rows,
    bearer,
    login,
    tokens,
)
from support.auth import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, new_account, run_cli, signup


def test_failed_logins_and_the_lockout_they_start_are_recorded_and_lifting_it_too(
    api: httpx.Client, admin: dict[str, str]
) -> None:
    email = new_account()["email"]  # no account: a guess at an email is recorded too
    address = {"X-Forwarded-For": "203.0.113.9"}
    for _ in range(PER_EMAIL_CLIENT + 1):
        api.post("/login", json={"email": email, "password": "guess-guess"}, headers=address)
    failed = audit_rows(api, admin, target=email, action="login_failed")
    assert len(failed) == PER_EMAIL_CLIENT
    assert {row["client_address"] for row in failed} == {"203.0.113.9"}
    assert all(row["actor"] is None for row in failed)
    lockouts = audit_rows(api, admin, target=email, action="lockout")
    assert [row["detail"] for row in lockouts] == [{"scope": "address"}]
    assert api.delete(f"/lockouts/{email}", headers=admin).status_code == 200
    lifted = audit_rows(api, admin, target=email, action="lockout_lifted")
    assert lifted[0]["actor_email"] == ADMIN_EMAIL and lifted[0]["detail"] == {"lifted": 1}


def test_filters_and_pages(api: httpx.Client, admin: dict[str, str]) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    email = new_account()["email"]
    for _ in range(3):
        login(api, email, "guess-guess")
    rows = audit_rows(api, admin, target=email)
    # Three failures, and the third filled the address's window: a lockout.
    assert [row["action"] for row in rows] == ["lockout"] + ["login_failed"] * 3
    ats = [row["at"] for row in rows]
    assert ats == sorted(ats, reverse=True)
    first = api.get("/audit", params={"target": email, "limit": 3}, headers=admin).json()
    assert first["total"] == 4 and len(first["items"]) == 3
    assert first["limit"] == 3 and first["offset"] == 0
    rest = api.get("/audit", params={"target": email, "limit": 3, "offset": 3}, headers=admin)
    assert [row["id"] for row in rest.json()["items"]] == [rows[3]["id"]]
    paged = api.get("/audit", params={"target": email, "page": 2, "size": 3}, headers=admin)
    assert paged.json()["items"] == rest.json()["items"]
    since = api.get("/audit", params={"target": email, "since": before.isoformat()}, headers=admin)
    assert since.json()["total"] == 4
    until = api.get("/audit", params={"target": email, "until": before.isoformat()}, headers=admin)
    assert until.json()["total"] == 0
    by_action = audit_rows(api, admin, target=email, action="role_changed")
    assert by_action == []
    me = account_id(api, admin["Authorization"].split()[1])
    api.post("/audit", json={"action": "backend_drained", "target": email}, headers=admin)
    by_id = audit_rows(api, admin, actor=str(me), target=email)
    by_email = audit_rows(api, admin, actor=ADMIN_EMAIL.upper(), target=email)
    assert [row["action"] for row in by_id] == ["backend_drained"]
    assert by_email == by_id


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"offset": "-1"},
        {"page": "0"},
        {"size": "1000"},
        {"action": "nope"},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},  # no time zone
        {"until": "99999-01-01T00:00:00Z"},
        {"since": "9999-12-31T23:59:59+00:00"},
        {"since": "0001-01-01T00:00:00+01:00"},  # before the year 1 in UTC
        {"actor": "x" * 255},
        {"target": "a\x00b"},
    ],
)
def test_bad_audit_queries_are_422(
    api: httpx.Client, admin: dict[str, str], params: dict[str, str]
) -> None:
    response = api.get("/audit", params=params, headers=admin)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("actor", ["99999999999999999999", "0", "-1", "²", "' OR 1=1 --"])
def test_odd_actor_filters_match_nothing(
    api: httpx.Client, admin: dict[str, str], actor: str
) -> None:
    response = api.get("/audit", params={"actor": actor}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"until": "0001-01-01T00:00:00-23:59"},
        {"since": "2026-06-01T00:00:00+23:59"},
        {"since": "8999-12-31T23:59:59Z", "until": "2000-01-01T00:00:00Z"},
        {"offset": "10000000"},
        {"page": "100000", "size": "100"},
    ],
)
def test_edge_audit_queries_answer_200(
    api: httpx.Client, admin: dict[str, str], params: dict[str, str]
) -> None:
    response = api.get("/audit", params=params, headers=admin)
    assert response.status_code == 200, response.text


def test_the_audit_log_is_for_admins(api: httpx.Client) -> None:
    account = signup(api)
    user = bearer(tokens(api, account["email"])["access_token"])
    assert api.get("/audit", headers=user).status_code == 403
    assert api.get("/audit").status_code == 401
    body = {"action": "backend_drained"}
    assert api.post("/audit", json=body, headers=user).status_code == 403
    assert api.post("/audit", json=body).status_code == 401


def test_operator_actions_are_recorded_with_the_calling_admin(
    api: httpx.Client, admin: dict[str, str]
) -> None:
    body = {
        "action": "canary_weights_changed",
        "target": "service1",
        "detail": {"weights": {"stable": 90, "canary": 10}, "route": "service1"},
    }
    response = api.post("/audit", json=body, headers=admin)
    assert response.status_code == 201
    row = response.json()
    assert row["action"] == "canary_weights_changed"
    assert row["actor_email"] == ADMIN_EMAIL and row["target"] == "service1"
    assert row["detail"] == body["detail"]
    assert row["client_address"] == "127.0.0.1"
    assert audit_rows(api, admin, action="canary_weights_changed", target="service1")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"action": "role_changed"},  # only operator actions; no forging security events
        {"action": "login_failed", "target": "x"},
        {"action": "backend_drained", "detail": {"password": "hunter22"}},
        {"action": "backend_drained", "detail": {"nested": [{"api_token": "x"}]}},
        {"action": "backend_drained", "detail": {"TOTP_SECRET": "x"}},
        {"action": "backend_drained", "detail": {"x": "y" * 5000}},
        {"action": "backend_drained", "detail": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}},
        {"action": "backend_drained", "detail": ["not", "an", "object"]},
        {"action": "backend_drained", "target": "t" * 255},
        {"action": "backend_drained", "target": "a\x00b"},
        {"action": "backend_drained", "detail": {"a\x00": 1}},
        {"action": "backend_drained", "extra": 1},
    ],
)
def test_bad_operator_actions_are_422(
    api: httpx.Client, admin: dict[str, str], body: dict[str, object]
) -> None:
    response = api.post("/audit", json=body, headers=admin)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "raw",
    [
        b'{"action": "backend_drained", "detail": {"x": NaN}}',
        b'{"action": "backend_drained", "detail": {"x": Infinity}}',
        b'{"action": "backend_drained", "detail": {"x": "\\ud800"}}',
        b'{"action": "backend_drained", "detail": {"\\ud800": 1}}',
        b'{"action": "backend_drained", "detail": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"action": "backend_drained", "detail": {"x": ' + b"9" * 5000 + b"}}",
    ],
)
def test_unstorable_operator_details_are_4xx_never_500(
    api: httpx.Client, admin: dict[str, str], raw: bytes
) -> None:
    headers = {**admin, "Content-Type": "application/json"}
    response = api.post("/audit", content=raw, headers=headers)
    assert 400 <= response.status_code < 500, response.text


def test_a_huge_operator_body_is_413(api: httpx.Client, admin: dict[str, str]) -> None:
    raw = b'{"action": "backend_drained", "detail": {"x": "' + b"y" * 100_000 + b'"}}'
    headers = {**admin, "Content-Type": "application/json"}
    assert api.post("/audit", content=raw, headers=headers).status_code == 413


def test_no_password_token_secret_or_code_ever_reaches_the_log(
    admin_stack: AdminStack, api: httpx.Client, admin: dict[str, str]
) -> None:
    """Every flow that handles a secret, then the whole table searched for each of them."""
    account = signup(api)
    secrets = [PASSWORD, ADMIN_PASSWORD, "typo-password-1"]
    issued = tokens(api, account["email"])
    secrets += [issued["access_token"], issued["refresh_token"]]
    me = bearer(issued["access_token"])
    target = account_id(api, issued["access_token"])
    login(api, account["email"], "typo-password-1")
    api.put(
        "/account/password",
        json={"current_password": "typo-password-1", "new_password": "nope nope nope"},
        headers=me,
    )
    started = api.post("/account/totp", headers=me).json()
    secrets.append(started["secret"])
    code = pyotp.TOTP(started["secret"]).now()
    recovery = api.post("/account/totp/confirm", json={"code": code}, headers=me).json()
    secrets += recovery["recovery_codes"]
    login(api, account["email"], totp_code=recovery["recovery_codes"][0])
    login(api, account["email"], totp_code="999999")
    api.request("DELETE", "/account/totp", json={"code": recovery["recovery_codes"][1]}, headers=me)
    issued_reset = api.post(f"/accounts/{target}/password-reset", headers=admin).json()
    reset_token = parse_qs(urlsplit(issued_reset["reset_url"]).query)["token"][0]
    secrets.append(reset_token)
    new_password = "marble falcon quiver 77"
    secrets.append(new_password)
    api.post("/password/reset", json={"token": reset_token, "new_password": new_password})
    api.post(
        "/audit",
        json={"action": "backend_drained", "detail": {"note": admin["Authorization"][7:]}},
        headers=admin,
    )
    secrets.append(admin["Authorization"][7:])

    rows = admin_stack.sql("SELECT row_to_json(a)::text FROM audit_events a")
    dump = "\n".join(row[0] for row in rows)
    assert len(rows) >= 8
    for secret in secrets:
        assert secret not in dump, f"a secret is in the audit log: {secret[:6]}..."
        for variant in (secret.replace("-", ""), json.dumps(secret)[1:-1]):
            assert variant not in dump
    actions = {json.loads(row[0])["action"] for row in rows}
    assert {
        "login_failed",
        "totp_enabled",
        "totp_recovery_code_used",
        "totp_disabled",
        "password_reset_issued",
        "password_reset_used",
        "backend_drained",
    } <= actions


def test_a_key_rotation_by_the_cli_is_audited(
    admin_stack: AdminStack, api: httpx.Client, admin: dict[str, str]
) -> None:
    result = run_cli(admin_stack.service.env, "keys", "rotate")
    assert "new key" in result.stdout
    rows = audit_rows(api, admin, action="key_rotated")
    assert len(rows) == 1
    assert rows[0]["target"].endswith(".pem") and rows[0]["target"] in result.stdout
    assert rows[0]["detail"] == {"by": "cli"} and rows[0]["actor"] is None
