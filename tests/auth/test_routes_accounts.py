"""POST /account, GET /me and GET /accounts over HTTP, on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from pathlib import Path

import bcrypt
import httpx
import pytest
from pydantic import SecretStr
from support.auth import (
    ADMIN_EMAIL,
    PASSWORD,
    AuthService,
    StartAuth,
    login_token,
    new_account,
    signup,
)

from gatehouse_auth.app import create_app
from gatehouse_auth.settings import AuthSettings

PUBLIC_FIELDS = {"id", "username", "email", "role", "created_at", "disabled", "totp_enabled"}
# bcrypt's whole 72 bytes, and strong (72 times one letter is now refused as a repeat)
STRONG_72 = "k3J9-vL2q8WmZ0rT5yH1-nB6xC4pD7sF2gA9eQ3uI8oP5lK0jM6hN1bV4cX7zR2wE9tY3aS5"


def fields_of(response: httpx.Response) -> set[str]:
    body = response.json()
    assert body["error"] == "validation_error"
    return {f["field"] for f in body["fields"]}


def test_signup_answers_the_public_account(client: httpx.Client) -> None:
    account = new_account(email="Mixed.Case@Example.COM")
    response = client.post("/account", json=account)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == PUBLIC_FIELDS
    assert body["username"] == account["username"]
    assert body["email"] == "mixed.case@example.com"
    assert body["role"] == "user"
    assert body["created_at"].endswith("Z") or "+00:00" in body["created_at"]
    assert "password" not in response.text and "$2b$" not in response.text


@pytest.mark.parametrize("missing", ["username", "email", "password"])
def test_missing_fields_are_named(client: httpx.Client, missing: str) -> None:
    account = new_account()
    del account[missing]
    response = client.post("/account", json=account)
    assert response.status_code == 422
    assert fields_of(response) == {missing}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", 12345),
        ("username", None),
        ("email", ["a@example.com"]),
        ("password", {"nested": "x"}),
        ("password", 12345678),
    ],
)
def test_wrong_types_are_refused(client: httpx.Client, field: str, value: object) -> None:
    account: dict[str, object] = {**new_account(), field: value}
    response = client.post("/account", json=account)
    assert response.status_code == 422
    assert field in fields_of(response)


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[1, 2]", b'"a string"', b"{", b'{"username": "a\x00b"}'],
)
def test_malformed_bodies_are_422(client: httpx.Client, body: bytes) -> None:
    response = client.post("/account", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


def test_unknown_fields_are_refused(client: httpx.Client) -> None:
    response = client.post("/account", json={**new_account(), "role": "admin"})
    assert response.status_code == 422
    assert fields_of(response) == {"role"}


def test_oversized_body_is_413(client: httpx.Client) -> None:
    account = {**new_account(), "username": "a" * 100_000}
    response = client.post("/account", json=account)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_oversized_chunked_body_is_413(client: httpx.Client) -> None:
    def chunks():
        yield b'{"username": "'
        for _ in range(64):
            yield b"a" * 1024
        yield b'"}'

    response = client.post(
        "/account", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


@pytest.mark.parametrize(
    "username",
    ["ab", "a" * 65, "has space", "émile", "robert'); DROP TABLE accounts;--", "a/b", "<script>"],
)
def test_bad_usernames_are_refused(client: httpx.Client, username: str) -> None:
    response = client.post("/account", json=new_account(username=username))
    assert response.status_code == 422
    assert fields_of(response) == {"username"}


@pytest.mark.parametrize(
    "email", ["not-an-email", "a@", "@example.com", "a@b@c.com", "a" * 250 + "@example.com", ""]
)
def test_bad_emails_are_refused(client: httpx.Client, email: str) -> None:
    response = client.post("/account", json=new_account(email=email))
    assert response.status_code == 422
    assert fields_of(response) == {"email"}


def test_a_73_byte_password_is_refused_with_a_reason(client: httpx.Client) -> None:
    response = client.post("/account", json=new_account(password="p" * 73))
    assert response.status_code == 422
    assert fields_of(response) == {"password"}
    assert "too long" in response.json()["detail"]
    assert "72 bytes" in response.json()["detail"]
    # multi-byte characters count as bytes: 25 x 3 bytes = 75 bytes in 25 characters
    response = client.post("/account", json=new_account(password="€" * 25))
    assert response.status_code == 422
    assert "75 bytes" in response.json()["detail"]


def test_a_short_password_is_refused(client: httpx.Client) -> None:
    response = client.post("/account", json=new_account(password="short"))
    assert response.status_code == 422
    assert "too short" in response.json()["detail"]
    assert "at least 8" in response.json()["detail"]


def _password_refusal(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    [field] = body["fields"]
    assert field["field"] == "password"
    return field["type"], field["message"]


@pytest.mark.parametrize("password", ["password", "12345678", "qwertyuiop", "x" * 16, "iloveyou1"])
def test_common_passwords_are_refused(client: httpx.Client, password: str) -> None:
    response = client.post("/account", json=new_account(password=password))
    rule, message = _password_refusal(response)
    assert rule == "password_too_common"
    assert message.startswith("password is too common")
    assert password == "password" or password not in response.text  # never echoed back


@pytest.mark.parametrize(
    "context",
    [
        lambda a: a["email"],
        lambda a: a["email"].upper(),
        lambda a: a["username"],
        lambda a: a["email"].split("@")[0],
        lambda a: a["email"].split("@")[0] + "1",
        lambda a: a["username"] + "!",
    ],
    ids=["email", "email-upper", "username", "local-part", "local-part-1", "username-bang"],
)
def test_passwords_made_of_the_account_are_refused(client: httpx.Client, context) -> None:
    account = new_account()
    account["password"] = context(account)
    rule, message = _password_refusal(client.post("/account", json=account))
    assert rule == "password_too_similar"
    assert "too similar to your email or username" in message


def test_a_weak_password_for_a_taken_email_is_still_422(client: httpx.Client) -> None:
    """Validation comes first, whether the email is taken or not: the answer tells nothing."""
    first = signup(client)
    response = client.post("/account", json=new_account(email=first["email"], password="password"))
    assert response.status_code == 422


@pytest.mark.parametrize(
    "password",
    [STRONG_72, "pässwörd-🔒-ключ", "' OR '1'='1' --", 'nul\x00byte"}pass', "Tr0ub4dor&3x"],
)
def test_unusual_passwords_work_end_to_end(client: httpx.Client, password: str) -> None:
    account = signup(client, password=password)
    assert login_token(client, account["email"], password)
    wrong = client.post("/login", json={"email": account["email"], "password": password[:-1] + "!"})
    assert wrong.status_code == 401


def test_signups_are_limited_per_client_address(
    start_auth: StartAuth, fresh_postgres_url: str
) -> None:
    service = start_auth(
        database_url=fresh_postgres_url,
        signup_rate_limit_per_client="3",
        signup_rate_limit_window_seconds="600",
    )
    address = {"X-Forwarded-For": "198.51.100.30"}
    with service.client() as http:
        first = new_account()
        # every try counts: a taken email (an enumeration probe) and a refused password too
        tries = [first, new_account(email=first["email"]), new_account(password="password")]
        statuses = [http.post("/account", json=body, headers=address).status_code for body in tries]
        assert statuses == [201, 409, 422]
        refused = http.post("/account", json=new_account(), headers=address)
        assert refused.status_code == 429
        assert refused.json()["error"] == "rate_limited"
        assert "sign-ups" in refused.json()["detail"]
        assert 1 <= int(refused.headers["retry-after"]) <= 600
        # rotating a forwarded-for hop to the left changes nothing
        spoofed = {"X-Forwarded-For": "203.0.113.1, 198.51.100.30"}
        assert http.post("/account", json=new_account(), headers=spoofed).status_code == 429
        # another client behind the proxy has its own allowance
        other = {"X-Forwarded-For": "198.51.100.31"}
        assert http.post("/account", json=new_account(), headers=other).status_code == 201
        spec = http.get("/openapi.json").json()
        assert "429" in spec["paths"]["/account"]["post"]["responses"]


def test_sql_like_and_unicode_emails_are_data(client: httpx.Client) -> None:
    tricky = new_account(email="o'brien+test@example.com")
    assert client.post("/account", json=tricky).status_code == 201
    unicode_mail = new_account(email="用户@例子.广告")
    assert client.post("/account", json=unicode_mail).status_code == 201
    assert login_token(client, tricky["email"], PASSWORD)
    # the table is still there and still enforces uniqueness
    assert client.post("/account", json=tricky).status_code == 409


def test_taken_email_or_username_is_409(client: httpx.Client) -> None:
    first = signup(client)
    same_email = new_account(email=first["email"].upper())
    response = client.post("/account", json=same_email)
    assert response.status_code == 409
    assert response.json()["error"] == "email_taken"
    same_name = new_account(username=first["username"].upper())
    response = client.post("/account", json=same_name)
    assert response.status_code == 409
    assert response.json()["error"] == "username_taken"


def test_twenty_parallel_signups_of_one_email_make_one_account(auth_service: AuthService) -> None:
    email = new_account()["email"]

    def attempt(n: int) -> int:
        body = new_account(email=email)
        with httpx.Client(base_url=auth_service.url, timeout=60) as http:
            return http.post("/account", json=body).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(attempt, range(20)))
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == 19, statuses


def test_me_shows_the_callers_account(client: httpx.Client) -> None:
    account = signup(client)
    token = login_token(client, account["email"], account["password"])
    response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["email"] == account["email"]
    assert set(response.json()) == PUBLIC_FIELDS


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer not-a-token",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer a.b.c",
        "Bearer " + "x" * 5000,
    ],
)
def test_me_and_accounts_need_a_valid_token(
    client: httpx.Client, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for path in ("/me", "/accounts"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"] == "not_authenticated"


def test_accounts_is_for_admins_only(client: httpx.Client) -> None:
    account = signup(client)
    token = login_token(client, account["email"], account["password"])
    response = client.get("/accounts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


def test_accounts_pages_newest_first_and_searches(client: httpx.Client, admin_token: str) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    tag = "pg" + new_account()["username"][-8:]
    made = [signup(client, username=f"{tag}_{n}", email=f"{tag}.{n}@example.com") for n in range(5)]
    response = client.get("/accounts", params={"search": tag, "limit": 2}, headers=auth)
    assert response.status_code == 200
    page = response.json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 0
    assert [a["username"] for a in page["items"]] == [made[4]["username"], made[3]["username"]]
    assert all(set(a) == PUBLIC_FIELDS for a in page["items"])
    last = client.get("/accounts", params={"search": tag, "limit": 2, "offset": 4}, headers=auth)
    assert [a["username"] for a in last.json()["items"]] == [made[0]["username"]]
    by_email = client.get("/accounts", params={"search": f"{tag}.3@"}, headers=auth).json()
    assert [a["email"] for a in by_email["items"]] == [made[3]["email"]]
    assert "hashed_password" not in response.text and "$2b$" not in response.text


@pytest.mark.parametrize("search", ["%", "_", "' OR 1=1 --", "\\", "🔒"])
def test_search_treats_wildcards_and_quotes_as_text(
    client: httpx.Client, admin_token: str, search: str
) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    response = client.get("/accounts", params={"search": search}, headers=auth)
    assert response.status_code == 200
    page = response.json()
    expected = [
        a
        for a in client.get("/accounts", params={"limit": 100}, headers=auth).json()["items"]
        if search.lower() in a["username"].lower() or search.lower() in a["email"]
    ]
    if page["total"] <= 100:
        assert page["total"] == len(expected)


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"offset": -1}, {"search": "x" * 101}],
)
def test_accounts_query_is_bounded(client: httpx.Client, admin_token: str, params: dict) -> None:
    response = client.get(
        "/accounts", params=params, headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


def test_admin_sees_itself_in_the_list(client: httpx.Client, admin_token: str) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    page = client.get("/accounts", params={"search": ADMIN_EMAIL}, headers=auth).json()
    assert [(a["email"], a["role"]) for a in page["items"]] == [(ADMIN_EMAIL, "admin")]
    assert json.loads(json.dumps(page))["total"] == 1


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'"password": "\\ud800-lone-surrogate"', "password"),
        (b'"password": "ok-password", "email": "a\\u0000b@example.com"', "email"),
    ],
)
def test_unstorable_text_is_422_not_500(client: httpx.Client, raw: bytes, field: str) -> None:
    body = b'{"username": "surrogate_user", "email": "s@example.com", ' + raw + b"}"
    response = client.post("/account", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert field in fields_of(response)


def test_nul_in_search_is_422(client: httpx.Client, admin_token: str) -> None:
    response = client.get(
        "/accounts", params={"search": "a\x00b"}, headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert response.status_code == 422


def test_a_taken_email_or_username_costs_the_same_bcrypt_work(
    tmp_path: Path, fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted, not timed: every sign-up answer (201 or 409) follows exactly one bcrypt hash,
    so a taken email is not milliseconds against a new one's hundreds."""
    settings = AuthSettings(
        database_url=fresh_postgres_url,
        redis_url=None,
        data_dir=tmp_path,
        bcrypt_rounds=4,
        migrate_on_start=True,
        admin_password=SecretStr("admin-test-password"),
    )
    calls: list[str] = []
    real_hashpw = bcrypt.hashpw

    def counting_hashpw(password: bytes, salt: bytes) -> bytes:
        calls.append("hashpw")
        return real_hashpw(password, salt)

    async def exercise() -> list[int]:
        app = create_app(settings)
        counts = []
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://auth") as http,
        ):
            first = new_account()
            tries = [
                (first, 201),
                (new_account(email=first["email"]), 409),
                (new_account(email=first["email"].upper()), 409),
                (new_account(username=first["username"].upper()), 409),
                (new_account(), 201),
            ]
            for body, expected in tries:
                calls.clear()
                response = await http.post("/account", json=body)
                assert response.status_code == expected, response.text
                counts.append(len(calls))
        return counts

    monkeypatch.setattr(bcrypt, "hashpw", counting_hashpw)
    assert asyncio.run(exercise()) == [1, 1, 1, 1, 1]
