"""Refresh tokens and logout over HTTP, on PostgreSQL and SQLite with real Redis.

Rotation, reuse detection (a used refresh token ends the whole session and
its access tokens are announced to the gateways), logout by refresh token or
bearer, expiry, and hostile input on both endpoints (never a 500).
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
import redis
from sqlalchemy import create_engine, text
from support.auth import PASSWORD, AuthService, revocation_prefix, signup
from support.databases import REDIS_URL

from gatehouse_auth.revocation import revocation_keys
from gatehouse_auth.settings import AuthSettings


def _login(client: httpx.Client) -> dict[str, Any]:
    account = signup(client)
    response = client.post("/login", json={"email": account["email"], "password": PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _refresh(client: httpx.Client, token: str) -> httpx.Response:
    return client.post("/token/refresh", json={"refresh_token": token})


def _me(client: httpx.Client, access: str) -> int:
    return client.get("/me", headers={"Authorization": f"Bearer {access}"}).status_code


@pytest.fixture
def revoked_jtis(auth_service: AuthService) -> Iterator[redis.Redis]:
    """The auth service's revocation keys in Redis."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    client.close()


def _jti_key(service: AuthService) -> str:
    return revocation_keys(revocation_prefix(service.env["GATEHOUSE_AUTH_REDIS_PREFIX"]))[0]


def _sql(service: AuthService, statement: str, **params: Any) -> None:
    settings = AuthSettings(
        database_url=service.env["DATABASE_URL"] or None, data_dir=service.data_dir
    )
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(statement), params)
    finally:
        engine.dispose()


def test_login_opens_a_session_the_access_token_names(client: httpx.Client) -> None:
    body = _login(client)
    claims = _claims(body["access_token"])
    assert len(claims["sid"]) == 32 and claims["jti"] and claims["iat"]


def test_refresh_rotates_the_pair_within_the_session(client: httpx.Client) -> None:
    first = _login(client)
    response = _refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert set(second) == set(first)
    assert second["refresh_token"] != first["refresh_token"]
    old, new = _claims(first["access_token"]), _claims(second["access_token"])
    assert new["sid"] == old["sid"] and new["jti"] != old["jti"] and new["sub"] == old["sub"]
    assert _me(client, second["access_token"]) == 200
    assert _me(client, first["access_token"]) == 200  # still live until it expires
    third = _refresh(client, second["refresh_token"])
    assert third.status_code == 200


def test_a_reused_refresh_token_ends_the_whole_session(
    client: httpx.Client, auth_service: AuthService, revoked_jtis: redis.Redis
) -> None:
    first = _login(client)
    second = _refresh(client, first["refresh_token"]).json()
    pubsub = revoked_jtis.pubsub()
    pubsub.subscribe(
        revocation_keys(revocation_prefix(auth_service.env["GATEHOUSE_AUTH_REDIS_PREFIX"]))[2]
    )
    pubsub.get_message(timeout=2)

    reused = _refresh(client, first["refresh_token"])
    assert reused.status_code == 401
    assert reused.json()["error"] == "invalid_refresh_token"
    # the thief's or the owner's newer token dies with the family
    assert _refresh(client, second["refresh_token"]).status_code == 401
    assert _me(client, first["access_token"]) == 401
    assert _me(client, second["access_token"]) == 401
    # both live access tokens are on the gateways' list, announced on the channel
    key = _jti_key(auth_service)
    for token in (first, second):
        claims = _claims(token["access_token"])
        assert revoked_jtis.zscore(key, claims["jti"]) == claims["exp"]
    announced = set()
    for _ in range(2):
        message = pubsub.get_message(timeout=2)
        assert message is not None
        announced.add(json.loads(message["data"])["id"])
    assert announced == {_claims(t["access_token"])["jti"] for t in (first, second)}
    pubsub.close()


def test_two_refreshes_racing_with_one_token_cannot_both_win(client: httpx.Client) -> None:
    body = _login(client)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda _: _refresh(client, body["refresh_token"]), range(4)))
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) <= 1
    assert all(r.status_code in (200, 401) for r in responses)
    for winner in winners:  # the losers were reuses: the winner's pair is dead too
        assert _refresh(client, winner.json()["refresh_token"]).status_code == 401


def test_logout_with_the_refresh_token_ends_the_session(
    client: httpx.Client, auth_service: AuthService, revoked_jtis: redis.Redis
) -> None:
    body = _login(client)
    response = client.post("/logout", json={"refresh_token": body["refresh_token"]})
    assert response.status_code == 204 and response.content == b""
    assert _refresh(client, body["refresh_token"]).status_code == 401
    assert _me(client, body["access_token"]) == 401
    assert revoked_jtis.zscore(_jti_key(auth_service), _claims(body["access_token"])["jti"])
    # again: nothing left to end, still a 204
    again = client.post("/logout", json={"refresh_token": body["refresh_token"]})
    assert again.status_code == 204


def test_logout_with_the_bearer_token_ends_the_session(
    client: httpx.Client, auth_service: AuthService, revoked_jtis: redis.Redis
) -> None:
    body = _login(client)
    refreshed = _refresh(client, body["refresh_token"]).json()
    response = client.post(
        "/logout", headers={"Authorization": f"Bearer {refreshed['access_token']}"}
    )
    assert response.status_code == 204
    assert _refresh(client, refreshed["refresh_token"]).status_code == 401
    key = _jti_key(auth_service)
    for token in (body, refreshed):  # every live access token of the session
        assert revoked_jtis.zscore(key, _claims(token["access_token"])["jti"]) is not None


def test_an_expired_refresh_token_or_session_is_refused(
    client: httpx.Client, auth_service: AuthService
) -> None:
    token_expired, session_expired = _login(client), _login(client)
    _sql(
        auth_service,
        "UPDATE refresh_tokens SET expires_at = :past WHERE session_id = :sid",
        past="2000-01-01 00:00:00+00:00",
        sid=_claims(token_expired["access_token"])["sid"],
    )
    _sql(
        auth_service,
        "UPDATE sessions SET expires_at = :past WHERE id = :sid",
        past="2000-01-01 00:00:00+00:00",
        sid=_claims(session_expired["access_token"])["sid"],
    )
    for body in (token_expired, session_expired):
        response = _refresh(client, body["refresh_token"])
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_refresh_token"


def test_a_deleted_account_cannot_refresh(client: httpx.Client, auth_service: AuthService) -> None:
    body = _login(client)
    _sql(
        auth_service,
        "DELETE FROM accounts WHERE id = :id",
        id=int(_claims(body["access_token"])["sub"]),
    )
    assert _refresh(client, body["refresh_token"]).status_code == 401


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"refresh_token": None},
        {"refresh_token": 12345},
        {"refresh_token": ["a"]},
        {"refresh_token": {"$ne": ""}},
        {"refresh_token": ""},
        {"refresh_token": "x" * 600},
        {"refresh_token": "abc", "extra": 1},
        [],
        "token",
    ],
)
def test_refresh_refuses_malformed_bodies_with_422(client: httpx.Client, payload: Any) -> None:
    assert client.post("/token/refresh", json=payload).status_code == 422


@pytest.mark.parametrize(
    "token",
    [
        "a",
        "not-a-token",
        "é" * 40,
        "\x00" * 10,
        "eyJhbGciOiJub25lIn0.e30.",
        "' OR 1=1 --",
    ],
)
def test_refresh_answers_unknown_tokens_with_401(client: httpx.Client, token: str) -> None:
    response = client.post(
        "/token/refresh",
        content=json.dumps({"refresh_token": token}),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_refresh_token"


def test_a_lone_surrogate_is_refused_as_invalid_input(client: httpx.Client) -> None:
    response = client.post(
        "/token/refresh",
        content=b'{"refresh_token": "\\ud800"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422


def test_an_access_token_is_not_a_refresh_token(client: httpx.Client) -> None:
    body = _login(client)
    # longer than any refresh token: refused before any look-up
    assert _refresh(client, body["access_token"]).status_code == 422


def test_hostile_bodies_never_500(client: httpx.Client) -> None:
    huge = client.post(
        "/token/refresh",
        content=b'{"refresh_token": "' + b"a" * 100_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    for path in ("/token/refresh", "/logout"):
        for content in (b"{", b"\xff\xfe", b"null", b'{"refresh_token": 1e999}'):
            response = client.post(
                path, content=content, headers={"content-type": "application/json"}
            )
            assert response.status_code in (400, 401, 422), (path, content, response.text)


def test_logout_needs_a_valid_credential_and_ends_nothing_otherwise(
    client: httpx.Client,
) -> None:
    body = _login(client)
    assert client.post("/logout").status_code == 401
    assert client.post("/logout", json={}).status_code == 401
    for header in (
        "Bearer nope",
        "Bearer " + "a.b.c",
        "Basic Zm9vOmJhcg==",
        "Bearer " + "x" * 4000,
    ):
        assert client.post("/logout", headers={"Authorization": header}).status_code == 401
    assert client.post("/logout", json={"refresh_token": "unknown"}).status_code == 401
    assert client.post("/logout", json={"refresh_token": 5}).status_code == 422
    # a valid refresh token with a broken bearer: refused, and the session lives on
    broken = client.post(
        "/logout",
        json={"refresh_token": body["refresh_token"]},
        headers={"Authorization": "Bearer nope"},
    )
    assert broken.status_code == 401
    assert _refresh(client, body["refresh_token"]).status_code == 200


def test_an_expired_access_token_cannot_log_out(client: httpx.Client) -> None:
    body = _login(client)
    claims = _claims(body["access_token"])
    claims["exp"] = int(time.time()) - 3600
    forged = jwt.encode(claims, "not-the-key-" * 4, algorithm="HS256")
    assert client.post("/logout", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def _revocation_rows(service: AuthService, email: str) -> list[dict[str, Any]]:
    """The ``token_revoked`` audit rows naming ``email``, oldest first, every column."""
    settings = AuthSettings(
        database_url=service.env["DATABASE_URL"] or None, data_dir=service.data_dir
    )
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT * FROM audit_events WHERE action = 'token_revoked' "
                    "AND target = :email ORDER BY id"
                ),
                {"email": email},
            )
            found = [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()
    for row in found:  # SQLite hands JSON back as text
        if isinstance(row["detail"], str):
            row["detail"] = json.loads(row["detail"])
    return found


def _holds_no_token(rows: list[dict[str, Any]], *bodies: dict[str, Any]) -> None:
    text_of_rows = repr(rows)
    for body in bodies:
        for secret in (
            body["access_token"],
            body["refresh_token"],
            _claims(body["access_token"])["jti"],
        ):
            assert secret not in text_of_rows
    assert "eyJ" not in text_of_rows


def test_logout_writes_one_token_revoked_row_without_the_tokens(
    client: httpx.Client, auth_service: AuthService
) -> None:
    account = signup(client)
    body = client.post("/login", json={"email": account["email"], "password": PASSWORD}).json()
    assert client.post("/logout", json={"refresh_token": body["refresh_token"]}).status_code == 204
    rows = _revocation_rows(auth_service, account["email"])
    assert len(rows) == 1
    row = rows[0]
    assert row["actor_email"] == account["email"]  # the owner asked
    assert row["actor_id"] == int(_claims(body["access_token"])["sub"])
    assert row["client_address"] == "127.0.0.1"
    assert row["detail"] == {
        "reason": "logout",
        "account_id": row["actor_id"],
        "revoked_count": 1,
    }
    _holds_no_token(rows, body)
    # ending an ended session again is no new revocation
    assert client.post("/logout", json={"refresh_token": body["refresh_token"]}).status_code == 204
    assert len(_revocation_rows(auth_service, account["email"])) == 1


def test_a_bearer_logout_writes_a_token_revoked_row(
    client: httpx.Client, auth_service: AuthService
) -> None:
    account = signup(client)
    body = client.post("/login", json={"email": account["email"], "password": PASSWORD}).json()
    response = client.post("/logout", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.status_code == 204
    rows = _revocation_rows(auth_service, account["email"])
    assert [r["detail"]["reason"] for r in rows] == ["logout"]
    _holds_no_token(rows, body)


def test_refresh_reuse_writes_a_token_revoked_row_without_the_tokens(
    client: httpx.Client, auth_service: AuthService
) -> None:
    account = signup(client)
    first = client.post("/login", json={"email": account["email"], "password": PASSWORD}).json()
    second = _refresh(client, first["refresh_token"]).json()
    assert _revocation_rows(auth_service, account["email"]) == []  # a rotation revokes nothing
    assert _refresh(client, first["refresh_token"]).status_code == 401
    rows = _revocation_rows(auth_service, account["email"])
    assert len(rows) == 1
    row = rows[0]
    assert row["actor_id"] is None and row["actor_email"] is None  # nobody asked: detection did
    assert row["client_address"] == "127.0.0.1"
    assert row["detail"]["reason"] == "refresh_token_reused"
    assert row["detail"]["revoked_count"] == 2  # both live access tokens of the family
    _holds_no_token(rows, first, second)
    # presenting it yet again ends nothing new, so no second row
    assert _refresh(client, first["refresh_token"]).status_code == 401
    assert len(_revocation_rows(auth_service, account["email"])) == 1
