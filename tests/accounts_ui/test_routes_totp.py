"""The two-factor page over HTTP: enrol, confirm, turn off, and the admin sent to enrol.

Against real auth (requiring a second factor of admins) and accounts-ui
processes (``totp_stack``); codes come from pyotp with the secret the page
showed. Hostile input everywhere: a missing or wrong CSRF token is a 403 page,
a bad code a form message (400), never a 500, never reflected as markup.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator

import httpx
import pyotp
import pytest
from accounts_ui.conftest import ActionStack
from accounts_ui.forms import PASSWORD, is_page, new_account, post
from accounts_ui.stack import ADMIN_PASSWORD, sign_in
from support.auth import ADMIN_EMAIL

TOTP = "/accounts_page/two-factor"
START, CONFIRM, DISABLE = f"{TOTP}/start", f"{TOTP}/confirm", f"{TOTP}/disable"
HOSTILE_CODES = [
    "",
    "   ",
    "<script>alert(1)</script>",
    "12345\x00",
    "\uff11\uff12\uff13\uff14\uff15\uff16",  # fullwidth digits
    "' OR 1=1 --",
    "9" * 33,
    "x" * 5000,
]


def secret_of(page: str) -> str:
    match = re.search(r'id="totp-secret"[^>]*value="([A-Z2-7]+)"', page)
    assert match is not None, page[:1000]
    return match.group(1)


def next_code(secret: str) -> str:
    """The next time step's code: the current one may be spent, and auth allows one step ahead."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def alert(page: str) -> str:
    match = re.search(r'role="alert">([^<]*)<', page)
    return html.unescape(match.group(1)) if match else ""


@pytest.fixture
def user(totp_stack: ActionStack) -> Iterator[httpx.Client]:
    """A browser-like client signed in to the page as a fresh (non-admin) account."""
    account = new_account(totp_stack)
    client = httpx.Client(base_url=totp_stack.ui.url, timeout=30)
    assert sign_in(client, account["email"], PASSWORD).status_code == 303
    yield client
    client.close()


def enrol(client: httpx.Client) -> tuple[str, list[str]]:
    """Turn two-factor on through the page; the secret and the recovery codes it showed."""
    started = post(client, START)
    is_page(started, 200)
    secret = secret_of(started.text)
    done = post(client, CONFIRM, code=pyotp.TOTP(secret).now())
    is_page(done, 200)
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.text)
    return secret, codes


def test_enrol_shows_the_secret_once_confirms_and_turns_off(user: httpx.Client) -> None:
    before = user.get(TOTP)
    is_page(before, 200)
    assert "is <strong>off</strong>" in before.text

    started = post(user, START)
    is_page(started, 200)
    assert started.headers["cache-control"] == "no-store"
    secret = secret_of(started.text)
    assert "otpauth://totp/" in started.text and f"secret={secret}" in started.text
    assert '<svg width="' in started.text and 'class="qr"' in started.text  # the QR code
    assert secret not in (user.get(TOTP).text)  # shown only in that answer

    wrong = post(user, CONFIRM, code="000000")
    is_page(wrong, 400)
    assert "wrong or was already used" in alert(wrong.text)
    assert secret not in wrong.text  # not shown again on a retry

    done = post(
        user, CONFIRM, code=f" {pyotp.TOTP(secret).now()[:3]} {pyotp.TOTP(secret).now()[3:]}"
    )
    is_page(done, 200)
    assert done.headers["cache-control"] == "no-store"
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert "is <strong>on</strong>" in user.get(TOTP).text

    again = post(user, START)  # already on: said plainly, not an error page
    is_page(again, 409)
    assert alert(again.text) == "Two-factor sign-in is already on."

    refused = post(user, DISABLE, code="000000")
    is_page(refused, 400)
    assert "wrong or was already used" in alert(refused.text)
    off = post(user, DISABLE, code=next_code(secret))
    assert off.status_code == 303 and off.headers["location"] == f"{TOTP}?notice=totp_disabled"
    after = user.get(off.headers["location"])
    assert "is <strong>off</strong>" in after.text and "Two-factor sign-in is off" in after.text


def test_a_recovery_code_turns_it_off_and_works_once(user: httpx.Client) -> None:
    _, codes = enrol(user)
    assert post(user, DISABLE, code=codes[0].upper()).status_code == 303
    _, codes_again = enrol(user)
    assert codes[1] not in codes_again  # a new enrolment, new codes
    used = post(user, DISABLE, code=codes[1])
    is_page(used, 400)


def test_confirming_without_a_pending_secret_says_start_again(user: httpx.Client) -> None:
    response = post(user, CONFIRM, code="123456")
    is_page(response, 409)
    assert "Start the set-up again" in alert(response.text)


@pytest.mark.parametrize("path", [START, CONFIRM, DISABLE])
def test_a_missing_or_wrong_csrf_token_is_a_403_page(user: httpx.Client, path: str) -> None:
    for data in ({"code": "123456"}, {"code": "123456", "csrf_token": "forged"}):
        response = user.post(path, data=data)
        is_page(response, 403)
        assert "security token" in response.text
    assert "is <strong>off</strong>" in user.get(TOTP).text  # nothing started


@pytest.mark.parametrize("code", HOSTILE_CODES)
def test_hostile_codes_are_form_errors_never_a_500(user: httpx.Client, code: str) -> None:
    post(user, START)
    confirming = post(user, CONFIRM, code=code)
    is_page(confirming, 400)
    assert alert(confirming.text)
    assert "<script>alert(1)" not in confirming.text
    secret, _ = enrol(user)
    disabling = post(user, DISABLE, code=code)
    is_page(disabling, 400)
    assert alert(disabling.text) and "<script>alert(1)" not in disabling.text
    assert post(user, DISABLE, code=next_code(secret)).status_code == 303


def test_signed_out_posts_and_views_get_the_sign_in_form(totp_stack: ActionStack) -> None:
    with httpx.Client(base_url=totp_stack.ui.url, timeout=30) as client:
        view = client.get(TOTP)
        is_page(view, 200)
        assert "Sign in" in view.text
        for path in (START, CONFIRM, DISABLE):
            is_page(post(client, path, code="123456"), 401)


def test_an_admin_without_a_second_factor_is_sent_to_enrol(totp_stack: ActionStack) -> None:
    with httpx.Client(base_url=totp_stack.ui.url, timeout=30) as admin:
        assert sign_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 303
        for path in ("/accounts_page", "/accounts_page/audit"):
            refused = admin.get(path)
            is_page(refused, 403)
            assert "Turn on two-factor sign-in first" in refused.text
            assert f'id="next-step" href="{TOTP}"' in refused.text
        secret, _ = enrol(admin)
        is_page(admin.get("/accounts_page"), 200)  # the same session, now allowed
        assert post(admin, DISABLE, code=next_code(secret)).status_code == 303
        is_page(admin.get("/accounts_page"), 403)
