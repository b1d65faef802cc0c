"""The page's admin actions, password forms, audit view and session upkeep over HTTP.

Against real auth and accounts-ui processes with a database of their own
(``action_stack``). Hostile input everywhere: a missing or wrong CSRF token is
a 403 page, an id that is no account a 404 page, bad filters a 400 page;
never a 500, never JSON.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pyotp
import pytest
from accounts_ui.conftest import ActionStack
from accounts_ui.forms import PASSWORD, is_page, new_account, post, token_of
from accounts_ui.stack import ADMIN_PASSWORD, admin_token, csrf_token, sign_in
from support.auth import ADMIN_EMAIL

NEW_PASSWORD = "a brand new passphrase 77"


def auth_admin(stack: ActionStack) -> httpx.Client:
    """A client of the auth API as the admin (not opened yet: use it in ``with``)."""
    login = httpx.post(
        stack.auth.url + "/login",
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        timeout=30,
    )
    token = login.json()["access_token"]
    return httpx.Client(
        base_url=stack.auth.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    )


def account_state(stack: ActionStack, email: str) -> dict[str, Any]:
    with auth_admin(stack) as client:
        found = client.get("/accounts", params={"search": email}).json()["items"]
    (account,) = [a for a in found if a["email"] == email]
    state: dict[str, Any] = account
    return state


@pytest.fixture
def admin(action_stack: ActionStack) -> Iterator[httpx.Client]:
    """A browser-like client signed in to the page as the admin."""
    client = httpx.Client(base_url=action_stack.ui.url, timeout=30)
    assert sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 303
    yield client
    client.close()


def test_disable_asks_first_then_disables_and_enable_undoes_it(
    action_stack: ActionStack, admin: httpx.Client
) -> None:
    account = new_account(action_stack)
    path = f"/accounts_page/accounts/{account['id']}/disable"
    asked = post(admin, path, label=account["username"])
    is_page(asked, 200)
    assert "Disable the account?" in asked.text and 'name="confirm" value="yes"' in asked.text
    assert account_state(action_stack, account["email"])["disabled"] is False
    done = post(admin, path, confirm="yes")
    assert done.status_code == 303 and done.headers["location"].endswith("notice=disabled")
    assert account_state(action_stack, account["email"])["disabled"] is True
    refused = httpx.post(
        action_stack.auth.url + "/login",
        json={"email": account["email"], "password": PASSWORD},
        timeout=30,
    )
    assert refused.status_code == 401
    enabled = post(admin, f"/accounts_page/accounts/{account['id']}/enable")
    assert enabled.status_code == 303
    assert account_state(action_stack, account["email"])["disabled"] is False


def test_role_change_sign_out_and_reset_link_need_confirmation(
    action_stack: ActionStack, admin: httpx.Client
) -> None:
    account = new_account(action_stack)
    base = f"/accounts_page/accounts/{account['id']}"
    asked = post(admin, base + "/role", role="admin")
    is_page(asked, 200)
    assert account_state(action_stack, account["email"])["role"] == "user"
    assert post(admin, base + "/role", role="admin", confirm="yes").status_code == 303
    assert account_state(action_stack, account["email"])["role"] == "admin"
    is_page(post(admin, base + "/sign-out"), 200)
    signed_out = post(admin, base + "/sign-out", confirm="yes")
    assert signed_out.headers["location"].endswith("notice=signed_out_everywhere")
    is_page(post(admin, base + "/password-reset"), 200)
    shown = post(admin, base + "/password-reset", confirm="yes")
    is_page(shown, 200)
    assert f"{action_stack.ui.url}/accounts_page/password-reset?token=" in shown.text
    assert shown.headers["cache-control"] == "no-store"


def test_the_reset_link_sets_a_new_password_once(
    action_stack: ActionStack, admin: httpx.Client
) -> None:
    account = new_account(action_stack)
    shown = post(admin, f"/accounts_page/accounts/{account['id']}/password-reset", confirm="yes")
    url = shown.text.split('id="reset-url" class="wide" type="text" readonly value="')[1]
    url = url.split('"')[0].replace("&amp;", "&")
    with httpx.Client(timeout=30) as owner:
        form = owner.get(url)
        is_page(form, 200)
        token = url.split("token=")[1]
        data = {
            "csrf_token": csrf_token(form.text),
            "token": token,
            "new_password": NEW_PASSWORD,
            "new_password_again": "something else entirely",
        }
        is_page(owner.post(action_stack.ui.url + "/accounts_page/password-reset", data=data), 400)
        data["new_password_again"] = NEW_PASSWORD
        done = owner.post(action_stack.ui.url + "/accounts_page/password-reset", data=data)
        assert done.status_code == 303
        again = owner.post(action_stack.ui.url + "/accounts_page/password-reset", data=data)
        is_page(again, 400)
        assert "no longer works" in again.text
    login = httpx.post(
        action_stack.auth.url + "/login",
        json={"email": account["email"], "password": NEW_PASSWORD},
        timeout=30,
    )
    assert login.status_code == 200


def test_lift_lockout(action_stack: ActionStack, admin: httpx.Client) -> None:
    account = new_account(action_stack)
    none = post(admin, "/accounts_page/lockouts/lift", email=account["email"])
    assert none.headers["location"].endswith("notice=no_lockout")
    for _ in range(6):  # past the per-email-and-client limit of this stack's auth
        httpx.post(
            action_stack.auth.url + "/login",
            json={"email": account["email"], "password": "wrong wrong wrong"},
            timeout=30,
        )
    with auth_admin(action_stack) as client:
        locked = [lock["email"] for lock in client.get("/lockouts").json()["items"]]
    assert account["email"] in locked
    lifted = post(admin, "/accounts_page/lockouts/lift", email=account["email"])
    assert lifted.headers["location"].endswith("notice=lockout_lifted")


@pytest.mark.parametrize("action", ["disable", "enable", "role", "sign-out", "password-reset"])
@pytest.mark.parametrize("token", [None, "", "forged", "A" * 43, "x" * 5000])
def test_a_missing_or_wrong_csrf_token_is_a_403_page(
    action_stack: ActionStack, admin: httpx.Client, action: str, token: str | None
) -> None:
    account = new_account(action_stack) if action == "disable" else {"id": 1}
    form = {"confirm": "yes", "role": "admin"}
    if token is not None:
        form["csrf_token"] = token
    response = admin.post(f"/accounts_page/accounts/{account['id']}/{action}", data=form)
    is_page(response, 403)
    if action == "disable":
        assert account_state(action_stack, str(account["email"]))["disabled"] is False


def test_a_foreign_origin_is_refused_even_with_a_good_token(
    action_stack: ActionStack, admin: httpx.Client
) -> None:
    response = admin.post(
        "/accounts_page/accounts/1/sign-out",
        data={"csrf_token": token_of(admin), "confirm": "yes"},
        headers={"Origin": "https://evil.example"},
    )
    is_page(response, 403)


@pytest.mark.parametrize(
    "ident", ["abc", "0", "-1", "1.5", "99999999999", "2147483648", "%00", "1%20", "٣", "999999"]
)
@pytest.mark.parametrize("action", ["disable", "role", "sign-out", "password-reset", "enable"])
def test_an_id_that_is_no_account_is_a_404_page(
    admin: httpx.Client, ident: str, action: str
) -> None:
    response = post(admin, f"/accounts_page/accounts/{ident}/{action}", confirm="yes", role="user")
    is_page(response, 404)


@pytest.mark.parametrize(
    ("path", "form", "status"),
    [
        ("/accounts_page/accounts/1/role", {"role": "root"}, 400),
        ("/accounts_page/accounts/1/role", {"role": "<script>"}, 400),
        ("/accounts_page/accounts/1/explode", {}, 404),
        ("/accounts_page/lockouts/lift", {"email": "not-an-email"}, 400),
        ("/accounts_page/lockouts/lift", {"email": "a@b\x00c"}, 400),
        ("/accounts_page/lockouts/lift", {"email": "x" * 300 + "@example.com"}, 400),
        ("/accounts_page/nothing-here", {}, 404),
    ],
)
def test_hostile_action_input_gets_a_page_not_a_500(
    admin: httpx.Client, path: str, form: dict[str, str], status: int
) -> None:
    is_page(post(admin, path, **form), status)


def test_the_last_admin_cannot_be_disabled_and_says_why(
    action_stack: ActionStack, admin: httpx.Client
) -> None:
    with auth_admin(action_stack) as client:
        me = client.get("/me").json()
        for other in client.get("/accounts", params={"limit": 100}).json()["items"]:
            if other["role"] == "admin" and other["id"] != me["id"]:  # another test's
                demoted = client.put(f"/accounts/{other['id']}/role", json={"role": "user"})
                assert demoted.status_code == 200, demoted.text
    refused = post(admin, f"/accounts_page/accounts/{me['id']}/disable", confirm="yes")
    is_page(refused, 409)


@pytest.mark.parametrize(
    "query",
    [
        "action=bogus",
        "action=%3Cscript%3E",
        "since=yesterday",
        "until=2026-13-45",
        "page=0",
        "page=-1",
        "page=abc",
        "page=99999999999999",
        "size=1000",
        "actor=%01",
        "target=" + "x" * 300,
    ],
)
def test_bad_audit_filters_are_a_400_page(admin: httpx.Client, query: str) -> None:
    is_page(admin.get("/accounts_page/audit?" + query), 400)


def test_the_audit_view_filters_pages_and_escapes(
    action_stack: ActionStack, admin: httpx.Client
) -> None:
    account = new_account(action_stack)
    post(admin, f"/accounts_page/accounts/{account['id']}/sign-out", confirm="yes")
    hostile = "<script>alert(1)</script>"
    with auth_admin(action_stack) as client:
        recorded = client.post(
            "/audit",
            json={"action": "backend_drained", "target": hostile, "detail": {"route": hostile}},
        )
        assert recorded.status_code == 201, recorded.text
    page = admin.get("/accounts_page/audit", params={"action": "signed_out_everywhere"})
    is_page(page, 200)
    assert account["email"] in page.text
    assert "backend_drained" not in page.text.split('<table id="audit">')[1]
    drained = admin.get("/accounts_page/audit", params={"action": "backend_drained", "size": 10})
    assert hostile not in drained.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in drained.text
    first = admin.get("/accounts_page/audit", params={"size": 10})
    assert 'rel="next"' in first.text
    second = admin.get("/accounts_page/audit", params={"size": 10, "page": 2})
    is_page(second, 200)
    assert "page 2 of" in second.text


def test_own_password_change(action_stack: ActionStack) -> None:
    account = new_account(action_stack)
    with httpx.Client(base_url=action_stack.ui.url, timeout=30) as client:
        assert sign_in(client, account["email"], PASSWORD).status_code == 303
        # not an admin: the accounts page says so, the password page works
        is_page(client.get("/accounts_page"), 403)
        path = "/accounts_page/password"
        form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        mismatch = post(client, path, **form, new_password_again="other")
        is_page(mismatch, 400)
        wrong = post(
            client,
            path,
            current_password="not my password",
            new_password=NEW_PASSWORD,
            new_password_again=NEW_PASSWORD,
        )
        is_page(wrong, 403)
        weak = post(
            client,
            path,
            current_password=PASSWORD,
            new_password="password",
            new_password_again="password",
        )
        is_page(weak, 400)
        done = post(client, path, **form, new_password_again=NEW_PASSWORD)
        assert done.status_code == 303 and done.headers["location"].endswith(
            "notice=password_changed"
        )
        assert "Your password is changed" in client.get(done.headers["location"]).text
    login = httpx.post(
        action_stack.auth.url + "/login",
        json={"email": account["email"], "password": NEW_PASSWORD},
        timeout=30,
    )
    assert login.status_code == 200


def test_an_expired_access_token_is_renewed_with_the_refresh_token(
    action_stack: ActionStack,
) -> None:
    """The cookie holds a token auth no longer accepts: the page renews the session and
    answers, with both cookies replaced; the old refresh token is then spent."""
    login = httpx.post(
        action_stack.auth.url + "/login",
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        timeout=30,
    ).json()
    expired = admin_token(action_stack.keys_dir, expires_in=-120)
    with httpx.Client(base_url=action_stack.ui.url, timeout=30) as client:
        client.cookies.set("gatehouse_session", expired, path="/accounts_page")
        client.cookies.set("gatehouse_refresh", login["refresh_token"], path="/accounts_page")
        page = client.get("/accounts_page")
        is_page(page, 200)
        assert 'id="accounts"' in page.text
        renewed = {c.name: c.value for c in client.cookies.jar}
        assert renewed["gatehouse_session"] != expired
        assert renewed["gatehouse_refresh"] != login["refresh_token"]
        set_cookies = page.headers.get_list("set-cookie")
        assert all("HttpOnly" in c and "SameSite=strict" in c for c in set_cookies)
        # and the renewed session works on the next page too, without another renewal
        again = client.get("/accounts_page")
        assert "set-cookie" not in {k.lower() for k in again.headers if k.lower() != "set-cookie"}
        is_page(again, 200)
    spent = httpx.post(
        action_stack.auth.url + "/token/refresh",
        json={"refresh_token": login["refresh_token"]},
        timeout=30,
    )
    assert spent.status_code == 401


def test_no_refresh_token_means_sign_in_again(action_stack: ActionStack) -> None:
    expired = admin_token(action_stack.keys_dir, expires_in=-120)
    with httpx.Client(base_url=action_stack.ui.url, timeout=30) as client:
        client.cookies.set("gatehouse_session", expired, path="/accounts_page")
        client.cookies.set("gatehouse_refresh", "not-a-refresh-token", path="/accounts_page")
        page = client.get("/accounts_page")
        is_page(page, 200)
        assert "Your session has expired" in page.text


def test_sign_out_ends_the_session_at_auth(action_stack: ActionStack) -> None:
    with httpx.Client(base_url=action_stack.ui.url, timeout=30) as client:
        assert sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 303
        refresh = client.cookies.get("gatehouse_refresh", path="/accounts_page")
        access = client.cookies.get("gatehouse_session", path="/accounts_page")
        assert refresh and access
        out = post(client, "/accounts_page/logout")
        assert out.status_code == 303
        assert client.cookies.get("gatehouse_refresh", path="/accounts_page") is None
    refreshed = httpx.post(
        action_stack.auth.url + "/token/refresh", json={"refresh_token": refresh}, timeout=30
    )
    assert refreshed.status_code == 401


def test_an_account_with_a_second_factor_is_asked_for_its_code(
    action_stack: ActionStack,
) -> None:
    """Auth says totp_required: the form asks for the code; a wrong one says so; a good
    one (the next time step's, within auth's drift: the current one was spent
    confirming) signs in."""
    account = new_account(action_stack)
    auth = action_stack.auth.url
    login = httpx.post(
        auth + "/login", json={"email": account["email"], "password": PASSWORD}, timeout=30
    )
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    secret = httpx.post(auth + "/account/totp", headers=bearer, timeout=30).json()["secret"]
    confirmed = httpx.post(
        auth + "/account/totp/confirm",
        json={"code": pyotp.TOTP(secret).now()},
        headers=bearer,
        timeout=30,
    )
    assert confirmed.status_code == 200, confirmed.text
    with httpx.Client(base_url=action_stack.ui.url, timeout=30) as client:
        asked = sign_in(client, account["email"], PASSWORD)
        is_page(asked, 401)
        assert 'name="totp_code"' in asked.text and "authenticator app" in asked.text
        form = {"email": account["email"], "password": PASSWORD}
        wrong = post(client, "/accounts_page/login", **form, totp_code="000000")
        is_page(wrong, 401)
        assert "wrong or was already used" in wrong.text
        following = pyotp.TOTP(secret).at(time.time() + 30)
        right = post(client, "/accounts_page/login", **form, totp_code=following)
        assert right.status_code == 303, right.text.split('role="alert">')[-1][:200]
        assert client.cookies.get("gatehouse_refresh", path="/accounts_page")
