"""TOTP over HTTP: enrolment, login with a code, replay refused, single-use recovery codes,
turning it off, and ``require_admin_totp``. PostgreSQL and Redis."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from auth.admin_support import (
    AdminStack,
    account_id,
    admin_headers,
    admin_stack,
    audit_rows,
    bearer,
    login,
    tokens,
)
from cryptography.fernet import Fernet
from support.auth import ADMIN_EMAIL, ADMIN_PASSWORD, signup


def _code(secret: str, steps_ahead: int = 0) -> str:
    """The code of the current 30-second step, or of one ``steps_ahead`` of it."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def _enrol(api: httpx.Client, me: dict[str, str]) -> tuple[str, list[str]]:
    started = api.post("/account/totp", headers=me)
    assert started.status_code == 200, started.text
    secret = started.json()["secret"]
    uri = urlsplit(started.json()["otpauth_uri"])
    assert uri.scheme == "otpauth" and parse_qs(uri.query)["secret"] == [secret]
    confirmed = api.post("/account/totp/confirm", json={"code": _code(secret)}, headers=me)
    assert confirmed.status_code == 200, confirmed.text
    codes: list[str] = confirmed.json()["recovery_codes"]
    return secret, codes


def test_enrolment_needs_a_right_code_and_then_login_needs_one(
    admin_stack: AdminStack, api: httpx.Client, admin: dict[str, str]
) -> None:
    account = signup(api)
    me = bearer(tokens(api, account["email"])["access_token"])
    assert (
        api.post("/account/totp/confirm", json={"code": "123456"}, headers=me).json()["error"]
        == "totp_not_started"
    )
    secret = api.post("/account/totp", headers=me).json()["secret"]
    wrong = str((int(_code(secret)) + 1) % 1_000_000).zfill(6)
    refused = api.post("/account/totp/confirm", json={"code": wrong}, headers=me)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_totp_code"
    assert login(api, account["email"]).status_code == 200  # not on until confirmed
    # Starting again replaces the unconfirmed secret.
    secret, codes = _enrol(api, me)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert api.get("/me", headers=me).json()["totp_enabled"] is True
    again = api.post("/account/totp", headers=me)
    assert again.status_code == 409
    assert again.json()["error"] == "totp_already_enabled"

    missing = login(api, account["email"])
    assert missing.status_code == 401
    assert missing.json()["error"] == "totp_required"
    # The step the confirmation used is spent; the next one is within the drift allowed.
    ahead = _code(secret, 1)
    assert login(api, account["email"], totp_code=ahead).status_code == 200
    replayed = login(api, account["email"], totp_code=ahead)
    assert replayed.status_code == 401
    assert replayed.json()["error"] == "invalid_totp_code"
    assert login(api, account["email"], totp_code=_code(secret)).status_code == 401
    stored = admin_stack.sql(
        "SELECT code_hash FROM totp_recovery_codes WHERE account_id = %s",
        account_id(api, me["Authorization"].split()[1]),
    )
    assert len(stored) == 10
    assert not {row[0] for row in stored} & {code.replace("-", "") for code in codes}
    assert audit_rows(api, admin, target=account["email"], action="totp_enabled")
    failures = audit_rows(api, admin, target=account["email"], action="login_failed")
    assert [row["detail"]["reason"] for row in failures] == ["invalid_totp_code"] * 2


def test_recovery_codes_work_once_each_and_can_turn_totp_off(
    api: httpx.Client, admin: dict[str, str]
) -> None:
    account = signup(api)
    me = bearer(tokens(api, account["email"])["access_token"])
    _, codes = _enrol(api, me)
    assert login(api, account["email"], totp_code=codes[0]).status_code == 200
    assert login(api, account["email"], totp_code=codes[0]).status_code == 401
    # Case, spaces and the dash do not matter.
    loose = " " + codes[1].replace("-", "").upper() + " "
    assert login(api, account["email"], totp_code=loose).status_code == 200
    used = audit_rows(api, admin, target=account["email"], action="totp_recovery_code_used")
    assert [row["detail"] for row in used] == [{"left": 8}, {"left": 9}]

    wrong = api.request("DELETE", "/account/totp", json={"code": codes[0]}, headers=me)
    assert wrong.status_code == 400
    off = api.request("DELETE", "/account/totp", json={"code": codes[2]}, headers=me)
    assert off.status_code == 204
    assert api.get("/me", headers=me).json()["totp_enabled"] is False
    assert login(api, account["email"]).status_code == 200
    gone = api.request("DELETE", "/account/totp", json={"code": codes[3]}, headers=me)
    assert gone.status_code == 404
    assert audit_rows(api, admin, target=account["email"], action="totp_disabled")


def test_wrong_codes_to_turn_totp_off_are_rate_limited(api: httpx.Client) -> None:
    account = signup(api)
    me = bearer(tokens(api, account["email"])["access_token"])
    secret, _ = _enrol(api, me)
    wrong = str((int(_code(secret)) + 500_000) % 1_000_000).zfill(6)
    answers = [
        api.request("DELETE", "/account/totp", json={"code": wrong}, headers=me).status_code
        for _ in range(5)
    ]
    assert answers == [400, 400, 400, 429, 429]
    assert api.get("/me", headers=me).json()["totp_enabled"] is True


@pytest.mark.parametrize(
    "body",
    [{}, {"code": ""}, {"code": "1" * 33}, {"code": 123456}, {"code": "123456", "x": 1}, []],
)
def test_bad_code_bodies_are_422_and_anonymous_401(api: httpx.Client, body: object) -> None:
    account = signup(api)
    me = bearer(tokens(api, account["email"])["access_token"])
    api.post("/account/totp", headers=me)
    for method, path in [("POST", "/account/totp/confirm"), ("DELETE", "/account/totp")]:
        assert api.request(method, path, json=body, headers=me).status_code == 422
        assert api.request(method, path, json={"code": "123456"}).status_code == 401
    assert api.post("/account/totp").status_code == 401


@pytest.mark.parametrize("code", ["", "x" * 33, 123456])
def test_bad_totp_codes_at_login_are_422(api: httpx.Client, code: object) -> None:
    response = api.post(
        "/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp_code": code}
    )
    assert response.status_code == 422


@pytest.mark.parametrize("code", ["000000", "12345", "1234567", "abcdef", "'; DROP TABLE x"])
def test_wrong_codes_at_login_are_401(api: httpx.Client, code: str) -> None:
    account = signup(api)
    me = bearer(tokens(api, account["email"])["access_token"])
    secret, _ = _enrol(api, me)
    if code == "000000" and _code(secret) == code:
        code = "000001"
    response = login(api, account["email"], totp_code=code)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_totp_code"


def test_required_admin_totp_refuses_admin_endpoints_until_enrolled(tmp_path: Path) -> None:
    with (
        admin_stack(tmp_path, "admin-totp", require_admin_totp="true") as stack,
        stack.client() as api,
    ):
        admin = admin_headers(api)
        refused = api.get("/accounts", headers=admin)
        assert refused.status_code == 403
        assert refused.json()["error"] == "totp_enrolment_required"
        assert api.get("/audit", headers=admin).status_code == 403
        assert api.get("/me", headers=admin).status_code == 200
        # Users are not admins: nothing changes for them.
        user = signup(api)
        assert login(api, user["email"]).status_code == 200
        secret, _ = _enrol(api, admin)
        assert api.get("/accounts", headers=admin).status_code == 200
        assert login(api, ADMIN_EMAIL, ADMIN_PASSWORD).json()["error"] == "totp_required"
        fresh = tokens(api, ADMIN_EMAIL, ADMIN_PASSWORD, totp_code=_code(secret, 1))
        assert api.get("/audit", headers=bearer(fresh["access_token"])).status_code == 200


def test_secrets_are_sealed_at_rest_when_keys_are_set(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    with (
        admin_stack(tmp_path, "totp-sealed", totp_encryption_keys=key) as stack,
        stack.client() as api,
    ):
        account = signup(api)
        me = bearer(tokens(api, account["email"])["access_token"])
        secret, _ = _enrol(api, me)
        stored = stack.sql("SELECT totp_secret FROM accounts WHERE email = %s", account["email"])
        assert stored[0][0].startswith("fernet:") and secret not in stored[0][0]
        assert login(api, account["email"], totp_code=_code(secret, 1)).status_code == 200
