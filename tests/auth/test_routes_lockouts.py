"""GET /lockouts and DELETE /lockouts/{email}: nobody locks the owner out from elsewhere,
the per-email ceiling does, and an admin sees and lifts lockouts. PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from auth.tcp_proxy import TcpProxy
from support.auth import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    AuthService,
    StartAuth,
    auth_env,
    launch,
    login_token,
    new_account,
    signup,
)
from support.databases import REDIS_URL, drop_redis_prefix, temporary_database, unique_redis_prefix
from support.processes import free_port

PER_EMAIL_CLIENT = 3
PER_EMAIL = 6


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthService]:
    """PostgreSQL and Redis; long windows (nothing here waits for one to pass), tight counts.

    Shared by the module: every test uses emails and addresses of its own.
    """
    data_dir = tmp_path_factory.mktemp("auth-lockouts")
    prefix = unique_redis_prefix("auth-lockouts")
    with temporary_database("lockouts") as url:
        env = auth_env(
            data_dir,
            database_url=url,
            redis_prefix=prefix,
            rate_limit_window_seconds="600",
            rate_limit_email_window_seconds="600",
            rate_limit_per_email_client=str(PER_EMAIL_CLIENT),
            rate_limit_per_email=str(PER_EMAIL),
        )
        service = launch(data_dir, "lockouts", env)
        yield service
        service.process.stop()
    drop_redis_prefix(prefix)


@pytest.fixture
def client(service: AuthService) -> Iterator[httpx.Client]:
    with service.client() as http:
        yield http


@pytest.fixture
def admin(client: httpx.Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {login_token(client, ADMIN_EMAIL, ADMIN_PASSWORD)}"}


def _login(client: httpx.Client, email: str, password: str, address: str) -> int:
    body = {"email": email, "password": password}
    return client.post("/login", json=body, headers={"X-Forwarded-For": address}).status_code


def test_failures_from_one_address_do_not_lock_the_owner_out(client: httpx.Client) -> None:
    owner = signup(client)
    attacker = [_login(client, owner["email"], "wrong-password", "6.6.6.6") for _ in range(8)]
    assert attacker == [401] * PER_EMAIL_CLIENT + [429] * 5
    assert _login(client, owner["email"], PASSWORD, "198.51.100.7") == 200


def test_the_ceiling_locks_the_account_and_the_admin_lifts_it(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    owner = signup(client)
    spread = [_login(client, owner["email"], "wrong-pw", f"203.0.113.{n}") for n in range(7)]
    assert spread == [401] * PER_EMAIL + [429]
    assert _login(client, owner["email"], PASSWORD, "198.51.100.7") == 429  # locked for all
    listed = client.get("/lockouts", headers=admin)
    assert listed.status_code == 200
    mine = [item for item in listed.json()["items"] if item["email"] == owner["email"]]
    assert len(mine) == 1
    assert mine[0]["scope"] == "account" and mine[0]["client"] is None
    assert 1 <= mine[0]["retry_after"] <= 600
    lifted = client.delete(f"/lockouts/{owner['email'].upper()}", headers=admin)
    assert lifted.status_code == 200
    assert lifted.json() == {"email": owner["email"], "lifted": 1}
    assert _login(client, owner["email"], PASSWORD, "198.51.100.7") == 200
    again = client.delete(f"/lockouts/{owner['email']}", headers=admin)
    assert again.status_code == 404 and again.json()["error"] == "not_found"


def test_address_lockouts_are_listed_and_lifted(
    client: httpx.Client, admin: dict[str, str]
) -> None:
    email = new_account()["email"]  # lockouts name what was typed, account or not
    for _ in range(PER_EMAIL_CLIENT):
        _login(client, email, "wrong-pw", "192.0.2.10")
    assert _login(client, email, "wrong-pw", "192.0.2.10") == 429
    items = client.get("/lockouts", headers=admin).json()["items"]
    mine = [(i["scope"], i["client"]) for i in items if i["email"] == email]
    assert mine == [("address", "192.0.2.10")]
    assert client.delete(f"/lockouts/{email}", headers=admin).json()["lifted"] == 1
    assert _login(client, email, "wrong-pw", "192.0.2.10") == 401
    assert all(i["email"] != email for i in client.get("/lockouts", headers=admin).json()["items"])


def test_a_success_forgets_that_addresss_failures(client: httpx.Client) -> None:
    owner = signup(client)
    for _ in range(PER_EMAIL_CLIENT - 1):
        assert _login(client, owner["email"], "typo-password", "198.51.100.20") == 401
    assert _login(client, owner["email"], PASSWORD, "198.51.100.20") == 200
    for _ in range(PER_EMAIL_CLIENT - 1):
        assert _login(client, owner["email"], "typo-password", "198.51.100.20") == 401


@pytest.mark.parametrize("authorization", [None, "Bearer nope", "Basic YWRtaW46YWRtaW4="])
def test_lockouts_need_an_admin_token(client: httpx.Client, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for method, path in (("GET", "/lockouts"), ("DELETE", "/lockouts/a@example.com")):
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"] == "not_authenticated"


def test_lockouts_are_for_admins_only(client: httpx.Client) -> None:
    user = signup(client)
    auth = {"Authorization": f"Bearer {login_token(client, user['email'], PASSWORD)}"}
    assert client.get("/lockouts", headers=auth).status_code == 403
    denied = client.delete(f"/lockouts/{user['email']}", headers=auth)
    assert denied.status_code == 403 and denied.json()["error"] == "forbidden"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/lockouts/no-at-sign", 422),
        ("/lockouts/a@b@example.com", 422),
        ("/lockouts/@example.com", 422),
        ("/lockouts/a@", 422),
        ("/lockouts/" + "a" * 300 + "@example.com", 422),
        ("/lockouts/a%00b@example.com", 422),
        ("/lockouts/a%0d%0ab@example.com", 422),
        ("/lockouts/%ED%A0%80@example.com", 404),  # not UTF-8: no such email, never a 500
        ("/lockouts/' OR 1=1 --@example.com", 404),
        ("/lockouts/unknown.person@example.com", 404),
        ("/lockouts/a%2Fb@example.com", 404),
        ("/lockouts/..%2F..%2Faccounts", 404),
    ],
)
def test_hostile_lift_requests_are_refused_cleanly(
    client: httpx.Client, admin: dict[str, str], path: str, expected: int
) -> None:
    response = client.delete(path, headers=admin)
    assert response.status_code == expected, response.text
    assert response.json()["error"] in ("validation_error", "not_found")


def test_lockouts_answer_503_while_redis_is_down(start_auth: StartAuth) -> None:
    parts = urlsplit(REDIS_URL)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 6379), free_port())
    proxy.open()
    try:
        service = start_auth(
            extra_env={"REDIS_URL": f"redis://127.0.0.1:{proxy.port}{parts.path or '/0'}"}
        )
        with service.client() as http:
            admin = {"Authorization": f"Bearer {login_token(http, ADMIN_EMAIL, ADMIN_PASSWORD)}"}
            assert http.get("/lockouts", headers=admin).status_code == 200
            proxy.close()
            # logins go on while the limiter's store is down; the admin's view says it is blind
            assert login_token(http, ADMIN_EMAIL, ADMIN_PASSWORD)
            listed = http.get("/lockouts", headers=admin)
            assert listed.status_code == 503
            assert listed.json()["error"] == "rate_limit_store_unavailable"
            assert http.delete("/lockouts/a@example.com", headers=admin).status_code == 503
    finally:
        proxy.close()


def test_lockouts_are_in_the_openapi_document(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"401", "403", "503"} <= set(paths["/lockouts"]["get"]["responses"])
    lift = paths["/lockouts/{email}"]["delete"]
    assert {"200", "401", "403", "404", "422", "503"} <= set(lift["responses"])
